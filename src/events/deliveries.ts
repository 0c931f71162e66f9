// The delivery table's queries: fan-out (outbox → one row per subscribed endpoint), claiming due
// rows under a lease, and settling the outcomes. Every statement is short; nothing is held open
// while a receiver is being called.
import { sql, type Kysely } from 'kysely';
import type { ConsentState } from '../consent/ledger.ts';
import type { Database, DeliveryStatus } from '../storage/schema.ts';
import { disabledEndpointIds, subscribes, type Endpoint } from './endpoints.ts';
import type { OutboxEvent } from './envelope.ts';

type DB = Kysely<Database>;

/** Events fanned out per transaction. */
export const FAN_OUT_BATCH = 1000;
/** Rows per INSERT: 9 parameters each, well under PostgreSQL's 65,535. */
const INSERT_CHUNK = 2000;
/**
 * The oldest transaction of this database still writing: the least in-progress xid of the
 * statement's snapshot that belongs to a session of this database (pg_stat_activity knows a
 * session's xid only by its low 32 bits; in-progress xids are never 2^32 apart). Without one,
 * the snapshot's xmax: every committed row is below it. Not pg_snapshot_xmin alone: that is
 * cluster-wide, and a long transaction in another database on the same server would hold
 * every fan-out back. Sessions of other roles show no xid to an unprivileged role: they are not
 * waited for (Parley's own nodes share one role).
 */
const WRITE_HORIZON = sql`coalesce(
  (select min(x) from pg_snapshot_xip(pg_current_snapshot()) as x
   where (x::text::bigint % 4294967296) in (
     select backend_xid::text::bigint from pg_stat_activity
     where datname = current_database() and backend_xid is not null)),
  pg_snapshot_xmax(pg_current_snapshot()))`;
// A transaction that stays open longer than this (idle in transaction, a long migration) holds
// fan-out back no longer: past this age an event is fanned out regardless.
const SETTLE_LIMIT_MS = 60_000;
// One fan-out at a time across all nodes (pg_try_advisory_xact_lock key; any constant unique to this use).
const FAN_OUT_LOCK = 7251820412;

/** JSON columns come back parsed from pg and PGlite alike, but be safe with text. */
function parsePayload(value: unknown): Record<string, unknown> {
  const parsed: unknown = typeof value === 'string' ? JSON.parse(value) : value;
  return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? parsed as Record<string, unknown> : {};
}

/**
 * Moves the next events of the outbox into deliveries, one row per endpoint that subscribes to
 * the event (its type, and for answer/consent events its purpose), and marks them fanned out, in
 * one transaction: a crash before the commit leaves the events to be fanned out again; the
 * (event, endpoint) key makes that idempotent. An endpoint that is disabled gets its rows as
 * `disabled`, so that a replay can still send them. Returns how many events were taken and how
 * many delivery rows they made.
 *
 * Fan-out runs on one node at a time and in seq order, so a delivery row never appears behind a
 * later row of the same account. It also waits until every transaction of this database older
 * than the event's own has ended (WRITE_HORIZON), since seq is assigned at insert and commits can
 * overtake: an event written earlier by a transaction still open is not overtaken by a later one
 * of the same account. What it cannot catch: a transaction still open that took its id after the
 * event's transaction did, yet wrote its own event first (rare: ids are taken at the first
 * write, and requests write their event soon after); and it waits at most SETTLE_LIMIT_MS.
 */
export async function fanOut(db: DB, endpoints: readonly Endpoint[], now: Date, limit = FAN_OUT_BATCH): Promise<{ events: number; deliveries: number }> {
  return db.transaction().execute(async (trx) => {
    const { rows: [lock] } = await sql<{ locked: boolean }>`select pg_try_advisory_xact_lock(${FAN_OUT_LOCK}) as locked`.execute(trx);
    if (!lock?.locked) return { events: 0, deliveries: 0 };
    const events = await trx.selectFrom('outbox_events')
      .select(['id', 'type', 'account_id', 'payload', 'created_at', 'seq'])
      .where('fanned_out_at', 'is', null)
      .where(sql<boolean>`(txid is null or created_at < ${new Date(now.getTime() - SETTLE_LIMIT_MS)} or txid < ${WRITE_HORIZON})`)
      .orderBy('seq').limit(limit)
      .execute();
    if (events.length === 0) return { events: 0, deliveries: 0 };

    const disabled = endpoints.length > 0 ? await disabledEndpointIds(trx) : new Set<string>();
    const rows = events.flatMap((event) => {
      const payload = parsePayload(event.payload);
      return endpoints.filter((endpoint) => subscribes(endpoint, event.type, payload)).map((endpoint) => {
        const status: DeliveryStatus = disabled.has(endpoint.id) ? 'disabled' : 'pending';
        return {
          event_id: event.id, endpoint_id: endpoint.id, account_id: event.account_id, seq: event.seq, type: event.type,
          status, next_attempt_at: now, retry_from: event.created_at, updated_at: now,
        };
      });
    });
    for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
      await trx.insertInto('deliveries').values(rows.slice(i, i + INSERT_CHUNK))
        .onConflict((oc) => oc.columns(['event_id', 'endpoint_id']).doNothing()).execute();
    }
    await trx.updateTable('outbox_events').set({ fanned_out_at: now })
      .where('id', 'in', events.map((e) => e.id)).execute();
    return { events: events.length, deliveries: rows.length };
  });
}

/**
 * Refreshes the planner's statistics of the delivery table; returns its row count. A planner
 * that still believes the table empty (a backlog arrived since the last ANALYZE) walks the whole
 * backlog on every claim instead of the due index. PostgreSQL's autovacuum catches up within
 * a minute or so; the embedded database runs no autovacuum at all.
 */
