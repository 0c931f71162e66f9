import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  REFUSAL_REASONS, decideLinking, linkableAddress,
  type LinkingAccount, type LinkingDecision, type LinkingInput,
} from '../../src/federation/linking.ts';

// The linking rules stated as properties and checked on generated cases. Small pools of ids and
// addresses make the interesting collisions (the identity's address is an account's, the proof is
// for another account, the identity is linked elsewhere) frequent.

const RUNS = { numRuns: 3000 };
const PROVIDERS = ['google', 'microsoft', 'acme'];
const ACCOUNT_IDS = ['acc-1', 'acc-2', 'acc-3'];
const EMAILS = ['ann@example.com', 'bob@example.com', 'Ann@Example.com'];

const account = (email: fc.Arbitrary<string>): fc.Arbitrary<LinkingAccount> => fc.record({
  id: fc.constantFrom(...ACCOUNT_IDS),
  email: email.map((e) => e.toLowerCase()),
  emailVerified: fc.boolean(),
  hasPassword: fc.boolean(),
  linkedProviders: fc.subarray(PROVIDERS),
});

/** Absent three times in four: most sign-ins have no session and no linked identity. */
const rarely = <T>(arbitrary: fc.Arbitrary<T>) => fc.oneof({ arbitrary: fc.constant(undefined), weight: 3 }, { arbitrary, weight: 1 });
const often = fc.oneof({ arbitrary: fc.constant(true), weight: 2 }, { arbitrary: fc.constant(false), weight: 1 });

/**
 * Inputs as a caller builds them: `accountWithEmail`, when present, is the account holding the
 * linkable address (the caller looks it up by that address and nothing else). A proof of an
 * account is as often for the account at hand as for another one or none.
 */
const linkingInput: fc.Arbitrary<LinkingInput> = fc.record({
  providerId: fc.constantFrom(...PROVIDERS),
  subject: fc.constantFrom('s-1', 's-2'),
  email: fc.option(fc.constantFrom(...EMAILS), { nil: undefined }),
  emailVerified: often,
  trustEmailVerified: often,
  signUp: often,
  linkedAccountId: rarely(fc.constantFrom(...ACCOUNT_IDS)),
  accountExists: fc.boolean(),
  existing: account(fc.constant('placeholder@example.com')),
  session: rarely(fc.record({ account: account(fc.constantFrom(...EMAILS)), recentlyAuthenticated: fc.boolean() })),
  provenAddress: fc.option(fc.constantFrom(...EMAILS), { nil: undefined, freq: 2 }),
  provenAccount: fc.constantFrom<'none' | 'this' | 'other'>('none', 'this', 'other'),
}).map((g): LinkingInput => {
  const provenAccount = g.provenAccount === 'this' ? g.existing.id : g.provenAccount === 'other' ? ACCOUNT_IDS.find((id) => id !== g.existing.id)! : undefined;
  const base: LinkingInput = {
    identity: { provider: g.providerId, subject: g.subject, ...(g.email !== undefined ? { email: g.email } : {}), emailVerified: g.emailVerified },
    provider: { id: g.providerId, trustEmailVerified: g.trustEmailVerified, signUp: g.signUp },
    ...(g.linkedAccountId !== undefined ? { linkedAccountId: g.linkedAccountId } : {}),
    ...(g.session ? { session: g.session } : {}),
    proofs: {
      ...(g.provenAddress !== undefined ? { address: g.provenAddress } : {}),
      ...(provenAccount !== undefined ? { account: provenAccount } : {}),
    },
  };
  const address = linkableAddress(base);
  return address !== undefined && g.accountExists ? { ...base, accountWithEmail: { ...g.existing, email: address } } : base;
});

function accountOf(decision: LinkingDecision): string | undefined {
  return decision.kind === 'sign_in' || decision.kind === 'link' || decision.kind === 'prove_ownership' ? decision.accountId : undefined;
}

const proven = (input: LinkingInput) => input.proofs?.address?.toLowerCase();

