import { Secret, TOTP } from 'otpauth';
import decodeQR from 'qr/decode.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enrolmentOf } from '../../src/accounts/authentication-methods.ts';
import { CredentialError } from '../../src/accounts/credential-errors.ts';
import { createRecoveryCodes, RECOVERY_CODE_COUNT, type RecoveryCodes } from '../../src/accounts/recovery-codes.ts';
import { createSecondFactorThrottle } from '../../src/accounts/second-factor-throttle.ts';
import { purgeStaleThrottles } from '../../src/accounts/throttle.ts';
import { createTotp, type Totp } from '../../src/accounts/totp.ts';
import { deepMerge, loadConfig } from '../../src/config/load.ts';
import { SealedValueError } from '../../src/storage/sealed.ts';
import type { Storage } from '../../src/storage/database.ts';
import { insertAccount } from '../support/accounts.ts';
import { BACKENDS, openTestStorage } from '../support/database.ts';

// Authenticator-app codes and recovery codes against a real database, with a clock the tests
// move: enrolment, confirmation, the ±1 step window, replays, single use, and the per-account
// throttle they share.

const STEP_MS = 30_000;

async function rejection(promise: Promise<unknown>): Promise<CredentialError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  if (!(error instanceof CredentialError)) throw new Error(`expected a CredentialError, got ${String(error)}`);
  return error;
}

/** The code an authenticator app shows at `at` for the secret it scanned. */
const appCode = (base32: string, at: Date) => TOTP.generate({ secret: Secret.fromBase32(base32), timestamp: at.getTime() });

/** Reads the modules of our QR SVG (one unit square per dark module) and decodes them as a camera would. */
function scanQrSvg(svg: string): string {
  const size = Number(/viewBox="0 0 (\d+) \1"/.exec(svg)?.[1]);
  const path = /<path d="([^"]+)"/.exec(svg)?.[1] ?? '';
  const dark = new Set<string>();
  let x = 0;
  let y = 0;
  for (const [, command, dx, dy] of path.matchAll(/([Mm])(-?\d+) (-?\d+)/g)) {
    [x, y] = command === 'M' ? [Number(dx), Number(dy)] : [x + Number(dx), y + Number(dy)];
    dark.add(`${x},${y}`);
  }
  const scale = 4;
  const width = size * scale;
  const data = new Uint8Array(width * width * 4).fill(255);
  for (let py = 0; py < width; py++) {
    for (let px = 0; px < width; px++) {
      if (!dark.has(`${Math.floor(px / scale)},${Math.floor(py / scale)}`)) continue;
      data.fill(0, (py * width + px) * 4, (py * width + px) * 4 + 3);
    }
  }
  return decodeQR({ width, height: width, data });
}

