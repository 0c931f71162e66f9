import { randomUUID } from 'node:crypto';
import type { Transaction } from 'kysely';
import type { Database } from '../storage/schema.ts';

// The closed list of event types (their payloads: schemas.ts). Each event is written in the
// transaction of the change it reports, so none is lost or sent for a change that did not happen.
export type EventType =
  | 'account.created' | 'account.deleted'
  | 'answer.recorded' | 'answer.changed' | 'answer.deleted'
  | 'consent.granted' | 'consent.withdrawn'
  | 'preferences.changed' | 'reward.granted';

/** The same list at run time: config validation, fan-out and the JSON Schemas iterate it. */
export const EVENT_TYPES = [
  'account.created', 'account.deleted',
  'answer.recorded', 'answer.changed', 'answer.deleted',
  'consent.granted', 'consent.withdrawn',
  'preferences.changed', 'reward.granted',
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
