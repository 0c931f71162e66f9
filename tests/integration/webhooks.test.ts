import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLocalJWKSet, decodeProtectedHeader, exportJWK, generateKeyPair, jwtVerify, type JWK } from 'jose';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { recordConsent } from '../../src/consent/ledger.ts';
import { createDeadLetters } from '../../src/events/dead-letters.ts';
import { endpointId } from '../../src/events/endpoints.ts';
import { recordEvent, type EventType } from '../../src/events/outbox.ts';
import { envelopeSchema } from '../../src/events/schemas.ts';
import { createSetSigner } from '../../src/events/signing.ts';
import { createDeliveryWorker, type DeliveryWorker, type DeliveryWorkerDeps } from '../../src/events/worker.ts';
import { createMailOutbox } from '../../src/mail/outbox.ts';
import type { Storage } from '../../src/storage/database.ts';
import type { DeliveryStatus } from '../../src/storage/schema.ts';
import { DEFAULT_BACKEND, openTestStorage, ownDatabase } from '../support/database.ts';
import { freePort } from '../support/server.ts';

// The delivery worker against a real database and real HTTP receivers on loopback. Only the
// clock is Parley's own to move; the receivers are real servers that verify what they get the
// way a customer's would. On PostgreSQL the file gets a database of its own: a worker fans out
// every event of its database, and other test files write events too.

const silent = pino({ level: 'silent' });
const base = loadConfig({ env: {}, overrides: { env: 'test' } });
const ISSUER = 'https://id.parley.test';

let storage: Storage;
let dropDatabase: (() => Promise<void>) | undefined;

beforeAll(async () => {
  const own = await ownDatabase('parley_webhooks');
  dropDatabase = own.drop;
  storage = await openTestStorage(own.backend);
});
afterAll(async () => {
  await storage?.close();
  await dropDatabase?.();
});

// ---------------------------------------------------------------------------------------------
// The world around the worker

/** A clock that moves only when told to. */
function manualClock(start = new Date()) {
  let now = start.getTime();
  return { now: () => new Date(now), advance: (seconds: number) => { now += seconds * 1000; } };
}

interface Exchange { headers: IncomingHttpHeaders; body: string }
interface Reply { status: number; headers?: Record<string, string>; body?: string; delayMs?: number }

