// The delivery worker: runs in every node. Each round fans new outbox events out into
// deliveries, claims a batch of due deliveries under a lease, sends them in parallel outside any
// transaction, and records the outcomes. Several batches run side by side (events.parallel_batches)
// so that one slow receiver holds up only its own batch; several nodes run side by side the same
// way. A node that dies mid-batch leaves leases that run out, and another worker sends those rows
// again: delivery is at least once, receivers de-duplicate on the event id (webhook-id / jti).
//
// Mail is one more delivery target (src/mail/outbox.ts): its rows are claimed, retried,
// dead-lettered and replayed exactly as a webhook's, by a lane of its own, so that a backlog of
// webhooks never holds up a password reset. That lane runs in every node, whatever events.worker
// says of webhooks: sending mail was never optional.
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config/schema.ts';
import type { ConsentState } from '../consent/ledger.ts';
import type { Logger } from '../logger.ts';
import { describeMailError, type Mailer } from '../mail/mailer.ts';
import type { MailOutbox } from '../mail/outbox.ts';
import { errorSummary, isDatabaseUnavailable, type DB } from '../storage/database.ts';
import {
  claimDue, consentKey, currentConsents, fanOut, FAN_OUT_BATCH, refreshStatistics, settle,
  type ClaimedDelivery, type Settlement,
} from './deliveries.ts';
import { disableEndpoint, endpointsFromConfig, loggableUrl, subscribes, syncEndpoints, type Endpoint } from './endpoints.ts';
import { carriesAnswerValue, envelope, withheldBecause } from './envelope.ts';
import { scheduleRetry, type RetryPolicy } from './retry.ts';
import { attemptDelivery, type AttemptOutcome, type Fetch, type OutgoingRequest } from './send.ts';
import { setClaims, setRequest, standardWebhookRequest, type SignSet } from './signing.ts';

export interface DeliveryWorkerDeps {
  db: DB;
  config: Pick<Config, 'issuer' | 'webhooks' | 'events' | 'purposes'>;
  logger: Logger;
  clock: () => Date;
  /** Signs SETs for `format: set` endpoints: createSetSigner(signingKeys[0]). */
  signSet: SignSet;
  /** The `iss` of SETs; config.issuer unless given. */
  issuer?: string;
  /** The outside world; tests may replace it. */
  fetch?: Fetch;
  /** For backoff jitter; tests pin it. */
  random?: () => number;
  /** Sends the queued mail; without it, this worker delivers webhooks only. */
  mail?: { outbox: MailOutbox; mailer: Mailer };
}

/** What one round did. */
export interface DeliveryRound {
  fannedOut: number;
  claimed: number;
  delivered: number;
  /** Failed, and due again later. */
  retrying: number;
  dead: number;
  /** Sent to an endpoint that answered 410 Gone (its other pending deliveries are disabled too). */
  gone: number;
  /** Not sent: the user's consent no longer allows the data, or the endpoint no longer subscribes. */
  withheld: number;
}

/** What one batch of mail did. */
export type MailRound = Pick<DeliveryRound, 'claimed' | 'delivered' | 'retrying' | 'dead' | 'withheld'>;

export interface DeliveryWorker {
  /** Starts the background loops, returning at once: mail always, webhooks unless events.worker is false. */
  start(): void;
  /** Stops the loops and waits for the batches in flight to be recorded. */
  stop(): Promise<void>;
  /** One round in the caller's time: fan-out, then one batch. For tests, benchmarks and the CLI. */
  runOnce(): Promise<DeliveryRound>;
  /** One batch of mail in the caller's time. */
  sendMailOnce(): Promise<MailRound>;
  /**
   * Sends every mail that is due, waiting for what this node's mail lane has in flight; resolves
   * once none is left to send now (a retry scheduled for later is not waited for).
   */
  drainMail(): Promise<void>;
}

const ANALYZE_AFTER_ROWS = 1000;
const ANALYZE_AT_MOST_EVERY_MS = 30_000;

type Outcome =
  | { kind: 'settled'; settlement: Settlement }
  | { kind: 'gone'; delivery: ClaimedDelivery; endpoint: Endpoint; status: number; error: string };

