import { generateKeyPairSync } from 'node:crypto';
import { decodeProtectedHeader, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { APPLE_MAX_LIFETIME, AppleClientSecret } from '../../src/federation/apple-secret.ts';
import { TestClock } from '../support/server.ts';

describe('the Sign in with Apple client secret', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const make = (clock: TestClock, options: { lifetime?: number; renewBefore?: number } = {}) => new AppleClientSecret({
    teamId: 'TEAM123456', keyId: 'KEY1234567', clientId: 'com.example.web', privateKey, now: clock.now, ...options,
  });

  it('is an ES256 JWT from the team for the client, to Apple, living at most six months', async () => {
    const clock = new TestClock();
    // The test clock follows the real one: the second it is signed in lies between these two.
    const before = Math.floor(clock.now().getTime() / 1000);
    const jwt = await make(clock).value();
    const after = Math.floor(clock.now().getTime() / 1000);
    expect(decodeProtectedHeader(jwt)).toEqual({ alg: 'ES256', kid: 'KEY1234567' });
    const { payload } = await jwtVerify(jwt, publicKey, {
      algorithms: ['ES256'], issuer: 'TEAM123456', subject: 'com.example.web', audience: 'https://appleid.apple.com', currentDate: clock.now(),
    });
    expect(payload.iat).toBeGreaterThanOrEqual(before);
    expect(payload.iat).toBeLessThanOrEqual(after);
    expect(payload.exp! - payload.iat!).toBeLessThanOrEqual(APPLE_MAX_LIFETIME);
    expect(payload.exp! - payload.iat!).toBe(3600);
  });

  it('is reused while it has time left and signed anew before it runs out', async () => {
    const clock = new TestClock();
    const secret = make(clock);
    const first = await secret.value();
    clock.advance(3600 - 301);
    expect(await secret.value()).toBe(first);
    clock.advance(2);
    const renewed = await secret.value();
    expect(renewed).not.toBe(first);
    // The new one is valid now, when the old one has under five minutes left.
    await expect(jwtVerify(renewed, publicKey, { currentDate: clock.now(), audience: 'https://appleid.apple.com' })).resolves.toBeDefined();
    const { payload } = await jwtVerify(renewed, publicKey, { currentDate: clock.now() });
    expect(payload.exp! - Math.floor(clock.now().getTime() / 1000)).toBe(3600);
  });

  it('signs once for sign-ins that ask at the same time', async () => {
    const secret = make(new TestClock());
    const values = await Promise.all([secret.value(), secret.value(), secret.value()]);
    expect(new Set(values).size).toBe(1);
  });

  it('refuses a lifetime Apple would refuse', () => {
    expect(() => make(new TestClock(), { lifetime: APPLE_MAX_LIFETIME + 1 })).toThrow(RangeError);
    expect(() => make(new TestClock(), { lifetime: 600, renewBefore: 600 })).toThrow(RangeError);
    expect(() => make(new TestClock(), { lifetime: APPLE_MAX_LIFETIME, renewBefore: 86_400 })).not.toThrow();
  });
});
