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
  /** Resolves once the message is handed to the SMTP server, or written to the mailbox. */
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

export function createMailer(config: Config['mail'], logger: Logger): Mailer {
  return config.smtp_url ? smtpMailer(config, logger) : mailboxMailer(config, logger);
}

function smtpMailer(config: Config['mail'], logger: Logger): Mailer {
  const transport = createTransport(config.smtp_url);
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
function mailboxMailer(config: Config['mail'], logger: Logger): Mailer {
  const dir = path.resolve(config.mailbox_dir);
  // Names sort in sending order: the time, then a counter for messages in the same millisecond.
  let sequence = 0;
  return {
    async send(message) {
      const sentAt = new Date();
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
