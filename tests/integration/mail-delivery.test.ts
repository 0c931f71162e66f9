import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPasswordHasher } from '../../src/accounts/passwords.ts';
import { createAccounts } from '../../src/accounts/service.ts';
import { createThrottle } from '../../src/accounts/throttle.ts';
import { deepMerge, loadConfig } from '../../src/config/load.ts';
import { createDeadLetters } from '../../src/events/dead-letters.ts';
import { createDeliveryWorker } from '../../src/events/worker.ts';
import { createMailer } from '../../src/mail/mailer.ts';
import type { Storage } from '../../src/storage/database.ts';
import { openTestStorage } from '../support/database.ts';
import { testMail } from '../support/mail.ts';
import { freePort } from '../support/server.ts';
import { startSmtpServer, textOf, type SmtpServer } from '../support/smtp.ts';

// Mail through the outbox, sent over SMTP to a mail server on loopback: a server that is down or
// refusing delays mail and never loses it; what runs out of retries is a dead letter that a
// replay sends. Parley's clock is moved by hand; the mail server is real.

const silent = pino({ level: 'silent' });
const ISSUER = 'https://id.example.test';
const PASSWORD = 'a long and quiet river';

let storage: Storage;
const servers: SmtpServer[] = [];
beforeAll(async () => { storage = await openTestStorage(); });
afterAll(async () => {
  for (const server of servers) await server.close();
  await storage?.close();
});

function manualClock(start = new Date('2026-04-01T08:00:00Z')) {
  let now = start.getTime();
  return { now: () => new Date(now), advance: (seconds: number) => { now += seconds * 1000; } };
}

async function smtpServer(port?: number): Promise<SmtpServer> {
  const server = await startSmtpServer(port === undefined ? {} : { port });
  servers.push(server);
  return server;
}

function setup(smtpPort: number, clock: ReturnType<typeof manualClock>, events: Record<string, unknown> = {}) {
  const config = loadConfig({
    env: {},
    overrides: deepMerge({
      env: 'test', issuer: ISSUER,
      mail: { smtp_url: `smtp://127.0.0.1:${smtpPort}` },
      accounts: { argon2: { memory_kib: 8192, iterations: 1, parallelism: 1 } },
      events: { timeout: '5s', ...events },
    }, {}) as Record<string, unknown>,
  });
  const mail = testMail({ db: storage.db, config, clock: clock.now });
  const accounts = createAccounts({
    db: storage.db, config, clock: clock.now, logger: silent, mail: mail.outbox,
    hasher: createPasswordHasher(config.accounts.argon2), throttle: createThrottle(storage.db, config.throttle, clock.now),
  });
  const deliveries = () => storage.db.selectFrom('deliveries')
    .select(['status', 'attempts', 'last_status', 'last_error']).where('endpoint_id', '=', mail.outbox.endpointId).orderBy('seq').execute();
  return { config, mail, accounts, deliveries };
}

const uniqueEmail = (label: string) => `${label}-${randomUUID()}@example.com`;
const uniqueIp = () => `test-${randomUUID()}`;
const linkIn = (text: string, path: string) => new RegExp(`${ISSUER}${path}\\?token=([A-Za-z0-9_-]{43})`).exec(text)?.[1];

