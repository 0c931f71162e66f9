import { describe, expect, it } from 'vitest';
import { leavesAWayIn, type SignInMethods } from '../../src/accounts/authentication-methods.ts';

// The one rule for removing a passkey or unlinking a provider: something must be left to sign in
// with — a password, another passkey, or another linked provider.
describe('removing a way to sign in', () => {
  const methods = (over: Partial<SignInMethods>): SignInMethods => ({ password: false, passkeys: 0, providers: [], ...over });

  it('keeps the last one', () => {
    expect(leavesAWayIn(methods({ passkeys: 1 }), { passkey: true })).toBe(false);
    expect(leavesAWayIn(methods({ providers: ['google'] }), { provider: 'google' })).toBe(false);
  });

  it('lets one go while another of any kind is left', () => {
    expect(leavesAWayIn(methods({ passkeys: 1, password: true }), { passkey: true })).toBe(true);
    expect(leavesAWayIn(methods({ passkeys: 2 }), { passkey: true })).toBe(true);
    // A passkey-only account that also signs in with a provider may drop the passkey, and the reverse.
    expect(leavesAWayIn(methods({ passkeys: 1, providers: ['google'] }), { passkey: true })).toBe(true);
    expect(leavesAWayIn(methods({ passkeys: 1, providers: ['google'] }), { provider: 'google' })).toBe(true);
    expect(leavesAWayIn(methods({ providers: ['google', 'apple'] }), { provider: 'google' })).toBe(true);
  });
});
