// What a receiver gets for an event. The body of a standard webhook is
//
//   { "id": <event id>, "type": "answer.recorded", "timestamp": <ISO 8601 of the event>,
//     "version": <payload version>, "data": <the payload, as stored in the outbox> }
//
// and a SET carries the same `data` under its `events` claim. answer.recorded and answer.changed
// data carry `consent`: the consent state the answer was given under, written with the event
// (src/consent/ledger.ts consentSnapshot). The JSON Schema of each type is in
// events/schemas/<type>.json (generated from ./schemas.ts).
import type { PurposeConfig } from '../config/schema.ts';
import { consentSnapshot, purposeAllows, type ConsentState } from '../consent/ledger.ts';

export interface OutboxEvent {
  id: string;
  type: string;
  accountId: string | null;
  payload: Record<string, unknown>;
  createdAt: Date;
}

/** answer.* events carry a purpose; these two also carry the answer itself. */
const CARRIES_ANSWER_VALUE: ReadonlySet<string> = new Set(['answer.recorded', 'answer.changed']);

export function carriesAnswerValue(type: string): boolean {
  return CARRIES_ANSWER_VALUE.has(type);
}

/**
 * Whether an event may still be sent, given the user's consent now; a reason when it may not.
 * An answer is data released under its purpose: it leaves only while the user's current consent
 * allows it (the rule of the claims, src/consent/release.ts), however it stood when the answer
 * was given, so a withdrawal stops answers still waiting for delivery. answer.deleted carries no
 * value and tells the receiver to erase its copy: always sent.
 */
export function withheldBecause(type: string, purposeId: string | undefined, purpose: PurposeConfig | undefined, state: ConsentState | undefined): string | undefined {
  if (!carriesAnswerValue(type)) return undefined;
  if (purposeId === undefined) return 'the answer names no purpose';
  if (purposeAllows(purpose, state)) return undefined;
  if (!purpose) return `purpose "${purposeId}" is no longer configured`;
  return `consent for purpose "${purposeId}" is ${consentSnapshot(purposeId, purpose, state).state}`;
}

export interface Envelope {
  id: string;
  type: string;
  timestamp: string;
  version: number;
  data: Record<string, unknown>;
}

export function envelope(event: OutboxEvent): Envelope {
  const version = typeof event.payload.version === 'number' ? event.payload.version : 1;
  return { id: event.id, type: event.type, timestamp: event.createdAt.toISOString(), version, data: event.payload };
}