export async function refreshStatistics(db: DB): Promise<number> {
  await sql`analyze deliveries`.execute(db);
  const { rows: [row] } = await sql<{ rows: number }>`select reltuples::bigint as rows from pg_class where oid = 'deliveries'::regclass`.execute(db);
  return Math.max(0, Number(row?.rows ?? 0));
}

export interface ClaimedDelivery {
  endpointId: string;
  /** Including this one. */
  attempts: number;
  retryFrom: Date;
  event: OutboxEvent;
}

/**
 * Claims up to `limit` due deliveries under a lease, in one statement (its own short transaction):
 * FOR UPDATE SKIP LOCKED keeps concurrent claimers (other batches, other nodes) off the same rows,
 * and the lease keeps them off afterwards while the row is being sent. A row is due when its time
 * has come, no lease holds it, and no earlier event of the same account is still pending for the
 * same endpoint: that is what keeps each account's events in order per endpoint. Claiming counts
 * the attempt, so a worker that dies mid-batch still moves the row toward its retry limit.
 */
export async function claimDue(db: DB, input: {
  endpointIds: readonly string[]; now: Date; leaseUntil: Date; token: string; limit: number;
}): Promise<ClaimedDelivery[]> {
  const { endpointIds, now, leaseUntil, token, limit } = input;
  if (endpointIds.length === 0) return [];
  const { rows } = await sql<{
    event_id: string; endpoint_id: string; attempts: number; retry_from: Date;
    type: string; account_id: string | null; payload: unknown; created_at: Date;
  }>`
    with due as (
      select d.event_id, d.endpoint_id
      from deliveries d
      where d.status = 'pending'
        and d.next_attempt_at <= ${now}
        and (d.locked_until is null or d.locked_until <= ${now})
        and d.endpoint_id in (${sql.join(endpointIds)})
        -- The head of its account's queue for this endpoint. A correlated subquery rather than
        -- NOT EXISTS: it is always run as one index probe per candidate, whatever the planner
        -- believes about the table's size (a join could turn quadratic on stale statistics).
        and (d.account_id is null or d.seq = (
          select e.seq from deliveries e
          where e.endpoint_id = d.endpoint_id and e.account_id = d.account_id and e.status = 'pending'
          order by e.seq limit 1
        ))
      order by d.next_attempt_at, d.seq
      limit ${limit}
      for update of d skip locked
    )
    update deliveries d
    set locked_until = ${leaseUntil}, lease_token = ${token}, attempts = d.attempts + 1, updated_at = ${now}
    from due, outbox_events o
    where d.event_id = due.event_id and d.endpoint_id = due.endpoint_id and o.id = d.event_id
    returning d.event_id, d.endpoint_id, d.attempts, d.retry_from, o.type, o.account_id, o.payload, o.created_at
  `.execute(db);
  return rows.map((r) => ({
    endpointId: r.endpoint_id,
    attempts: r.attempts,
    retryFrom: r.retry_from,
    event: { id: r.event_id, type: r.type, accountId: r.account_id, payload: parsePayload(r.payload), createdAt: r.created_at },
  }));
}

export interface Settlement {
  eventId: string;
  endpointId: string;
  status: Exclude<DeliveryStatus, 'disabled'>;
  /** When a pending row is next due. */
  nextAttemptAt?: Date;
  lastStatus: number | null;
  lastError: string | null;
}

/**
 * Records the outcomes of one claim, in one statement. Only rows still under this claim's lease
 * are touched: if the lease ran out and another worker took a row over, its outcome wins. A
 * success is recorded even if the endpoint was disabled meanwhile (it did arrive); a failure only
 * while the row is still pending.
 */
export async function settle(db: DB, token: string, now: Date, settlements: readonly Settlement[]): Promise<number> {
  if (settlements.length === 0) return 0;
  const values = sql.join(settlements.map((s) => sql`(${s.eventId}::text, ${s.endpointId}::text, ${s.status}::text, ${s.nextAttemptAt ?? null}::timestamptz, ${s.lastStatus}::integer, ${s.lastError}::text)`));
  const result = await sql`
    update deliveries d
    set status = v.status,
        next_attempt_at = coalesce(v.next_attempt_at, d.next_attempt_at),
        delivered_at = case when v.status = 'delivered' then ${now}::timestamptz else d.delivered_at end,
        last_status = v.last_status,
        last_error = v.last_error,
        locked_until = null,
        lease_token = null,
        updated_at = ${now}
    from (values ${values}) as v(event_id, endpoint_id, status, next_attempt_at, last_status, last_error)
    where d.event_id = v.event_id and d.endpoint_id = v.endpoint_id and d.lease_token = ${token}
      and (v.status = 'delivered' or d.status = 'pending')
  `.execute(db);
  return Number(result.numAffectedRows ?? 0);
}

export function consentKey(accountId: string, purpose: string): string {
  return `${accountId}\u0000${purpose}`;
}

/** The current consent state per (account, purpose) asked for (consent_current). */
export async function currentConsents(db: DB, pairs: readonly { accountId: string; purpose: string }[]): Promise<Map<string, ConsentState>> {
  if (pairs.length === 0) return new Map();
  const rows = await db.selectFrom('consent_current')
    .select(['subject', 'purpose', 'action', 'purpose_version', 'at'])
    .where('subject', 'in', [...new Set(pairs.map((p) => p.accountId))])
    .where('purpose', 'in', [...new Set(pairs.map((p) => p.purpose))])
    .execute();
  return new Map(rows.map((r) => [consentKey(r.subject, r.purpose), { action: r.action, version: r.purpose_version, at: r.at }]));
}