describe('linking rules', () => {
  it('are checked on inputs that reach every decision (a generator that never does would prove nothing)', () => {
    const seen = new Map<string, number>();
    for (const input of fc.sample(linkingInput, { numRuns: RUNS.numRuns, seed: 42 })) {
      const decision = decideLinking(input);
      const key = `${input.session ? 'session ' : ''}${decision.kind}${decision.kind === 'link' ? ` reclaim=${decision.reclaim}` : ''}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
    }
    for (const key of ['sign_in', 'create_account', 'verify_email', 'prove_ownership', 'link reclaim=false', 'link reclaim=true', 'refuse',
      'session sign_in', 'session prove_ownership', 'session link reclaim=false', 'session refuse']) {
      expect(seen.get(key) ?? 0, key).toBeGreaterThanOrEqual(20);
    }
  });

  it('decide for every input, with refusals from the closed list', () => {
    fc.assert(fc.property(linkingInput, (input) => {
      const decision = decideLinking(input);
      if (decision.kind === 'refuse') expect(REFUSAL_REASONS).toContain(decision.reason);
    }), RUNS);
  });

  it('never sign in to or link an account without the identity being linked to it, or a proof for that account', () => {
    fc.assert(fc.property(linkingInput, (input) => {
      const decision = decideLinking(input);
      if (decision.kind !== 'sign_in' && decision.kind !== 'link') return;
      const id = decision.accountId;
      const session = input.session;
      const allowed = id === input.linkedAccountId
        || (session !== undefined && id === session.account.id && session.account.emailVerified
          && (session.recentlyAuthenticated || input.proofs?.account === id))
        || (input.accountWithEmail?.id === id && (
          proven(input) === input.accountWithEmail.email
          || (input.accountWithEmail.emailVerified && input.proofs?.account === id)));
      expect(allowed, JSON.stringify({ input, decision })).toBe(true);
    }), RUNS);
  });

  it('never link to an existing account on a matching address alone', () => {
    fc.assert(fc.property(linkingInput, (input) => {
      const withoutProofs = { ...input, proofs: {} };
      // The account must still be the one holding the address now that no code was typed back.
      fc.pre(!withoutProofs.accountWithEmail || withoutProofs.accountWithEmail.email === linkableAddress(withoutProofs));
      if (withoutProofs.session || withoutProofs.linkedAccountId !== undefined) return;
      expect(decideLinking(withoutProofs).kind).not.toBe('link');
    }), RUNS);
  });

  it('create accounts only with a proven address, and never on an address that has an account', () => {
    fc.assert(fc.property(linkingInput, (input) => {
      const decision = decideLinking(input);
      if (decision.kind !== 'create_account') return;
      expect(input.accountWithEmail).toBeUndefined();
      expect(input.provider.signUp).toBe(true);
      if (decision.emailProvenBy === 'code') expect(decision.email).toBe(proven(input));
      else {
        // Verified by the provider: only a provider trusted to say so, saying so.
        expect(input.provider.trustEmailVerified && input.identity.emailVerified).toBe(true);
        expect(decision.email).toBe(input.identity.email?.toLowerCase());
      }
    }), RUNS);
  });

  it('a provider not trusted for email_verified: its address is proven by a code before anything else happens', () => {
    fc.assert(fc.property(linkingInput, (input) => {
      const untrusted = { ...input, provider: { ...input.provider, trustEmailVerified: false }, proofs: {} };
      delete (untrusted as LinkingInput).accountWithEmail;
      delete (untrusted as LinkingInput).session;
      delete (untrusted as LinkingInput).linkedAccountId;
      // Whatever the identity claims, and whatever accounts exist (never even looked up).
      expect(decideLinking(untrusted).kind).toBe('verify_email');
      expect(linkableAddress(untrusted)).toBeUndefined();
    }), RUNS);
  });

  it('an account whose address nobody proved is linked only after a code to that address, and then reclaimed', () => {
    fc.assert(fc.property(linkingInput, (input) => {
      const decision = decideLinking(input);
      const target = input.accountWithEmail;
      if (!target || target.emailVerified || accountOf(decision) !== target.id || input.linkedAccountId !== undefined || input.session) return;
      if (decision.kind === 'link') {
        expect(decision.reclaim).toBe(true);
        expect(proven(input)).toBe(target.email);
      }
      // Its password, its session, its linked providers prove nothing.
      if (decision.kind === 'prove_ownership') expect(decision.methods).toEqual(['email_code']);
    }), RUNS);
  });

  it('reclaim only where the person proved the address and the account had not', () => {
    fc.assert(fc.property(linkingInput, (input) => {
      const decision = decideLinking(input);
      if (decision.kind !== 'link' || !decision.reclaim) return;
      expect(input.accountWithEmail?.emailVerified).toBe(false);
      expect(proven(input)).toBe(input.accountWithEmail?.email);
    }), RUNS);
  });

  it('a linked identity signs in to its account, whatever its address now says', () => {
    fc.assert(fc.property(linkingInput, fc.constantFrom(...ACCOUNT_IDS), (input, linked) => {
      const decision = decideLinking({ ...input, linkedAccountId: linked, session: undefined } as LinkingInput);
      expect(decision).toEqual({ kind: 'sign_in', accountId: linked });
    }), RUNS);
  });

  it('from a session: never move an identity linked elsewhere, never add a way in to an unverified account', () => {
    fc.assert(fc.property(linkingInput, (input) => {
      if (!input.session) return;
      const decision = decideLinking(input);
      if (input.linkedAccountId !== undefined && input.linkedAccountId !== input.session.account.id) {
        expect(decision).toEqual({ kind: 'refuse', reason: 'linked_to_another_account' });
      }
      if (!input.session.account.emailVerified) expect(decision.kind).not.toBe('link');
      if (decision.kind === 'link') expect(decision.reclaim).toBe(false);
      // The session's account only: a session never reaches another account through an address.
      const target = accountOf(decision);
      if (target !== undefined) expect(target).toBe(input.session.account.id);
    }), RUNS);
  });

  it('a proof for one account does nothing for another', () => {
    fc.assert(fc.property(linkingInput, (input) => {
      const target = input.accountWithEmail;
      if (!target || input.session || input.linkedAccountId !== undefined || proven(input) !== undefined) return;
      const other = ACCOUNT_IDS.find((id) => id !== target.id)!;
      const decision = decideLinking({ ...input, proofs: { account: other } });
      expect(decision.kind).toBe('prove_ownership');
    }), RUNS);
  });

  it('sign_up: false never creates an account', () => {
    fc.assert(fc.property(linkingInput, (input) => {
      const decision = decideLinking({ ...input, provider: { ...input.provider, signUp: false } });
      expect(decision.kind).not.toBe('create_account');
    }), RUNS);
  });
});