describe.each(BACKENDS)('second factors on $name', (backend) => {
  let storage: Storage;
  // On a step boundary, so that "the step before" and "the step after" are exact.
  let now = new Date(Math.ceil(new Date('2026-03-01T09:00:00Z').getTime() / STEP_MS) * STEP_MS);
  const clock = () => now;
  const advance = (ms: number) => { now = new Date(now.getTime() + ms); };

  function services(overrides: Record<string, unknown> = {}): { totp: Totp; recovery: RecoveryCodes } {
    const config = loadConfig({ env: {}, overrides: deepMerge({ env: 'test' }, overrides) as Record<string, unknown> });
    const throttle = createSecondFactorThrottle(storage.db, config.mfa.throttle, clock);
    return {
      totp: createTotp({ db: storage.db, config, clock, throttle }),
      recovery: createRecoveryCodes({ db: storage.db, config, clock, throttle }),
    };
  }
  let totp: Totp;
  let recovery: RecoveryCodes;

  beforeAll(async () => {
    storage = await openTestStorage(backend);
    ({ totp, recovery } = services());
  });
  afterAll(async () => { await storage.close(); });

  /** An account with a confirmed authenticator app; returns its secret as the app holds it. */
  async function enrolled(): Promise<{ id: string; secret: string }> {
    const account = await insertAccount(storage.db, { now });
    const { secret } = await totp.begin(account.id, account.email);
    await totp.confirm(account.id, appCode(secret, now));
    // Well past the confirming code's step, and its neighbours.
    advance(3 * STEP_MS);
    return { id: account.id, secret };
  }

  it('enrols with a secret, an otpauth URI and a QR code that scans to it, confirmed by a first code', async () => {
    const account = await insertAccount(storage.db, { now });
    const enrolment = await totp.begin(account.id, account.email);
    expect(enrolment.secret).toMatch(/^[A-Z2-7]{32}$/);
    const uri = new URL(enrolment.uri);
    expect(uri.protocol).toBe('otpauth:');
    expect(uri.host).toBe('totp');
    expect(decodeURIComponent(uri.pathname)).toBe(`/Parley:${account.email}`);
    expect(Object.fromEntries(uri.searchParams)).toEqual({ secret: enrolment.secret, issuer: 'Parley', algorithm: 'SHA1', digits: '6', period: '30' });
    expect(enrolment.qrSvg).toMatch(/^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(enrolment.qrSvg).not.toMatch(/href|<script|<image|https?:\/\/(?!www\.w3\.org\/2000\/svg")/);
    expect(scanQrSvg(enrolment.qrSvg)).toBe(enrolment.uri);

    expect(await totp.isEnrolled(account.id)).toBe(false);
    expect((await rejection(totp.verify(account.id, appCode(enrolment.secret, now)))).code).toBe('totp_not_enrolled');
    expect((await rejection(totp.confirm(account.id, '000000'))).code).toBe('code_invalid');
    const recorded: string[] = [];
    await totp.confirm(account.id, appCode(enrolment.secret, now), async (trx) => {
      recorded.push((await trx.selectFrom('totp_secrets').select('account_id').where('account_id', '=', account.id).executeTakeFirstOrThrow()).account_id);
    });
    expect(recorded).toEqual([account.id]);
    expect(await totp.isEnrolled(account.id)).toBe(true);
    expect((await enrolmentOf(storage.db, account.id)).totp).toBe(true);
    // The confirming code's step is spent.
    expect((await rejection(totp.verify(account.id, appCode(enrolment.secret, now)))).code).toBe('code_replayed');
    expect((await rejection(totp.begin(account.id, account.email))).code).toBe('totp_already_enrolled');
  });

  it('stores the secret encrypted under secrets.key_encryption', async () => {
    const account = await insertAccount(storage.db, { now });
    const { secret } = await totp.begin(account.id, account.email);
    const row = await storage.db.selectFrom('totp_secrets').select('secret_encrypted').where('account_id', '=', account.id).executeTakeFirstOrThrow();
    expect(row.secret_encrypted).toMatch(/^v1\./);
    expect(row.secret_encrypted).not.toContain(secret);
    expect(row.secret_encrypted).not.toContain(Buffer.from(Secret.fromBase32(secret).bytes).toString('base64url'));
    const otherKey = services({ secrets: { key_encryption: 'another-key-encryption-secret-0123456789' } });
    await expect(otherKey.totp.confirm(account.id, appCode(secret, now))).rejects.toBeInstanceOf(SealedValueError);
    await totp.confirm(account.id, appCode(secret, now));
  });

  it('restarting an unconfirmed enrolment replaces its secret; the old one no longer confirms', async () => {
    const account = await insertAccount(storage.db, { now });
    const first = await totp.begin(account.id, account.email);
    const second = await totp.begin(account.id, account.email);
    expect(second.secret).not.toBe(first.secret);
    expect((await rejection(totp.confirm(account.id, appCode(first.secret, now)))).code).toBe('code_invalid');
    await totp.confirm(account.id, appCode(second.secret, now));
  });

  it('accepts the step before and after the current one, not two away, and each step once', async () => {
    const { id, secret } = await enrolled();
    const at = (steps: number) => appCode(secret, new Date(now.getTime() + steps * STEP_MS));
    expect((await rejection(totp.verify(id, at(-2)))).code).toBe('code_invalid');
    expect((await rejection(totp.verify(id, at(2)))).code).toBe('code_invalid');
    await totp.verify(id, at(-1));
    await totp.verify(id, at(0));
    await totp.verify(id, at(1));
    // Used, and earlier than the last used: both refused (RFC 6238 §5.2).
    expect((await rejection(totp.verify(id, at(1)))).code).toBe('code_replayed');
    expect((await rejection(totp.verify(id, at(0)))).code).toBe('code_replayed');
    // The clock moves on: the next step's code is new.
    advance(2 * STEP_MS);
    await totp.verify(id, appCode(secret, now));
    // The last millisecond of a step and the first of the next are different steps.
    advance(STEP_MS - 1);
    const lastOfStep = appCode(secret, now);
    advance(1);
    expect(appCode(secret, now)).not.toBe(lastOfStep);
    await totp.verify(id, appCode(secret, now));
    expect((await rejection(totp.verify(id, lastOfStep))).code).toBe('code_replayed');
  });

  it('lets one of twenty parallel uses of the same code through', async () => {
    const { id, secret } = await enrolled();
    const code = appCode(secret, now);
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => totp.verify(id, code)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const codes = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => (r.reason as CredentialError).code);
    // The replays are refused as such, or by the throttle once five are counted.
    expect(codes.every((c) => c === 'code_replayed' || c === 'throttled')).toBe(true);
  });

  it('throttles wrong codes per account: five at once, then one per doubling delay; a right code clears the count', async () => {
    const { id, secret } = await enrolled();
    const other = await enrolled();
    for (let i = 0; i < 5; i++) expect((await rejection(totp.verify(id, '123456'))).code).toBe('code_invalid');
    const blocked = await rejection(totp.verify(id, appCode(secret, now)));
    expect(blocked.code).toBe('throttled');
    expect(blocked.retryAfterSeconds).toBe(30);
    // Recovery codes share the count: they are the same second factor's stand-in.
    expect((await rejection(recovery.verify(id, 'aaaaa-aaaaa'))).code).toBe('throttled');
    // Other accounts are not affected.
    await totp.verify(other.id, appCode(other.secret, now));

    advance(30_000);
    expect((await rejection(totp.verify(id, '123456'))).code).toBe('code_invalid');
    const longer = await rejection(totp.verify(id, appCode(secret, now)));
    expect(longer.retryAfterSeconds).toBe(60);
    advance(60_000);
    await totp.verify(id, appCode(secret, now));
    advance(STEP_MS);
    for (let i = 0; i < 4; i++) expect((await rejection(totp.verify(id, '123456'))).code).toBe('code_invalid');
    await totp.verify(id, appCode(secret, now));
  });

  it('has its counts purged once past the window, unless a delay is still running', async () => {
    const strict = services({ mfa: { throttle: { free_attempts: 1, base_delay: '2h', max_delay: '2h' } } });
    const stale = await enrolled();
    const blocked = await enrolled();
    expect((await rejection(totp.verify(stale.id, '123456'))).code).toBe('code_invalid');
    expect((await rejection(strict.totp.verify(blocked.id, '123456'))).code).toBe('code_invalid');
    advance(3601_000);
    expect(await purgeStaleThrottles(storage.db, { signIn: 3600, secondFactor: 3600 }, now)).toBeGreaterThanOrEqual(1);
    const kept = await storage.db.selectFrom('second_factor_throttle').select('account_id').where('account_id', 'in', [stale.id, blocked.id]).execute();
    expect(kept.map((row) => row.account_id)).toEqual([blocked.id]);
    expect((await rejection(strict.totp.verify(blocked.id, appCode(blocked.secret, now)))).code).toBe('throttled');
  });

  it('counts attempts made in parallel before any is checked: twenty wrong guesses at once get five tries', async () => {
    const { id } = await enrolled();
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => totp.verify(id, String(100000 + i))));
    const codes = results.map((r) => (r.status === 'rejected' ? (r.reason as CredentialError).code : 'accepted'));
    expect(codes.filter((c) => c === 'code_invalid')).toHaveLength(5);
    expect(codes.filter((c) => c === 'throttled')).toHaveLength(15);
  });

  it('removes an enrolment', async () => {
    const { id, secret } = await enrolled();
    expect(await totp.remove(id)).toBe(true);
    expect(await totp.remove(id)).toBe(false);
    expect((await rejection(totp.verify(id, appCode(secret, now)))).code).toBe('totp_not_enrolled');
  });

  it('makes ten recovery codes, shown once and stored hashed, each used once', async () => {
    const account = await insertAccount(storage.db, { now });
    const codes = await recovery.generate(account.id);
    expect(codes).toHaveLength(RECOVERY_CODE_COUNT);
    expect(new Set(codes).size).toBe(RECOVERY_CODE_COUNT);
    for (const code of codes) expect(code).toMatch(/^[0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5}$/);
    const rows = await storage.db.selectFrom('recovery_codes').select('code_hash').where('account_id', '=', account.id).execute();
    expect(rows).toHaveLength(RECOVERY_CODE_COUNT);
    const stored = JSON.stringify(rows);
    for (const code of codes) {
      expect(stored).not.toContain(code);
      expect(stored).not.toContain(code.replace('-', ''));
    }
    expect(await recovery.remaining(account.id)).toBe(10);

    expect(await recovery.verify(account.id, codes[0]!)).toEqual({ remaining: 9 });
    expect((await rejection(recovery.verify(account.id, codes[0]!))).code).toBe('code_invalid');
    // As typed from paper: upper case, spaces, no dash; Crockford's o/i/l read as digits.
    const sloppy = codes[1]!.toUpperCase().replace('-', ' ').replace(/0/g, 'O').replace(/1/g, 'l');
    expect(await recovery.verify(account.id, sloppy)).toEqual({ remaining: 8 });
    expect((await rejection(recovery.verify(account.id, 'not a code'))).code).toBe('code_invalid');

    const stranger = await insertAccount(storage.db, { now });
    await recovery.generate(stranger.id);
    expect((await rejection(recovery.verify(stranger.id, codes[2]!))).code).toBe('code_invalid');

    const renewed = await recovery.generate(account.id);
    expect(await recovery.remaining(account.id)).toBe(10);
    expect((await rejection(recovery.verify(account.id, codes[3]!))).code).toBe('code_invalid');
    await recovery.verify(account.id, renewed[0]!);
  });

  it('lets one of twenty parallel uses of a recovery code through', async () => {
    const account = await insertAccount(storage.db, { now });
    const [code] = await recovery.generate(account.id);
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => recovery.verify(account.id, code!)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(await recovery.remaining(account.id)).toBe(9);
  });

  it('tells the transaction alongside how many recovery codes are left, and keeps the code when it fails', async () => {
    const account = await insertAccount(storage.db, { now });
    const [code] = await recovery.generate(account.id);
    await expect(recovery.verify(account.id, code!, async () => { throw new Error('outbox down'); })).rejects.toThrow('outbox down');
    const seen: number[] = [];
    await recovery.verify(account.id, code!, async (_trx, { remaining }) => { seen.push(remaining); });
    expect(seen).toEqual([9]);
  });

  it('is refused while turned off', async () => {
    const off = services({ mfa: { totp: { enabled: false } } });
    const account = await insertAccount(storage.db, { now });
    expect((await rejection(off.totp.begin(account.id, account.email))).code).toBe('method_disabled');
  });
});