describe('mail through the outbox, over SMTP', () => {
  it('stays queued while the mail server is down, and goes out once it is back', async () => {
    const clock = manualClock();
    const port = await freePort(); // nothing listens there yet
    const { config, mail, accounts, deliveries } = setup(port, clock);
    const email = uniqueEmail('down');
    const registered = await accounts.register({ email, password: PASSWORD, locale: 'en' });
    expect(registered.outcome).toBe('signed_in');
    await accounts.requestPasswordReset(email, 'en', uniqueIp());

    await mail.deliver();
    const failed = await deliveries();
    expect(failed).toEqual([
      { status: 'pending', attempts: 1, last_status: null, last_error: expect.stringContaining('ECONNREFUSED') },
      { status: 'pending', attempts: 1, last_status: null, last_error: expect.stringContaining('ECONNREFUSED') },
    ]);

    const server = await smtpServer(port);
    // Nothing is due before its retry time...
    await mail.deliver();
    expect(server.received).toEqual([]);
    // ...which comes within backoff_base of the failure.
    clock.advance(config.events.backoff_base);
    await mail.deliver();
    expect(server.received.map((m) => m.to)).toEqual([[email], [email]]);
    expect((await deliveries()).map((d) => d.status)).toEqual(['delivered', 'delivered']);
    const reset = server.received.map((m) => linkIn(textOf(m), '/reset-password')).find((t) => t !== undefined);
    await accounts.checkResetToken(reset!);
  });

  it('dead-letters what the mail server refuses for longer than events.retry_for, and a replay sends it', async () => {
    const clock = manualClock();
    const server = await smtpServer();
    server.refuseWith = '451 4.3.0 mailbox busy, try again later';
    const { mail, accounts, deliveries } = setup(server.port, clock, { retry_for: '10m' });
    const email = uniqueEmail('refused');
    await accounts.register({ email, password: PASSWORD, locale: 'en' });
    await mail.deliver();
    expect(await deliveries()).toEqual([{ status: 'pending', attempts: 1, last_status: 451, last_error: expect.stringContaining('mailbox busy') }]);

    clock.advance(10 * 60);
    await mail.deliver();
    expect(await deliveries()).toEqual([{ status: 'dead', attempts: 2, last_status: 451, last_error: expect.stringContaining('gave up') }]);
    expect(server.received).toEqual([]);

    // Listed and replayed like a webhook's dead letters, by the mail's delivery target.
    const account = await storage.db.selectFrom('accounts').select('id').where('email', '=', email).executeTakeFirstOrThrow();
    const deadLetters = createDeadLetters({ db: storage.db, clock: clock.now, logger: silent });
    const { items } = await deadLetters.listDead({ endpointId: mail.outbox.endpointId });
    expect(items).toEqual([expect.objectContaining({ type: 'mail.verify_email', status: 'dead', accountId: account.id, lastStatus: 451 })]);
    expect(JSON.stringify(items)).not.toContain(email);

    server.refuseWith = undefined;
    expect(await deadLetters.replay({ endpointId: mail.outbox.endpointId })).toEqual({ replayed: 1, reenabled: [] });
    await mail.deliver();
    expect(server.received.map((m) => m.to)).toEqual([[email]]);
    expect(linkIn(textOf(server.received[0]!), '/verify-email')).toBeDefined();
    expect(await deliveries()).toEqual([{ status: 'delivered', attempts: 1, last_status: null, last_error: null }]);
  });

  it('goes out as soon as its transaction commits, without waiting for the next poll', async () => {
    const clock = manualClock();
    const server = await smtpServer();
    const { mail, accounts } = setup(server.port, clock, { poll_interval: '1h' });
    mail.worker.start();
    try {
      // Once the lane's first round (under way since start) has found nothing, its next poll is an hour away.
      await mail.worker.drainMail();
      const email = uniqueEmail('prompt');
      await accounts.register({ email, password: PASSWORD, locale: 'en' });
      await expect.poll(() => server.received.length, { timeout: 10_000 }).toBe(1);
      expect(server.received[0]!.to).toEqual([email]);
    } finally {
      await mail.worker.stop();
    }
  });

  it('sends each mail once when several workers drain the queue together', async () => {
    const clock = manualClock();
    const server = await smtpServer();
    const { config, mail, accounts } = setup(server.port, clock, { batch_size: 3 });
    const emails = Array.from({ length: 8 }, () => uniqueEmail('shared'));
    for (const email of emails) await accounts.register({ email, password: PASSWORD, locale: 'en' });
    const others = Array.from({ length: 2 }, () => createDeliveryWorker({
      db: storage.db, config, logger: silent, clock: clock.now, signSet: () => Promise.reject(new Error('mail only')),
      mail: { outbox: mail.outbox, mailer: createMailer(config.mail, silent, { timeoutSeconds: config.events.timeout, clock: clock.now }) },
    }));
    await Promise.all([mail.deliver(), ...others.map((w) => w.drainMail())]);
    expect(server.received.map((m) => m.to[0]).sort()).toEqual([...emails].sort());
  });
});
