// Dead letters: deliveries that ran out of retries (dead) or whose endpoint answered 410 Gone
// (disabled), webhooks and mail alike (mail is the endpoint its outbox names, "mail"). Nothing is dropped: they are listed, and a replay puts them back in the queue with
// a fresh retry window and enables their endpoint again. The CLI and the management API call
// these; they need no running worker.
import { sql } from 'kysely';
import type { Logger } from '../logger.ts';
import type { DB } from '../storage/database.ts';
import { DomainError } from '../errors.ts';

export type DeadLetterStatus = 'dead' | 'disabled';

export interface DeadLetter {
  eventId: string;
  endpointId: string;
  type: string;
  accountId: string | null;
  status: DeadLetterStatus;
  attempts: number;
  /** The receiver's last HTTP status; null when it never answered. */
  lastStatus: number | null;
  lastError: string | null;
  eventCreatedAt: Date;
  /** When it was given up on. */
  updatedAt: Date;
}

export interface ListDeadOptions {
  endpointId?: string;
  /** Both when not given. */
  status?: DeadLetterStatus;
  /** 1 to 1000; 100 when not given. */
  limit?: number;
  /** The `next` of the previous page. */
  after?: string;
}

export interface DeadLetterPage {
  items: DeadLetter[];
  /** Pass as `after` for the next page; absent on the last one. */
  next?: string;
}

/** Event ids, an endpoint, both (those events to that endpoint), or everything. */
export type ReplaySelection =
  | { ids: readonly string[]; endpointId?: string | undefined; all?: undefined }
  | { ids?: undefined; endpointId: string; all?: undefined }
  | { ids?: undefined; endpointId?: string | undefined; all: true };

export interface ReplayResult {
  replayed: number;
  /** Endpoints that were disabled and are enabled again. */
  reenabled: string[];
}

export const EVENTS_ERROR_CODES = ['replay_selection_missing', 'too_many_ids', 'invalid_cursor', 'invalid_limit'] as const;

export type EventsErrorCode = (typeof EVENTS_ERROR_CODES)[number];

declare module '../errors.ts' {
  interface ErrorCodes { events: EventsErrorCode }
}

/** An operator's request to list or replay that cannot be done; the message says why. */
export class EventsError extends DomainError<'events'> {
  constructor(code: EventsErrorCode, message: string) {
    super('events', code, { message });
  }
}

const MAX_REPLAY_IDS = 1000;

function cursorOf(seq: number, endpointId: string): string {
  return Buffer.from(JSON.stringify([seq, endpointId])).toString('base64url');
}

function parseCursor(cursor: string): [number, string] {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(value) && typeof value[0] === 'number' && typeof value[1] === 'string') return [value[0], value[1]];
  } catch { /* falls through */ }
  throw new EventsError('invalid_cursor', 'after: not a cursor returned by a previous page');
}

export function createDeadLetters(deps: { db: DB; clock: () => Date; logger: Logger }) {
  const { db, clock } = deps;
  const logger = deps.logger.child({ component: 'webhooks' });

  return {
    /** Dead and disabled deliveries, oldest event first. */
    async listDead(options: ListDeadOptions = {}): Promise<DeadLetterPage> {
      const limit = options.limit ?? 100;
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new EventsError('invalid_limit', 'limit: expected a whole number from 1 to 1000');
      let query = db.selectFrom('deliveries as d').innerJoin('outbox_events as o', 'o.id', 'd.event_id')
        .select(['d.event_id', 'd.endpoint_id', 'd.type', 'o.account_id', 'd.status', 'd.attempts', 'd.last_status', 'd.last_error', 'd.seq', 'd.updated_at', 'o.created_at'])
        .where('d.status', 'in', options.status ? [options.status] : ['dead', 'disabled'])
        .orderBy('d.seq').orderBy('d.endpoint_id')
        .limit(limit + 1);
      if (options.endpointId) query = query.where('d.endpoint_id', '=', options.endpointId);
      if (options.after) {
        const [seq, endpointId] = parseCursor(options.after);
        query = query.where(sql<boolean>`(d.seq, d.endpoint_id) > (${seq}, ${endpointId})`);
      }
      const rows = await query.execute();
      const page = rows.slice(0, limit);
      const last = page[page.length - 1];
      return {
        items: page.map((r) => ({
          eventId: r.event_id, endpointId: r.endpoint_id, type: r.type, accountId: r.account_id, status: r.status as DeadLetterStatus,
          attempts: r.attempts, lastStatus: r.last_status, lastError: r.last_error, eventCreatedAt: r.created_at, updatedAt: r.updated_at,
        })),
        ...(rows.length > limit && last ? { next: cursorOf(Number(last.seq), last.endpoint_id) } : {}),
      };
    },

    /**
     * Puts dead and disabled deliveries back in the queue: due now, attempts reset, and a fresh
     * retry window (events.retry_for from now). Their endpoints are enabled again; an endpoint
     * named by `endpointId` is enabled even if none of its deliveries was waiting.
     */
    async replay(selection: ReplaySelection): Promise<ReplayResult> {
      const ids = selection.ids ? [...new Set(selection.ids)] : undefined;
      // Replaying everything is a choice to be spelled out, never the default of a missing filter.
      if (!ids && !selection.endpointId && selection.all !== true) {
        throw new EventsError('replay_selection_missing', 'name the event ids, the endpoint, or both (or ask for all)');
      }
      if (ids && ids.length === 0) return { replayed: 0, reenabled: [] };
      if (ids && ids.length > MAX_REPLAY_IDS) throw new EventsError('too_many_ids', `at most ${MAX_REPLAY_IDS} event ids at a time; replay by endpoint for more`);
      const now = clock();
      const result = await db.transaction().execute(async (trx) => {
        let update = trx.updateTable('deliveries')
          .set({
            status: 'pending', attempts: 0, next_attempt_at: now, retry_from: now,
            locked_until: null, lease_token: null, last_error: null, last_status: null, updated_at: now,
          })
          .where('status', 'in', ['dead', 'disabled']);
        if (ids) update = update.where('event_id', 'in', ids);
        if (selection.endpointId) update = update.where('endpoint_id', '=', selection.endpointId);
        const replayed = await update.returning('endpoint_id').execute();
        const endpoints = new Set(replayed.map((r) => r.endpoint_id));
        if (selection.endpointId) endpoints.add(selection.endpointId);
        const reenabled = endpoints.size === 0 ? [] : await trx.updateTable('webhook_endpoints')
          .set({ disabled_at: null, disabled_reason: null, updated_at: now })
          .where('id', 'in', [...endpoints]).where('disabled_at', 'is not', null)
          .returning('id').execute();
        return { replayed: replayed.length, reenabled: reenabled.map((r) => r.id).sort() };
      });
      logger.info({ replayed: result.replayed, reenabled: result.reenabled, endpoint_id: selection.endpointId, ids: ids?.length, all: selection.all }, 'webhook deliveries replayed');
      return result;
    },
  };
}

export type DeadLetters = ReturnType<typeof createDeadLetters>;