/** A receiver on loopback: records every request and answers with `reply`. */
async function startReceiver(reply: (exchange: Exchange) => Reply | Promise<Reply> = () => ({ status: 204 }), port = 0) {
  const received: Exchange[] = [];
  const server = http.createServer((req, res) => {
    // The worker may give up (timeout) before the answer: writing to its closed socket is fine.
    res.on('error', () => {});
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const exchange = { headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      received.push(exchange);
      void Promise.resolve(reply(exchange)).then(async (answer) => {
        if (answer.delayMs) await new Promise((r) => setTimeout(r, answer.delayMs));
        if (res.destroyed) return;
        res.writeHead(answer.status, answer.headers ?? {});
        res.end(answer.body ?? '');
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`;
  return {
    url,
    received,
    /** Event ids in the order they arrived (standard bodies). */
    ids: () => received.map((r) => (JSON.parse(r.body) as { id: string }).id),
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

const newSecret = () => `whsec_${randomBytes(32).toString('base64')}`;

/** Standard Webhooks verification as a receiver writes it, independent of Parley's signing code. */
function verifiesWith(secret: string, exchange: Exchange, nowSeconds: number): boolean {
  const id = exchange.headers['webhook-id'];
  const timestamp = exchange.headers['webhook-timestamp'];
  const signatures = exchange.headers['webhook-signature'];
  if (typeof id !== 'string' || typeof timestamp !== 'string' || typeof signatures !== 'string') return false;
  if (Math.abs(nowSeconds - Number(timestamp)) > 300) return false;
  const expected = createHmac('sha256', Buffer.from(secret.slice('whsec_'.length), 'base64'))
    .update(`${id}.${timestamp}.${exchange.body}`).digest();
  return signatures.split(' ').some((entry) => {
    const [scheme, signature] = entry.split(',');
    const actual = Buffer.from(signature ?? '', 'base64');
    return scheme === 'v1' && actual.length === expected.length && timingSafeEqual(actual, expected);
  });
}

interface WebhookInput { id?: string; url: string; events?: EventType[]; purposes?: string[]; format?: 'standard' | 'set'; secrets?: string[] }

const ALL_EVENTS: EventType[] = [
  'account.created', 'account.deleted', 'answer.recorded', 'answer.changed', 'answer.deleted',
  'consent.granted', 'consent.withdrawn', 'preferences.changed', 'reward.granted',
];

/** Config with these endpoints; small numbers where the defaults would make tests slow. */
function configWith(webhooks: WebhookInput[], events: Partial<Config['events']> = {}): Config {
  const loaded = loadConfig({
    env: {},
    overrides: {
      env: 'test',
      issuer: ISSUER,
      webhooks: webhooks.map((w) => ({
        id: w.id ?? `test-${randomBytes(4).toString('hex')}`,
        events: ALL_EVENTS, purposes: ['personalization', 'offers'],
        ...(w.format === 'set' ? {} : { secrets: [newSecret()] }),
        ...w,
      })),
    },
  });
  return { ...loaded, events: { ...loaded.events, ...events } };
}

let setKeys: { signSet: DeliveryWorkerDeps['signSet']; publicJwk: JWK } | undefined;
async function issuerKeys() {
  if (!setKeys) {
    const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
    const kid = 'test-key-1';
    setKeys = {
      signSet: createSetSigner({ ...(await exportJWK(privateKey)), kid, alg: 'RS256' }),
      publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' },
    };
  }
  return setKeys;
}

async function worker(config: Config, clock: { now: () => Date }, extra: Partial<DeliveryWorkerDeps> = {}): Promise<DeliveryWorker> {
  return createDeliveryWorker({
    db: storage.db, config, logger: silent, clock: clock.now, signSet: (await issuerKeys()).signSet, random: () => 0.5, ...extra,
  });
}

/**
 * Rounds until nothing is due now and every event written so far has been fanned out. A round
 * can find nothing to fan out while a transaction elsewhere on the server is still open (fan-out
 * waits for those), so this polls instead of trusting one round.
 */
async function drain(w: DeliveryWorker): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const round = await w.runOnce();
    if (round.claimed > 0 || round.fannedOut > 0) continue;
    const unfanned = await storage.db.selectFrom('outbox_events').select('id').where('fanned_out_at', 'is', null).limit(1).execute();
    if (unfanned.length === 0) return;
    if (Date.now() > deadline) throw new Error('events were not fanned out within 10 s');
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function emit(clock: { now: () => Date }, accountId: string, type: EventType, payload: Record<string, unknown> = {}): Promise<string> {
  return storage.db.transaction().execute((trx) => recordEvent(trx, { type, accountId, payload: { account_id: accountId, ...payload } }, clock.now()));
}

async function consent(clock: { now: () => Date }, accountId: string, purpose: string, action: 'granted' | 'withdrawn'): Promise<string> {
  await storage.db.transaction().execute((trx) => recordConsent(trx, base, { accountId, purpose, action, clientId: null, source: 'api', locale: 'en' }, clock.now()));
  const row = await storage.db.selectFrom('outbox_events').select('id').where('account_id', '=', accountId).orderBy('seq', 'desc').limit(1).executeTakeFirstOrThrow();
  return row.id;
}

/** An answer event's payload as the question screen writes it: given under consent. */
const answer = (questionId: string, purpose: string, value: unknown) => ({
  question_id: questionId, screenset_id: 'welcome', screenset_version: 1, purpose, value, client_id: 'spa', locale: 'en', source: 'screen',
  consent: { purpose, legal_basis: 'consent', version: 1, state: 'granted' },
});

async function deliveryOf(eventId: string, endpoint: string) {
  return storage.db.selectFrom('deliveries').selectAll().where('event_id', '=', eventId).where('endpoint_id', '=', endpoint).executeTakeFirst();
}

async function statusesOf(endpoint: string): Promise<DeliveryStatus[]> {
  const rows = await storage.db.selectFrom('deliveries').select('status').where('endpoint_id', '=', endpoint).orderBy('seq').execute();
  return rows.map((r) => r.status);
}

// ---------------------------------------------------------------------------------------------

describe('signed delivery', () => {
  it('sends a Standard Webhook signed with every configured secret, so a receiver still on the old one verifies it', async () => {
    const clock = manualClock();
    const [current, previous, unrelated] = [newSecret(), newSecret(), newSecret()];
    const receiver = await startReceiver();
    const config = configWith([{ url: receiver.url, secrets: [current, previous] }]);
    const w = await worker(config, clock);
    const account = randomUUID();
    const id = await emit(clock, account, 'account.created', { email_verified: false });
    await drain(w);

    expect(receiver.received).toHaveLength(1);
    const [exchange] = receiver.received;
    expect(exchange!.headers['content-type']).toBe('application/json');
    expect(exchange!.headers['webhook-id']).toBe(id);
    expect(exchange!.headers['webhook-timestamp']).toBe(String(Math.floor(clock.now().getTime() / 1000)));
    expect(String(exchange!.headers['webhook-signature']).split(' ')).toHaveLength(2);
    const nowSeconds = Math.floor(clock.now().getTime() / 1000);
    expect(verifiesWith(current, exchange!, nowSeconds)).toBe(true);
    expect(verifiesWith(previous, exchange!, nowSeconds)).toBe(true);
    expect(verifiesWith(unrelated, exchange!, nowSeconds)).toBe(false);
    expect(verifiesWith(current, { ...exchange!, body: exchange!.body.replace('false', 'true') }, nowSeconds)).toBe(false);

    const body: unknown = JSON.parse(exchange!.body);
    expect(body).toEqual({
      id, type: 'account.created', timestamp: clock.now().toISOString(), version: 1,
      data: { version: 1, account_id: account, email_verified: false },
    });
    expect(envelopeSchema('account.created').safeParse(body).success).toBe(true);
    expect((await deliveryOf(id, config.webhooks[0]!.id!))).toMatchObject({ status: 'delivered', attempts: 1, last_status: 204, lease_token: null });
    await receiver.close();
  });

  it("pushes a Security Event Token signed with the issuer's key, verified with the public JWKS", async () => {
    const clock = manualClock();
    const { publicJwk } = await issuerKeys();
    const jwks = createLocalJWKSet({ keys: [publicJwk] });
    const verified: Record<string, unknown>[] = [];
    const keyIds: unknown[] = [];
    const refusals: string[] = [];
    let url = '';
    // The receiver only verifies and records; the test's expectations are checked below, where a
    // failure fails the test rather than becoming the receiver's 400.
    const receiver = await startReceiver(async ({ headers, body }) => {
      if (headers['content-type'] !== 'application/secevent+jwt') return { status: 415 };
      try {
        // RFC 8935 §2: a valid SET is acknowledged with 202.
        const { payload, protectedHeader } = await jwtVerify(body, jwks, { issuer: ISSUER, audience: url, typ: 'secevent+jwt', algorithms: ['RS256'] });
        keyIds.push(protectedHeader.kid);
        verified.push(payload);
        return { status: 202 };
      } catch (error) {
        refusals.push((error as Error).message);
        return { status: 400, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ err: 'authentication_failed', description: (error as Error).message }) };
      }
    });
    url = receiver.url;
    const config = configWith([{ url, format: 'set' }]);
    const w = await worker(config, clock);
    const account = randomUUID();
    await consent(clock, account, 'personalization', 'granted');
    const id = await emit(clock, account, 'answer.recorded', answer('favourite_drink', 'personalization', 'tea'));
    await drain(w);

    expect(refusals).toEqual([]);
    expect(keyIds).toEqual(['test-key-1', 'test-key-1']);
    expect(verified).toHaveLength(2);
    const set = verified[1]!;
    expect(set).toMatchObject({
      iss: ISSUER, aud: url, jti: id, iat: Math.floor(clock.now().getTime() / 1000), toe: Math.floor(clock.now().getTime() / 1000),
      sub_id: { format: 'opaque', id: account },
    });
    expect(set.events).toEqual({
      'https://parley.dev/events/answer.recorded': { version: 1, account_id: account, ...answer('favourite_drink', 'personalization', 'tea') },
    });
    expect(decodeProtectedHeader(receiver.received[1]!.body)).toMatchObject({ alg: 'RS256', typ: 'secevent+jwt' });
    expect((await deliveryOf(id, config.webhooks[0]!.id!))).toMatchObject({ status: 'delivered', last_status: 202 });
    await receiver.close();
  });
});

describe('failures and retries', () => {
  it('retries a receiver that is down, with backoff, and delivers once it is back', async () => {
    const clock = manualClock();
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/events`;
    const config = configWith([{ url }]);
    const endpoint = config.webhooks[0]!.id!;
    const w = await worker(config, clock);
    const id = await emit(clock, randomUUID(), 'account.created', { email_verified: false });
    await drain(w);

    let row = await deliveryOf(id, endpoint);
    // Full jitter with random() = 0.5: half of backoff_base (5 s) for the first retry.
    expect(row).toMatchObject({ status: 'pending', attempts: 1, last_status: null, locked_until: null });
    expect(row!.last_error).toMatch(/ECONNREFUSED/);
    expect(row!.next_attempt_at.getTime() - clock.now().getTime()).toBe(2500);

    clock.advance(2);
    expect((await w.runOnce()).claimed).toBe(0);
    clock.advance(1);
    await drain(w);
    row = await deliveryOf(id, endpoint);
    // The second failure waits up to twice as long.
    expect(row).toMatchObject({ status: 'pending', attempts: 2 });
    expect(row!.next_attempt_at.getTime() - clock.now().getTime()).toBe(5000);

    const receiver = await startReceiver(undefined, port);
    clock.advance(5);
    await drain(w);
    expect(receiver.ids()).toEqual([id]);
    expect(await deliveryOf(id, endpoint)).toMatchObject({ status: 'delivered', attempts: 3, last_error: null });
    await receiver.close();
  });

  it('gives a slow receiver the timeout, then retries', async () => {
    const clock = manualClock();
    let calls = 0;
    const receiver = await startReceiver(() => (++calls === 1 ? { status: 204, delayMs: 1000 } : { status: 204 }));
    const config = configWith([{ url: receiver.url }], { timeout: 0.2 });
    const w = await worker(config, clock);
    const id = await emit(clock, randomUUID(), 'account.created', { email_verified: true });
    const started = Date.now();
    await drain(w);
    expect(Date.now() - started).toBeLessThan(900);
    expect(await deliveryOf(id, config.webhooks[0]!.id!)).toMatchObject({ status: 'pending', attempts: 1, last_error: 'no response within 0.2s' });
    clock.advance(10);
    await drain(w);
    expect(await deliveryOf(id, config.webhooks[0]!.id!)).toMatchObject({ status: 'delivered', attempts: 2 });
    await receiver.close();
  });

  it('retries a 500, and treats a redirect as a failure without following it', async () => {
    const clock = manualClock();
    const elsewhere = await startReceiver();
    let calls = 0;
    const flaky = await startReceiver(() => (++calls === 1 ? { status: 500, body: 'database\n  exploded' } : { status: 200, body: 'ok' }));
    const moved = await startReceiver(() => ({ status: 307, headers: { location: elsewhere.url } }));
    const config = configWith([{ id: 'flaky', url: flaky.url }, { id: 'moved', url: moved.url }]);
    const w = await worker(config, clock);
    const id = await emit(clock, randomUUID(), 'account.deleted');
    await drain(w);

    expect(await deliveryOf(id, 'flaky')).toMatchObject({ status: 'pending', last_status: 500, last_error: 'HTTP 500: database exploded' });
    expect(await deliveryOf(id, 'moved')).toMatchObject({ status: 'pending', last_status: 307 });
    expect((await deliveryOf(id, 'moved'))!.last_error).toMatch(/redirects are not followed/);
    expect(elsewhere.received).toHaveLength(0);

    clock.advance(60);
    await drain(w);
    expect(await deliveryOf(id, 'flaky')).toMatchObject({ status: 'delivered', last_status: 200, attempts: 2 });
    expect(elsewhere.received).toHaveLength(0);
    await Promise.all([elsewhere.close(), flaky.close(), moved.close()]);
  });

  it('waits at least as long as a 429 Retry-After says, in seconds or as an HTTP date', async () => {
    const clock = manualClock(new Date('2026-12-01T12:00:00Z'));
    let calls = 0;
    const receiver = await startReceiver(() => {
      calls++;
      if (calls === 1) return { status: 429, headers: { 'retry-after': '120' } };
      if (calls === 2) return { status: 429, headers: { 'retry-after': 'Tue, 01 Dec 2026 13:00:00 GMT' } };
      return { status: 204 };
    });
    const config = configWith([{ url: receiver.url }]);
    const endpoint = config.webhooks[0]!.id!;
    const w = await worker(config, clock);
    const id = await emit(clock, randomUUID(), 'account.created', { email_verified: false });
    await drain(w);
    expect((await deliveryOf(id, endpoint))!.next_attempt_at).toEqual(new Date('2026-12-01T12:02:00Z'));

    clock.advance(119);
    await drain(w);
    expect(calls).toBe(1);
    clock.advance(1);
    await drain(w);
    expect(calls).toBe(2);
    expect((await deliveryOf(id, endpoint))!.next_attempt_at).toEqual(new Date('2026-12-01T13:00:00Z'));

    clock.advance(3600 - 121);
    await drain(w);
    expect(calls).toBe(2);
    clock.advance(1);
    await drain(w);
    expect(await deliveryOf(id, endpoint)).toMatchObject({ status: 'delivered', attempts: 3 });
    await receiver.close();
  });

  it('dead-letters a delivery after retry_for, lists it, and sends it again on replay', async () => {
    const clock = manualClock();
    let healthy = false;
    const receiver = await startReceiver(() => (healthy ? { status: 204 } : { status: 503 }));
    const config = configWith([{ url: receiver.url }], { retry_for: 60, backoff_base: 10, backoff_max: 20 });
    const endpoint = config.webhooks[0]!.id!;
    const w = await worker(config, clock);
    const account = randomUUID();
    const first = await emit(clock, account, 'account.created', { email_verified: false });
    const second = await emit(clock, account, 'preferences.changed', { source: 'api', changes: [{ channel: 'email', topic: 'news', enabled: true }] });

    // Attempts at 0 s, +5 s, +10 s (backoff ≤ 20 s), ... and the last one at the end of the window.
    const attemptsAt: number[] = [];
    for (let elapsed = 0; elapsed <= 70; elapsed += 1) {
      const before = receiver.received.length;
      await drain(w);
      if (receiver.received.length > before) attemptsAt.push(elapsed);
      clock.advance(1);
    }
    expect(attemptsAt[0]).toBe(0);
    expect(attemptsAt[attemptsAt.length - 1]).toBe(60);
    const row = await deliveryOf(first, endpoint);
    expect(row).toMatchObject({ status: 'dead', last_status: 503, attempts: attemptsAt.length });
    expect(row!.last_error).toMatch(/^HTTP 503; gave up: retried for 60s/);
    // The account's next event waited behind the first, and its own window ran out meanwhile.
    expect(receiver.ids().filter((id) => id === second).length).toBe(1);

    const dead = createDeadLetters({ db: storage.db, clock: clock.now, logger: silent });
    const page = await dead.listDead({ endpointId: endpoint });
    expect(page.items.map((d) => [d.eventId, d.status])).toEqual([[first, 'dead'], [second, 'dead']]);
    expect(page.items[0]).toMatchObject({ type: 'account.created', accountId: account, lastStatus: 503 });

    healthy = true;
    expect(await dead.replay({ ids: [first] })).toEqual({ replayed: 1, reenabled: [] });
    await drain(w);
    expect(await deliveryOf(first, endpoint)).toMatchObject({ status: 'delivered', attempts: 1 });
    expect(await deliveryOf(second, endpoint)).toMatchObject({ status: 'dead' });
    expect(await dead.replay({ endpointId: endpoint })).toEqual({ replayed: 1, reenabled: [] });
    await drain(w);
    expect(await statusesOf(endpoint)).toEqual(['delivered', 'delivered']);
    expect((await dead.listDead({ endpointId: endpoint })).items).toEqual([]);
    // Replaying everything must be asked for; with nothing left dead it does nothing.
    await expect(dead.replay({} as never)).rejects.toMatchObject({ code: 'replay_selection_missing' });
    expect(await dead.replay({ all: true, endpointId: endpoint })).toEqual({ replayed: 0, reenabled: [] });
    await receiver.close();
  });

  it('disables an endpoint that answers 410 Gone, keeps it disabled across restarts, and re-enables it on replay', async () => {
    const clock = manualClock();
    let gone = true;
    const receiver = await startReceiver(() => (gone ? { status: 410, body: 'this hook was removed' } : { status: 204 }));
    const other = await startReceiver();
    const config = configWith([{ id: 'gone', url: receiver.url }, { id: 'other', url: other.url }]);
    const w = await worker(config, clock);
    const accounts = [randomUUID(), randomUUID(), randomUUID()];
    const ids: string[] = [];
    for (const account of accounts) ids.push(await emit(clock, account, 'account.created', { email_verified: false }), await emit(clock, account, 'account.deleted'));
    await drain(w);

    // One batch: the first event of each account; the 410 disables everything pending.
    expect(receiver.received.length).toBeGreaterThanOrEqual(1);
    expect(await statusesOf('gone')).toEqual(Array(6).fill('disabled'));
    const endpointRow = await storage.db.selectFrom('webhook_endpoints').selectAll().where('id', '=', 'gone').executeTakeFirstOrThrow();
    expect(endpointRow.disabled_at).not.toBeNull();
    expect(endpointRow.disabled_reason).toMatch(/^HTTP 410 Gone: this hook was removed/);
    // The other endpoint is not affected.
    expect(other.received).toHaveLength(6);

    // A restarted worker (same config) keeps it disabled; new events are kept for it, not sent.
    const restarted = await worker(config, clock);
    const later = await emit(clock, accounts[0]!, 'preferences.changed', { source: 'api', changes: [{ channel: 'sms', topic: 'offers', enabled: false }] });
    const before = receiver.received.length;
    clock.advance(3600);
    await drain(restarted);
    expect(receiver.received.length).toBe(before);
    expect((await deliveryOf(later, 'gone'))!.status).toBe('disabled');

    const dead = createDeadLetters({ db: storage.db, clock: clock.now, logger: silent });
    const firstPage = await dead.listDead({ endpointId: 'gone', status: 'disabled', limit: 5 });
    expect(firstPage.items).toHaveLength(5);
    const secondPage = await dead.listDead({ endpointId: 'gone', status: 'disabled', limit: 5, after: firstPage.next! });
    expect(secondPage).toEqual({ items: [expect.objectContaining({ status: 'disabled' }), expect.objectContaining({ eventId: later })] });
    expect(new Set([...firstPage.items, ...secondPage.items].map((d) => d.eventId))).toEqual(new Set([...ids, later]));
    gone = false;
    expect(await dead.replay({ endpointId: 'gone' })).toEqual({ replayed: 7, reenabled: ['gone'] });
    await drain(restarted);
    expect(await statusesOf('gone')).toEqual(Array(7).fill('delivered'));
    expect(new Set(receiver.ids())).toEqual(new Set([...ids, later]));
    await Promise.all([receiver.close(), other.close()]);
  });

  it('enables a disabled endpoint again when its configuration changes', async () => {
    const clock = manualClock();
    const receiver = await startReceiver(() => ({ status: 410 }));
    const config = configWith([{ id: 'moving', url: receiver.url }]);
    await emit(clock, randomUUID(), 'account.created', { email_verified: false });
    await drain(await worker(config, clock));
    expect((await storage.db.selectFrom('webhook_endpoints').select('disabled_at').where('id', '=', 'moving').executeTakeFirstOrThrow()).disabled_at).not.toBeNull();

    const fixed = await startReceiver();
    const id = await emit(clock, randomUUID(), 'account.created', { email_verified: false });
    const moved = configWith([{ id: 'moving', url: fixed.url }]);
    await drain(await worker(moved, clock));
    expect((await storage.db.selectFrom('webhook_endpoints').select('disabled_at').where('id', '=', 'moving').executeTakeFirstOrThrow()).disabled_at).toBeNull();
    expect(fixed.ids()).toEqual([id]);
    await Promise.all([receiver.close(), fixed.close()]);
  });
});

describe('order and filtering', () => {
  it("delivers each account's events in order: a failing event holds back its account's later events, not other accounts'", async () => {
    const clock = manualClock();
    const failOnce = new Set<string>();
    const receiver = await startReceiver(({ body }) => {
      const { id } = JSON.parse(body) as { id: string };
      if (failOnce.delete(id)) return { status: 500 };
      return { status: 204 };
    });
    const config = configWith([{ url: receiver.url }]);
    const w = await worker(config, clock);
    const [a, b] = [randomUUID(), randomUUID()];
    const aEvents: string[] = [];
    const bEvents: string[] = [];
    for (let i = 0; i < 3; i++) {
      aEvents.push(await emit(clock, a, 'preferences.changed', { source: 'api', changes: [{ channel: 'email', topic: 'news', enabled: i % 2 === 0 }] }));
      bEvents.push(await emit(clock, b, 'preferences.changed', { source: 'api', changes: [{ channel: 'email', topic: 'news', enabled: i % 2 === 0 }] }));
    }
    failOnce.add(aEvents[0]!);
    await drain(w);
    // b's events all went through; a's first failed and its others waited.
    expect(receiver.ids().filter((id) => bEvents.includes(id))).toEqual(bEvents);
    expect(receiver.ids().filter((id) => aEvents.includes(id))).toEqual([aEvents[0]]);

    clock.advance(60);
    await drain(w);
    expect(receiver.ids().filter((id) => aEvents.includes(id))).toEqual([aEvents[0], ...aEvents]);
    await receiver.close();
  });

  it('never sends mail to a webhook endpoint: mail is a delivery target of its own, not an event', async () => {
    const clock = manualClock();
    const receiver = await startReceiver();
    const config = configWith([{ url: receiver.url }]);
    const w = await worker(config, clock);
    const outbox = createMailOutbox({ config, endpointId: `mail-${randomBytes(4).toString('hex')}` });
    const account = randomUUID();
    const created = await emit(clock, account, 'account.created', { email_verified: false });
    await storage.db.transaction().execute((trx) => outbox.queue(trx, { accountId: account, address: 'ann@example.com' }, {
      kind: 'verify_email', locale: 'en', token: randomBytes(32).toString('base64url'),
    }, clock.now()));
    await drain(w);

    expect(receiver.ids()).toEqual([created]);
    const rows = await storage.db.selectFrom('deliveries').innerJoin('outbox_events', 'outbox_events.id', 'deliveries.event_id')
      .select(['outbox_events.type', 'deliveries.endpoint_id', 'deliveries.status']).where('outbox_events.account_id', '=', account).orderBy('deliveries.seq').execute();
    expect(rows).toEqual([
      { type: 'account.created', endpoint_id: config.webhooks[0]!.id!, status: 'delivered' },
      { type: 'mail.verify_email', endpoint_id: outbox.endpointId, status: 'pending' },
    ]);
    await receiver.close();
  });

  it("sends answer and consent events only to endpoints registered for their purpose; account events to all", async () => {
    const clock = manualClock();
    const receiver = await startReceiver();
    const config = configWith([{ id: 'personalization-only', url: receiver.url, purposes: ['personalization'] }]);
    const w = await worker(config, clock);
    const account = randomUUID();
    const sent = [
      await emit(clock, account, 'account.created', { email_verified: false }),
      await consent(clock, account, 'personalization', 'granted'),
      await emit(clock, account, 'answer.recorded', answer('favourite_drink', 'personalization', 'coffee')),
    ];
    const notSent = [
      await consent(clock, account, 'offers', 'granted'),
      await emit(clock, account, 'answer.recorded', answer('birthday', 'offers', '1990-01-01')),
      await emit(clock, account, 'answer.deleted', { question_id: 'birthday', purpose: 'offers', source: 'retention' }),
    ];
    sent.push(await emit(clock, account, 'preferences.changed', { source: 'api', changes: [{ channel: 'push', topic: 'offers', enabled: true }] }));
    await drain(w);
    expect(receiver.ids()).toEqual(sent);
    // Not fanned out at all: nothing to list, nothing to replay.
    const rows = await storage.db.selectFrom('deliveries').select('event_id').where('event_id', 'in', notSent).execute();
    expect(rows).toEqual([]);
    await receiver.close();
  });

  it("sends answers, with the consent they were given under, only while the user's consent still allows them", async () => {
    const clock = manualClock();
    const receiver = await startReceiver();
    const config = configWith([{ url: receiver.url }]);
    const endpoint = config.webhooks[0]!.id!;
    const w = await worker(config, clock);
    const account = randomUUID();
    await consent(clock, account, 'personalization', 'granted');
    const recorded = await emit(clock, account, 'answer.recorded', answer('favourite_drink', 'personalization', 'coffee'));
    await drain(w);

    const withdrawn = await consent(clock, account, 'personalization', 'withdrawn');
    const changed = await emit(clock, account, 'answer.changed', { ...answer('favourite_drink', 'personalization', 'tea'), previous_value: 'coffee' });
    const deleted = await emit(clock, account, 'answer.deleted', { question_id: 'favourite_drink', purpose: 'personalization', source: 'preference_center' });
    await drain(w);

    const bodies = new Map(receiver.received.map((r) => {
      const body = JSON.parse(r.body) as { id: string; data: Record<string, unknown> };
      return [body.id, body.data];
    }));
    expect(bodies.get(recorded)).toMatchObject({ value: 'coffee', consent: { purpose: 'personalization', legal_basis: 'consent', state: 'granted', version: 1 } });
    expect(bodies.has(withdrawn)).toBe(true);
    // Written while consent was granted, but sent after the withdrawal: withheld.
    expect(bodies.has(changed)).toBe(false);
    expect(await deliveryOf(changed, endpoint)).toMatchObject({ status: 'withheld', last_error: 'consent for purpose "personalization" is withdrawn' });
    // The deletion carries no value and tells the receiver to erase its copy: always sent.
    expect(bodies.get(deleted)).toMatchObject({ question_id: 'favourite_drink', purpose: 'personalization' });
    await receiver.close();
  });
});

// PGlite is one session: two transactions cannot be open at once there.
describe.runIf(DEFAULT_BACKEND.name === 'postgres')('commit order', () => {
  it("does not let a later event overtake an earlier one of the same account whose transaction commits last", async () => {
    const clock = manualClock();
    const receiver = await startReceiver();
    const config = configWith([{ url: receiver.url }]);
    const w = await worker(config, clock);
    const account = randomUUID();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => { release = resolve; });
    let first = '';
    let written!: () => void;
    const firstWritten = new Promise<void>((resolve) => { written = resolve; });
    const slow = storage.db.transaction().execute(async (trx) => {
      first = await recordEvent(trx, { type: 'account.created', accountId: account, payload: { account_id: account, email_verified: false } }, clock.now());
      written();
      await gate;
    });
    await firstWritten;
    const second = await emit(clock, account, 'account.deleted');
    for (let i = 0; i < 3; i++) await w.runOnce();
    expect(await storage.db.selectFrom('deliveries').select('event_id').where('event_id', '=', second).execute()).toEqual([]);
    expect(receiver.received).toHaveLength(0);

    release();
    await slow;
    await drain(w);
    expect(receiver.ids()).toEqual([first, second]);
    await receiver.close();
  });
});

describe('crashes and concurrency', () => {
  it('delivers every event at least once when a worker dies mid-batch: its lease runs out and another worker takes over', async () => {
    const clock = manualClock();
    const receiver = await startReceiver();
    const config = configWith([{ url: receiver.url }], { batch_size: 50 });
    const endpoint = config.webhooks[0]!.id!;
    const accounts = Array.from({ length: 10 }, () => randomUUID());
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) for (const account of accounts) ids.push(await emit(clock, account, 'account.deleted'));

    // Worker A sends every other request, then "dies": none of its requests ever completes, so
    // it never records an outcome.
    let calls = 0;
    const hanging: (() => void)[] = [];
    const dying = await worker(config, clock, {
      fetch: async (input, init) => {
        if (calls++ % 2 === 0) await fetch(input, init);
        return new Promise<Response>((_, reject) => hanging.push(() => reject(new Error('process killed'))));
      },
    });
    void dying.runOnce();
    const deadline = Date.now() + 10_000;
    while (calls < 10 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(calls).toBe(10); // the first event of each account: the rest wait behind them

    // Worker B sees those rows leased, and leaves them alone until the lease runs out.
    const survivor = await worker(config, clock);
    await drain(survivor);
    expect((await statusesOf(endpoint)).filter((s) => s === 'delivered')).toHaveLength(0);
    clock.advance(2 * config.events.timeout + 31);
    await drain(survivor);

    expect(await statusesOf(endpoint)).toEqual(Array(30).fill('delivered'));
    const received = new Set(receiver.ids());
    for (const id of ids) expect(received.has(id)).toBe(true);
    // The dead worker's late outcome (its requests finally fail) is ignored: B's record stands.
    for (const release of hanging) release();
    await new Promise((r) => setTimeout(r, 50));
    expect(await statusesOf(endpoint)).toEqual(Array(30).fill('delivered'));
    await receiver.close();
  });

  it('lets several workers drain one backlog without sending any event twice', async () => {
    const clock = manualClock();
    const receiver = await startReceiver();
    const config = configWith([{ url: receiver.url }], { batch_size: 7 });
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) ids.push(await emit(clock, randomUUID(), 'account.created', { email_verified: false }));
    const workers = await Promise.all([worker(config, clock), worker(config, clock), worker(config, clock)]);
    await Promise.all(workers.map((w) => drain(w)));
    expect(receiver.ids().sort()).toEqual([...ids].sort());
    await receiver.close();
  });

  it('runs in the background from start(), and stop() waits for the batch in flight', async () => {
    const clock = manualClock();
    const receiver = await startReceiver(() => ({ status: 204, delayMs: 300 }));
    const config = configWith([{ url: receiver.url }], { poll_interval: 0.05 });
    const w = await worker(config, clock);
    const id = await emit(clock, randomUUID(), 'account.created', { email_verified: false });
    w.start();
    const deadline = Date.now() + 10_000;
    while (receiver.received.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(receiver.received).toHaveLength(1);
    await w.stop();
    // The answer came after stop() was called; it was still recorded.
    expect(await deliveryOf(id, config.webhooks[0]!.id!)).toMatchObject({ status: 'delivered', lease_token: null });
    await receiver.close();
  });
});

describe('endpoint ids', () => {
  it('derives a stable id from the url when none is configured', () => {
    expect(endpointId({ url: 'https://crm.example.com/hook' })).toBe(endpointId({ url: 'https://crm.example.com/hook' }));
    expect(endpointId({ url: 'https://crm.example.com/hook' })).toMatch(/^wh_[0-9a-f]{16}$/);
    expect(endpointId({ id: 'crm', url: 'https://crm.example.com/hook' })).toBe('crm');
  });
});
