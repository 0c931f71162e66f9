import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createTransport } from 'nodemailer';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';

export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  html?: string;
}

export interface Mailer {
  /**
   * Resolves once the message is handed to the SMTP server, or written to the mailbox. Only the
   * delivery worker calls it (src/mail/outbox.ts): requests queue mail, they never send it.
   */
  send(message: MailMessage): Promise<void>;
  close(): Promise<void>;
}

/** A message as stored in the development mailbox. */
export interface MailboxMessage extends MailMessage {
  from: string;
  sent_at: string;
  file: string;
}

// Messages carry sign-in links, so logs name only the recipient's domain and the subject.
const recipientDomain = (to: string) => to.slice(to.lastIndexOf('@') + 1);

export interface MailerOptions {
  /** Connecting, the greeting and each exchange with the SMTP server are cut off after this long. */
  timeoutSeconds: number;
  /** The time a message is written to the development mailbox. */
  clock: () => Date;
}

export function createMailer(config: Config['mail'], logger: Logger, options: MailerOptions): Mailer {
  return config.smtp_url ? smtpMailer(config, logger, options) : mailboxMailer(config, logger, options);
}

function smtpMailer(config: Config['mail'], logger: Logger, options: MailerOptions): Mailer {
  // Without these, nodemailer waits up to two minutes to connect and ten for a silent server.
  const timeout = options.timeoutSeconds * 1000;
  const transport = createTransport({ url: config.smtp_url, connectionTimeout: timeout, greetingTimeout: timeout, socketTimeout: timeout });
  return {
    async send(message) {
      const info = await transport.sendMail({ from: config.from, ...message });
      logger.info({ to_domain: recipientDomain(message.to), subject: message.subject, message_id: info.messageId }, 'mail sent');
    },
    async close() {
      transport.close();
    },
  };
}

/** One JSON file per message, for development and tests, when no SMTP server is configured. */
function mailboxMailer(config: Config['mail'], logger: Logger, options: MailerOptions): Mailer {
  const dir = path.resolve(config.mailbox_dir);
  // Names sort in sending order: the time, then a counter for messages in the same millisecond.
  let sequence = 0;
  return {
    async send(message) {
      const sentAt = options.clock();
      sequence = (sequence + 1) % 1_000_000;
      const name = `${sentAt.toISOString().replaceAll(':', '-')}-${String(sequence).padStart(6, '0')}-${randomBytes(4).toString('hex')}.json`;
      const file = path.join(dir, name);
      const content = { to: message.to, from: config.from, subject: message.subject, text: message.text, html: message.html, sent_at: sentAt.toISOString() };
      await mkdir(dir, { recursive: true });
      // Written aside and renamed, so a reader never sees half a message.
      await writeFile(`${file}.partial`, `${JSON.stringify(content, null, 2)}\n`, { mode: 0o600 });
      await rename(`${file}.partial`, file);
      logger.info({ to_domain: recipientDomain(message.to), subject: message.subject, file }, 'mail written to the development mailbox');
    },
    async close() {},
  };
}

/**
 * Why a message did not go out, in one line for the log and the dead-letter list: nodemailer's
 * code, the SMTP reply code and the reason, with any address in it reduced to its domain.
 */
export function describeMailError(error: unknown): { status: number | null; error: string } {
  const { code, responseCode, message } = (error ?? {}) as { code?: unknown; responseCode?: unknown; message?: unknown };
  const status = typeof responseCode === 'number' ? responseCode : null;
  const reason = (typeof message === 'string' ? message : String(error)).replace(/\s+/g, ' ').trim()
    .replace(/[^\s<>"',;:@]+@([^\s<>"',;:@]+)/g, '…@$1');
  const summary = reason.length > 200 ? `${reason.slice(0, 200)}…` : reason;
  return { status, error: [typeof code === 'string' ? code : undefined, status, summary].filter((part) => part !== undefined && part !== null).join(' ') };
}

/** The messages in a development mailbox, oldest first; none if the directory does not exist. */
export async function readMailbox(dir: string): Promise<MailboxMessage[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const files = names.filter((name) => name.endsWith('.json')).sort();
  return Promise.all(files.map(async (name) => {
    const file = path.join(dir, name);
    const content = JSON.parse(await readFile(file, 'utf8')) as Omit<MailboxMessage, 'file'>;
    return { ...content, file };
  }));
}