export function createDeliveryWorker(deps: DeliveryWorkerDeps): DeliveryWorker {
  const { db, config, clock, signSet, mail } = deps;
  const settings = config.events;
  const issuer = deps.issuer ?? config.issuer;
  const fetch = deps.fetch ?? globalThis.fetch;
  const random = deps.random ?? Math.random;
  const name = `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const logger = deps.logger.child({ component: 'webhooks', worker: name });
  const mailLogger = deps.logger.child({ component: 'mail', worker: name });
  const endpoints = endpointsFromConfig(config.webhooks);
  const byId = new Map(endpoints.map((e) => [e.id, e]));
  const endpointIds = endpoints.map((e) => e.id);
  const policy: RetryPolicy = { baseSeconds: settings.backoff_base, maxSeconds: settings.backoff_max, retryForSeconds: settings.retry_for };
  // The lease must outlast a whole batch: every request in it runs in parallel and is cut off at
  // the timeout; the rest is a margin for signing and the two queries around it.
  const leaseMs = (2 * settings.timeout + 30) * 1000;

  let synced: Promise<void> | undefined;
  function ensureSynced(): Promise<void> {
    synced ??= syncEndpoints(db, endpoints, clock(), logger).catch((error: unknown) => {
      synced = undefined;
      throw error;
    });
    return synced;
  }

  async function runOnce(): Promise<DeliveryRound> {
    await ensureSynced();
    const fannedOut = await fanOut(db, endpoints, clock());
    await keepStatisticsFresh(fannedOut.deliveries);
    return { fannedOut: fannedOut.events, ...(await deliverBatch()) };
  }

  // After a burst: once this worker has fanned out at least as many rows as the table had at its
  // last ANALYZE (and at least ANALYZE_AFTER_ROWS), at most twice a minute. In a steady state of
  // a large table that is rare, and autovacuum keeps the statistics; at a cold start with a
  // backlog it is what keeps claims on the index. Real time, not the injected clock: upkeep.
  let insertedSinceAnalyze = 0;
  let rowsAtAnalyze = 0;
  let analyzedAt = 0;
  async function keepStatisticsFresh(inserted: number): Promise<void> {
    insertedSinceAnalyze += inserted;
    if (insertedSinceAnalyze < Math.max(ANALYZE_AFTER_ROWS, rowsAtAnalyze)) return;
    if (Date.now() - analyzedAt < ANALYZE_AT_MOST_EVERY_MS) return;
    insertedSinceAnalyze = 0;
    analyzedAt = Date.now();
    try {
      rowsAtAnalyze = await refreshStatistics(db);
    } catch (error) {
      // Upkeep, not delivery: the round goes on (autovacuum may still do it).
      logger.warn({ err: { message: (error as Error).message } }, 'could not refresh the planner statistics of the deliveries table');
    }
  }

  async function deliverBatch(): Promise<Omit<DeliveryRound, 'fannedOut'>> {
    const round = { claimed: 0, delivered: 0, retrying: 0, dead: 0, gone: 0, withheld: 0 };
    const now = clock();
    const token = randomUUID();
    const claimed = await claimDue(db, { endpointIds, now, leaseUntil: new Date(now.getTime() + leaseMs), token, limit: settings.batch_size });
    round.claimed = claimed.length;
    if (claimed.length === 0) return round;

    const consents = await currentConsents(db, claimed.flatMap(({ event }) => (
      carriesAnswerValue(event.type) && event.accountId && typeof event.payload.purpose === 'string'
        ? [{ accountId: event.accountId, purpose: event.payload.purpose }] : []
    )));
    const outcomes = await Promise.all(claimed.map((delivery) => deliverOne(delivery, consents).catch((error: unknown) => {
      // A bug, not a receiver's answer: still settle the row (as a retry) so the batch is recorded.
      const context = { event_id: delivery.event.id, endpoint_id: delivery.endpointId, attempt: delivery.attempts };
      logger.error({ ...context, err: { message: (error as Error).message, stack: (error as Error).stack } }, 'webhook delivery failed unexpectedly');
      return { kind: 'settled', settlement: failed(delivery, context, { kind: 'failed', status: null, error: `internal error: ${(error as Error).message}` }) } satisfies Outcome;
    })));

    const settlements: Settlement[] = [];
    const goneEndpoints = new Set<string>();
    for (const outcome of outcomes) {
      if (outcome.kind === 'gone') {
        round.gone++;
        // One 410 is enough; the endpoint's other rows in this batch are disabled with it.
        if (goneEndpoints.has(outcome.endpoint.id)) continue;
        goneEndpoints.add(outcome.endpoint.id);
        let disabled: number;
        try {
          disabled = await disableEndpoint(db, outcome.endpoint, {
            eventId: outcome.delivery.event.id, status: outcome.status, reason: `${outcome.error} (event ${outcome.delivery.event.id})`,
          }, clock());
        } catch (error) {
          // Not disabled: this row is retried like any failure, and its next 410 tries again.
          const context = { event_id: outcome.delivery.event.id, endpoint_id: outcome.endpoint.id, attempt: outcome.delivery.attempts };
          logger.error({ ...context, err: { message: (error as Error).message } }, 'webhook endpoint answered 410 Gone but could not be disabled');
          settlements.push(failed(outcome.delivery, context, { kind: 'failed', status: outcome.status, error: outcome.error }));
          continue;
        }
        logger.error({
          endpoint_id: outcome.endpoint.id, url: loggableUrl(outcome.endpoint.url), event_id: outcome.delivery.event.id, deliveries_disabled: disabled,
        }, 'WEBHOOK ENDPOINT DISABLED: the receiver answered 410 Gone. Its events are kept but not sent until its deliveries are replayed or its configuration changes');
        continue;
      }
      const { settlement } = outcome;
      if (settlement.status === 'delivered') round.delivered++;
      else if (settlement.status === 'pending') round.retrying++;
      else if (settlement.status === 'dead') round.dead++;
      else round.withheld++;
      settlements.push(settlement);
    }
    await settle(db, token, clock(), settlements);
    return round;
  }

  async function deliverOne(delivery: ClaimedDelivery, consents: ReadonlyMap<string, ConsentState>): Promise<Outcome> {
    const { event } = delivery;
    const endpoint = byId.get(delivery.endpointId)!;
    const context = { event_id: event.id, type: event.type, endpoint_id: endpoint.id, attempt: delivery.attempts };
    const settled = (settlement: Omit<Settlement, 'eventId' | 'endpointId'>): Outcome => (
      { kind: 'settled', settlement: { eventId: event.id, endpointId: endpoint.id, ...settlement } }
    );

    // The endpoint's subscription may have narrowed since fan-out.
    if (!subscribes(endpoint, event.type, event.payload)) {
      logger.info(context, 'webhook delivery withheld: the endpoint no longer subscribes to this event type or purpose');
      return settled({ status: 'withheld', lastStatus: null, lastError: 'the endpoint no longer subscribes to this event type or purpose' });
    }
    const purpose = typeof event.payload.purpose === 'string' ? event.payload.purpose : undefined;
    const withheld = withheldBecause(event.type, purpose, purpose === undefined ? undefined : config.purposes[purpose],
      purpose !== undefined && event.accountId ? consents.get(consentKey(event.accountId, purpose)) : undefined);
    if (withheld) {
      logger.info({ ...context, reason: withheld }, 'webhook delivery withheld: the user\'s consent no longer allows this answer to be sent');
      return settled({ status: 'withheld', lastStatus: null, lastError: withheld });
    }

    let request: OutgoingRequest;
    try {
      request = endpoint.format === 'set'
        ? setRequest(endpoint, await signSet(setClaims({ issuer, endpoint, event, data: event.payload, now: clock() })))
        : standardWebhookRequest(endpoint, event.id, clock(), JSON.stringify(envelope(event)));
    } catch (error) {
      logger.error({ ...context, err: { message: (error as Error).message } }, 'webhook could not be signed; it will be retried');
      return { kind: 'settled', settlement: failed(delivery, context, { kind: 'failed', status: null, error: `signing failed: ${(error as Error).message}` }) };
    }

    const outcome = await attemptDelivery(fetch, request, settings.timeout * 1000, clock);
    if (outcome.kind === 'delivered') {
      logger.debug({ ...context, status: outcome.status }, 'webhook delivered');
      return settled({ status: 'delivered', lastStatus: outcome.status, lastError: null });
    }
    if (outcome.kind === 'gone') return { kind: 'gone', delivery, endpoint, status: outcome.status, error: outcome.error };
    return { kind: 'settled', settlement: failed(delivery, context, outcome) };
  }

  /** A failed attempt, to be retried later or, past events.retry_for, dead-lettered. */
  function failed(delivery: ClaimedDelivery, context: Record<string, unknown>, outcome: Extract<AttemptOutcome, { kind: 'failed' }>): Settlement {
    const schedule = scheduleRetry({
      attempts: delivery.attempts, retryFrom: delivery.retryFrom, now: clock(), retryAfterSeconds: outcome.retryAfterSeconds, policy, random,
    });
    const isMail = delivery.endpointId === mail?.outbox.endpointId;
    const log = isMail ? mailLogger : logger;
    const what = isMail ? 'mail' : 'webhook';
    const base = { eventId: delivery.event.id, endpointId: delivery.endpointId, lastStatus: outcome.status, lastError: outcome.error };
    if (schedule.status === 'dead') {
      log.error({ ...context, status: outcome.status, error: outcome.error, reason: schedule.reason },
        `${what} delivery dead-lettered: no more retries; list and replay it with the dead-letter commands`);
      return { ...base, status: 'dead', lastError: `${outcome.error}; gave up: ${schedule.reason}` };
    }
    log.warn({ ...context, status: outcome.status, error: outcome.error, next_attempt_at: schedule.nextAttemptAt }, `${what} delivery failed; will retry`);
    return { ...base, status: 'pending', nextAttemptAt: schedule.nextAttemptAt };
  }

  // ---------------------------------------------------------------------------------------------
  // Mail

  async function sendMailOnce(): Promise<MailRound> {
    const round: MailRound = { claimed: 0, delivered: 0, retrying: 0, dead: 0, withheld: 0 };
    if (!mail) return round;
    const now = clock();
    const token = randomUUID();
    const claimed = await claimDue(db, {
      endpointIds: [mail.outbox.endpointId], now, leaseUntil: new Date(now.getTime() + leaseMs), token, limit: settings.batch_size,
    });
    round.claimed = claimed.length;
    if (claimed.length === 0) return round;
    const settlements = await Promise.all(claimed.map((delivery) => sendMail(mail, delivery)));
    for (const { status } of settlements) {
      if (status === 'delivered') round.delivered++;
      else if (status === 'pending') round.retrying++;
      else if (status === 'dead') round.dead++;
      else round.withheld++;
    }
    await settle(db, token, clock(), settlements);
    await mail.outbox.eraseSent(db, settlements.filter((s) => s.status === 'delivered').map((s) => s.eventId));
    return round;
  }

  async function sendMail(target: NonNullable<DeliveryWorkerDeps['mail']>, delivery: ClaimedDelivery): Promise<Settlement> {
    const { event } = delivery;
    // The payload holds the address and the token: it is never logged.
    const context = { event_id: event.id, type: event.type, endpoint_id: delivery.endpointId, attempt: delivery.attempts };
    const settled = { eventId: event.id, endpointId: delivery.endpointId };
    const message = target.outbox.compose(event.payload);
    if (!message) {
      mailLogger.warn(context, 'mail not sent: its content is gone (it was sent already) or unreadable');
      return { ...settled, status: 'withheld', lastStatus: null, lastError: 'nothing to compose the message from: sent already, or unreadable' };
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      // The transport has its own timeouts; this bounds the whole exchange, as for a webhook.
      await Promise.race([
        target.mailer.send(message),
        new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${settings.timeout}s`)), settings.timeout * 1000); }),
      ]);
    } catch (error) {
      const { status, error: reason } = describeMailError(error);
      return failed(delivery, context, { kind: 'failed', status, error: reason });
    } finally {
      clearTimeout(timer);
    }
    return { ...settled, status: 'delivered', lastStatus: null, lastError: null };
  }

  let mailInFlight: Promise<unknown> | undefined;

  async function drainMail(): Promise<void> {
    for (;;) {
      // A batch the background lane has claimed is sent and recorded before this one counts.
      if (mailInFlight) await mailInFlight.catch(() => {});
      const round = await sendMailOnce();
      if (round.claimed === 0 && !mailInFlight) return;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // The background loops

  let stopping: AbortController | undefined;
  let lanes: Promise<void>[] | undefined;

  // Mail queued on this node wakes the mail lane: the message goes out as soon as its transaction
  // has committed, not at the next poll. Mail queued on other nodes is found by polling.
  let mailWakeup = false;
  let mailNap: AbortController | undefined;
  mail?.outbox.onQueued(() => {
    mailWakeup = true;
    mailNap?.abort();
  });

  /** One background loop: rounds, and a poll interval between them when there was nothing more to do. */
  async function lane(what: 'webhook' | 'mail', index: number, signal: AbortSignal, round: () => Promise<{ busy: boolean }>): Promise<void> {
    const log = what === 'mail' ? mailLogger : logger;
    let failures = 0;
    while (!signal.aborted) {
      let busy = false;
      try {
        ({ busy } = await round());
        failures = 0;
      } catch (error) {
        failures++;
        // Whatever failed, the loop goes on: a lane that ended here would stop delivery for good.
        const err = errorSummary(error);
        if (isDatabaseUnavailable(error)) log.warn({ err, lane: index, failures }, `${what} delivery paused: the database is unavailable`);
        else log.error({ err, lane: index, failures }, `${what} delivery round failed`);
      }
      if (busy) continue;
      if (what === 'mail' && mailWakeup && failures === 0) continue;
      // After failures, wait longer (up to a minute's worth of polls) so a broken database is not hammered.
      const waitMs = settings.poll_interval * 1000 * Math.min(2 ** failures, 60);
      const nap = new AbortController();
      if (what === 'mail') mailNap = nap;
      await sleep(waitMs, undefined, { signal: AbortSignal.any([signal, nap.signal]), ref: false }).catch(() => { /* stopped, or woken */ });
      if (what === 'mail') mailNap = undefined;
    }
  }

  async function webhookRound(): Promise<{ busy: boolean }> {
    const round = await runOnce();
    // A full batch or fan-out means there is more: go on without waiting.
    return { busy: round.claimed >= settings.batch_size || round.fannedOut >= FAN_OUT_BATCH };
  }

  async function mailRound(): Promise<{ busy: boolean }> {
    mailWakeup = false;
    const batch = sendMailOnce();
    mailInFlight = batch;
    try {
      return { busy: (await batch).claimed >= settings.batch_size };
    } finally {
      mailInFlight = undefined;
    }
  }

  return {
    runOnce,
    sendMailOnce,
    drainMail,
    start() {
      if (lanes) return;
      const controller = new AbortController();
      stopping = controller;
      lanes = [];
      if (mail) {
        lanes.push(lane('mail', 0, controller.signal, mailRound));
        mailLogger.info({ endpoint_id: mail.outbox.endpointId }, 'mail delivery started');
      }
      if (!settings.worker) {
        logger.info('webhook delivery is off in this node (events.worker: false); other nodes deliver');
        return;
      }
      if (endpoints.length === 0) logger.info('no webhooks configured: outbox events are marked handled without being sent');
      // Without endpoints there is only the outbox to mark: one loop is plenty.
      const count = endpoints.length === 0 ? 1 : settings.parallel_batches;
      lanes.push(...Array.from({ length: count }, (_, i) => lane('webhook', i, controller.signal, webhookRound)));
      logger.info({ endpoints: endpoints.map((e) => ({ id: e.id, url: loggableUrl(e.url), format: e.format })), lanes: count }, 'webhook delivery started');
    },
    async stop() {
      if (!lanes) return;
      stopping?.abort();
      await Promise.all(lanes);
      lanes = undefined;
      stopping = undefined;
      logger.info('delivery stopped');
    },
  };
}
