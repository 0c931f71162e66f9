// Mail goes out through the outbox, like events: a service writes the mail in the transaction of
// the token or the change it is about, and the delivery worker (src/events/worker.ts) sends it
// with the mailer, with the same leases, retries, dead letters and replay as a webhook. A mail
// server that is down delays mail; it never loses it, and no request waits for it.
//
// A queued mail holds what its message is composed from (the kind, the address, the language and,
// for a link, its token), not the message: the text is composed when it is sent, and once it has
// been sent the address and the token are erased from the row. The token is the secret part of
// the link; it is never logged, and stored only until the mail has gone out.
import { sql, type Transaction } from 'kysely';
import type { Config } from '../config/schema.ts';
import { recordMail, type MailRecipient } from '../events/outbox.ts';
import type { DB } from '../storage/database.ts';
import type { Database } from '../storage/schema.ts';
import type { MailMessage } from './mailer.ts';
import {
  changeEmailMessage, describeDuration, emailChangedMessage, emailCodeMessage, registrationAttemptMessage, resetPasswordMessage, securityChangedMessage,
  verifyEmailMessage,
} from './messages.ts';
import { isSecurityChange } from '../accounts/security-notices.ts';

export type { MailRecipient };

/** The mails Parley sends. */
export type MailKind = 'verify_email' | 'reset_password' | 'change_email' | 'email_changed' | 'registration_attempt' | 'security_changed' | 'email_code';

const MAIL_KINDS: ReadonlySet<string> = new Set<MailKind>([
  'verify_email', 'reset_password', 'change_email', 'email_changed', 'registration_attempt', 'security_changed', 'email_code',
]);

/** What a mail is composed from when it is sent. */
export interface MailContent {
  kind: MailKind;
  /** The reader's language; English when Parley does not speak it. */
  locale: string | null;
  /** The emailed token of the link, for the kinds that carry one; the code itself for email_code. */
  token?: string;
  /** What changed, for security_changed (SECURITY_CHANGES). */
  change?: string;
  /** The sign-in code, for email_code: secret like a link's token, erased once sent. */
  code?: string;
}

/** The delivery target of mail unless the composition root names another (see ParleyOptions). */
export const MAIL_ENDPOINT_ID = 'mail';

export interface MailOutbox {
  /** The delivery target mail is queued for: deliveries, dead letters and replay name it. */
  readonly endpointId: string;
  /** Queues a mail in the caller's transaction; false when the recipient's condition left none. */
  queue(trx: Transaction<Database>, recipient: MailRecipient, content: MailContent, now: Date): Promise<boolean>;
  /** The message of a queued mail, composed now; undefined when its content is gone (sent already). */
  compose(payload: Record<string, unknown>): MailMessage | undefined;
  /** Erases the address and the token of mail that has been sent. */
  eraseSent(db: DB, eventIds: readonly string[]): Promise<void>;
  /** Says that mail was queued and committed, so that the worker sends it now rather than at its next poll. */
  queued(): void;
  /** The worker listens here. */
  onQueued(listener: () => void): void;
}

export function createMailOutbox(options: { config: Config; endpointId?: string | undefined }): MailOutbox {
  const { config } = options;
  const endpointId = options.endpointId ?? MAIL_ENDPOINT_ID;
  const base = config.baseUrl;
  const listeners: (() => void)[] = [];

  function compose(payload: Record<string, unknown>): MailMessage | undefined {
    const { kind, to, locale: rawLocale, token } = payload;
    if (typeof to !== 'string' || typeof kind !== 'string' || !MAIL_KINDS.has(kind)) return undefined;
    const locale = typeof rawLocale === 'string' ? rawLocale : null;
    const link = (path: string) => (typeof token === 'string' ? `${base}${path}?token=${token}` : undefined);
    const verificationTtl = () => describeDuration(config.accounts.verification_ttl, locale);
    switch (kind as MailKind) {
      case 'verify_email': {
        const url = link('/verify-email');
        return url ? { to, ...verifyEmailMessage({ locale, link: url, ttlText: verificationTtl() }) } : undefined;
      }
      case 'reset_password': {
        const url = link('/reset-password');
        return url ? { to, ...resetPasswordMessage({ locale, link: url, ttlText: describeDuration(config.accounts.reset_ttl, locale) }) } : undefined;
      }
      case 'change_email': {
        const url = link('/account/email/confirm');
        return url ? { to, ...changeEmailMessage({ locale, link: url, ttlText: verificationTtl() }) } : undefined;
      }
      case 'email_changed':
        return { to, ...emailChangedMessage({ locale, resetLink: `${base}/forgot-password` }) };
      case 'registration_attempt':
        return { to, ...registrationAttemptMessage({ locale, resetLink: `${base}/forgot-password` }) };
      case 'email_code': {
        const { code } = payload;
        return typeof code === 'string'
          ? { to, ...emailCodeMessage({ locale, code, ttlText: describeDuration(config.mfa.email_codes.ttl, locale) }) } : undefined;
      }
      case 'security_changed': {
        const { change } = payload;
        return typeof change === 'string' && isSecurityChange(change)
          ? { to, ...securityChangedMessage({ locale, change, link: `${base}/account/security` }) } : undefined;
      }
    }
  }

  return {
    endpointId,
    queue: (trx, recipient, content, now) => recordMail(trx, recipient, { endpointId, type: `mail.${content.kind}`, content: { ...content } }, now),
    compose,
    async eraseSent(db, eventIds) {
      if (eventIds.length === 0) return;
      await sql`update outbox_events set payload = payload - array['to', 'token', 'code'] where id in (${sql.join(eventIds)})`.execute(db);
    },
    queued() {
      for (const listener of listeners) listener();
    },
    onQueued(listener) {
      listeners.push(listener);
    },
  };
}
