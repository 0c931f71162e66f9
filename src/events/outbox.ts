import { randomUUID } from 'node:crypto';
import { sql, type Transaction } from 'kysely';
import type { Database } from '../storage/schema.ts';

// The closed list of event types (their payloads: schemas.ts). Each event is written in the
// transaction of the change it reports, so none is lost or sent for a change that did not happen.
export type EventType =
  | 'account.created' | 'account.deleted' | 'account.imported'
  | 'answer.recorded' | 'answer.changed' | 'answer.deleted'
  | 'consent.granted' | 'consent.withdrawn'
  | 'preferences.changed' | 'reward.granted'
  | 'terms.accepted' | 'app.revoked'
  | 'identity.linked' | 'identity.unlinked'
  | 'account.security_changed' | 'session.revoked';

/** The same list at run time: config validation, fan-out and the JSON Schemas iterate it. */
export const EVENT_TYPES = [
  'account.created', 'account.deleted', 'account.imported',
  'answer.recorded', 'answer.changed', 'answer.deleted',
  'consent.granted', 'consent.withdrawn',
  'preferences.changed', 'reward.granted',
  'terms.accepted',
  'app.revoked',
  'identity.linked', 'identity.unlinked',
  'account.security_changed', 'session.revoked',
] as const satisfies readonly EventType[];

// Fails to compile when a type is added to the union but not to the list.
type MissingFromList = Exclude<EventType, (typeof EVENT_TYPES)[number]>;
const everyTypeListed: MissingFromList extends never ? true : never = true;
void everyTypeListed;

export interface DomainEvent {
  type: EventType;
  accountId: string | null;
  payload: Record<string, unknown>;
}

/** Takes a Transaction, not a Kysely: an event is never written outside the change it reports. */
export async function recordEvent(trx: Transaction<Database>, event: DomainEvent, now: Date): Promise<string> {
  const id = randomUUID();
  await trx.insertInto('outbox_events').values({
    id,
    type: event.type,
    account_id: event.accountId,
    payload: JSON.stringify({ version: 1, ...event.payload }),
    created_at: now,
  }).execute();
  return id;
}

/**
 * Who a queued mail goes to. The statement that queues it decides whether there is anyone, so a
 * request does the same database work whichever way that goes:
 * - an address, for an account (with `unlessTaken`: only if no account has that address);
 * - `ownerOf`: the account that has this address, if there is one.
 */
export type MailRecipient =
  | { accountId: string | null; address: string; unlessTaken?: boolean }
  | { ownerOf: string };

export interface OutboxMail {
  /** The delivery target that sends mail (src/mail/outbox.ts). */
  endpointId: string;
  /** `mail.<kind>`: never one of EVENT_TYPES, so no webhook can subscribe to it. */
  type: `mail.${string}`;
  /** What the message is composed from when it is sent; `to` is added here. */
  content: Record<string, unknown>;
}

/**
 * Queues a mail in the caller's transaction: an outbox row, born fanned out, and its one delivery
 * row for the mail target, in one statement. Mail never goes through fan-out, so no webhook
 * endpoint ever sees it. Its delivery row names no account: mail is not held in order behind an
 * account's earlier mail, so one address that keeps failing delays no other message. Returns
 * whether a mail was queued (a recipient's condition may leave none).
 */
export async function recordMail(trx: Transaction<Database>, recipient: MailRecipient, mail: OutboxMail, now: Date): Promise<boolean> {
  const id = randomUUID();
  const address = 'ownerOf' in recipient ? recipient.ownerOf : recipient.address;
  const payload = JSON.stringify({ ...mail.content, to: address });
  const row = (accountId: unknown) => sql`select ${id}::text, ${mail.type}::text, ${accountId}, ${payload}::jsonb, ${now}::timestamptz, ${now}::timestamptz`;
  const source = 'ownerOf' in recipient
    ? sql`${row(sql.ref('a.id'))} from accounts a where a.email = ${address}`
    : recipient.unlessTaken
      ? sql`${row(sql`${recipient.accountId}::text`)} where not exists (select 1 from accounts where email = ${address})`
      : row(sql`${recipient.accountId}::text`);
  const result = await sql`
    with mail as (
      insert into outbox_events (id, type, account_id, payload, created_at, fanned_out_at) ${source}
      returning id, seq, type, created_at
    )
    insert into deliveries (event_id, endpoint_id, account_id, seq, type, status, next_attempt_at, retry_from, updated_at)
    select id, ${mail.endpointId}::text, null, seq, type, 'pending', created_at, created_at, created_at from mail
  `.execute(trx);
  return Number(result.numAffectedRows ?? 0) > 0;
}
