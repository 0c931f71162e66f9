import { createHmac, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpBrowser } from '../support/browser.ts';
import { appClient, authorizationRequest, oidc, register, uniqueEmail } from '../support/oidc-app.ts';
import { startTestServer, TEST_CLIENTS, type TestServer } from '../support/server.ts';

// The whole path of an event through the running server: a user answers in a sign-in, the
// server's own delivery worker signs and posts the events to a receiver on loopback; when the
// receiver is down they run out of retries, and the management API lists and replays them.

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const API_SECRET = 'ops-secret-for-tests-0123456789';

interface Received { id: string; timestamp: string; signature: string; body: string }

let server: TestServer;
let receiver: http.Server;
let receiverUp = false;
const received: Received[] = [];

beforeAll(async () => {
  receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (!receiverUp) {
        res.writeHead(503).end();
        return;
      }
      received.push({
        id: String(req.headers['webhook-id']), timestamp: String(req.headers['webhook-timestamp']),
        signature: String(req.headers['webhook-signature']), body: Buffer.concat(chunks).toString('utf8'),
      });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const { port } = receiver.address() as AddressInfo;
  server = await startTestServer({
    screensets: { dir: 'tests/fixtures/screensets-e2e' },
    // Its delivery worker fans out every event in its database: on the database the other test
    // files share in the PostgreSQL pass, it would take theirs too. The embedded one is its own.
    database: { url: '', data_dir: 'memory://' },
    // Retries give up after a few seconds here, so that the test sees dead letters.
    events: { worker: true, poll_interval: '1s', retry_for: '3s', backoff_base: '1s', backoff_max: '1s', timeout: '2s' },
    webhooks: [{
      id: 'crm-hook', url: `http://127.0.0.1:${port}/hook`, format: 'standard', secrets: [SECRET],
      events: ['answer.recorded', 'reward.granted', 'consent.granted'], purposes: ['personalization'],
    }],
    // ${issuer} is filled in by the configuration loader.
    clients: [...TEST_CLIENTS('${issuer}'), {
      client_id: 'ops', client_secret: API_SECRET, grant_types: ['client_credentials'], purposes: ['personalization'], scope: 'events:replay',
    }],
  });
});
afterAll(async () => {
  await server?.close();
  await new Promise((resolve) => receiver?.close(resolve));
});

async function until<T>(what: string, probe: () => Promise<T | undefined>, seconds = 20): Promise<T> {
  for (let i = 0; i < seconds * 10; i++) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function verified(message: Received): boolean {
  const expected = createHmac('sha256', Buffer.from(SECRET.slice('whsec_'.length), 'base64'))
    .update(`${message.id}.${message.timestamp}.${message.body}`).digest('base64');
  return message.signature.split(' ').includes(`v1,${expected}`);
}

describe('events from a sign-in to a receiver', () => {
  it('dead-letters what a down receiver never took, and delivers it, signed and filtered by purpose, when replayed', async () => {
    const spa = await appClient(server, 'spa');
    const browser = new HttpBrowser();
    const request = await authorizationRequest(spa, { scope: 'openid preferences' });
    const welcome = await register(browser, await browser.navigate(request.url), uniqueEmail('hook'), spa.redirectUri);
    const callback = await browser.submit(welcome, '/profile', {
      'answer.favourite_drink': 'tea', 'answer.birthday': '1990-04-01', consent: ['personalization', 'offers'],
    }, spa.redirectUri);
    expect(callback.url.startsWith(spa.redirectUri)).toBe(true);
    const sub = (await server.parley.storage.db.selectFrom('answers').select('account_id').where('question_id', '=', 'favourite_drink')
      .orderBy('created_at', 'desc').executeTakeFirstOrThrow()).account_id;

    // The receiver is down: after retry_for the deliveries are dead.
    const dead = await until('dead letters', async () => {
      const rows = await server.parley.storage.db.selectFrom('deliveries').select(['event_id', 'type', 'status'])
        .where('account_id', '=', sub).execute();
      return rows.length > 0 && rows.every((r) => r.status === 'dead') ? rows : undefined;
    });
    // Only what the endpoint subscribed to, and no answer or consent under a purpose it is not registered for.
    expect(dead.map((r) => r.type).sort()).toEqual(['answer.recorded', 'consent.granted', 'reward.granted']);

    const ops = await oidc.discovery(new URL(server.issuer), 'ops', API_SECRET, undefined, { execute: [oidc.allowInsecureRequests] });
    const { access_token: token } = await oidc.clientCredentialsGrant(ops, { scope: 'events:replay' });
    const api = (method: string, path: string, body?: unknown) => fetch(`${server.issuer}/api/v1${path}`, {
      method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body),
    });
    const listed = await (await api('GET', '/events/dead')).json() as { events: { event_id?: string; eventId?: string }[] };
    const listedIds = JSON.stringify(listed.events);
    for (const row of dead) expect(listedIds).toContain(row.event_id);

    receiverUp = true;
    const replay = await (await api('POST', '/events/replay', { all: true, endpoint: 'crm-hook' })).json() as { replayed: number };
    expect(replay.replayed).toBeGreaterThanOrEqual(dead.length);
    const mine = await until('replayed deliveries', async () => {
      const bodies = received.map((m) => ({ message: m, event: JSON.parse(m.body) as { id: string; type: string; data: Record<string, unknown> } }))
        .filter(({ event }) => event.data.account_id === sub);
      return bodies.length >= dead.length ? bodies : undefined;
    });
    for (const { message } of mine) expect(verified(message)).toBe(true);
    const answers = mine.filter(({ event }) => event.type === 'answer.recorded').map(({ event }) => event.data);
    expect(answers).toEqual([expect.objectContaining({ question_id: 'favourite_drink', value: 'tea', purpose: 'personalization' })]);
    expect(JSON.stringify(mine.map(({ event }) => event))).not.toContain('1990-04-01');
  });
});
