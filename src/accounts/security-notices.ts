import type { Transaction } from 'kysely';
import { recordEvent } from '../events/outbox.ts';
import type { MailOutbox } from '../mail/outbox.ts';
import type { Database } from '../storage/schema.ts';
import type { Alongside } from './authentication-methods.ts';

// When a way to sign in or a second factor changes, the account holder is told by email and
// downstream systems by an event (account.security_changed), both in the transaction of the
// change: someone who took over a session cannot quietly add their own passkey.

export const SECURITY_CHANGES = [
  'passkey_added', 'passkey_removed', 'totp_added', 'totp_removed',
  'password_set', 'password_changed', 'recovery_codes_generated', 'recovery_code_used',
] as const;
export type SecurityChange = (typeof SECURITY_CHANGES)[number];

export const isSecurityChange = (value: string): value is SecurityChange => (SECURITY_CHANGES as readonly string[]).includes(value);

export interface SecurityNotices {
  /** Writes the event and queues the mail in the transaction of the change. */
  record(trx: Transaction<Database>, accountId: string, change: SecurityChange): Promise<void>;
  /** The same, as the `alongside` of a credential service's change. */
  alongside(accountId: string, change: SecurityChange): Alongside<unknown>;
}

export function createSecurityNotices(deps: { mail: Pick<MailOutbox, 'queue'>; clock: () => Date }): SecurityNotices {
  const { mail, clock } = deps;
  async function record(trx: Transaction<Database>, accountId: string, change: SecurityChange) {
    const now = clock();
    await recordEvent(trx, { type: 'account.security_changed', accountId, payload: { account_id: accountId, change } }, now);
    const account = await trx.selectFrom('accounts').select(['email', 'locale']).where('id', '=', accountId).executeTakeFirst();
    if (account) await mail.queue(trx, { accountId, address: account.email }, { kind: 'security_changed', locale: account.locale, change }, now);
  }
  return { record, alongside: (accountId, change) => (trx) => record(trx, accountId, change) };
}
