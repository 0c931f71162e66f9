import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ACR, ACR_VALUES_SUPPORTED, acrFor, acrLevel, amrFor, currentProofs, satisfies, type Proof } from '../../src/accounts/authentication-methods.ts';
import { decideMfa, type MfaDecision, type MfaPolicyInput, type SecondFactorMethod } from '../../src/accounts/mfa-policy.ts';
import { MFA_POLICIES } from '../../src/config/schema.ts';

// The rules of the second factor stated as properties over generated sign-ins: policies, what the
// request asks, what the user has set up, and what the sign-in has proven and when.

const NOW = new Date('2026-03-10T12:00:00Z').getTime();
const RUNS = { numRuns: 1000 };

const at = fc.integer({ min: 0, max: 3 * 3600 }).map((secondsAgo) => new Date(NOW - secondsAgo * 1000));
const proof: fc.Arbitrary<Proof> = fc.oneof(
  fc.record({ method: fc.constantFrom('password', 'email_code', 'totp', 'recovery_code') as fc.Arbitrary<'password' | 'email_code' | 'totp' | 'recovery_code'>, at }),
  fc.record({ method: fc.constant('passkey' as const), at, deviceBound: fc.boolean() }),
  fc.record({ method: fc.constant('federated' as const), at, upstreamMfa: fc.boolean() }),
);
// A sign-in starts with a first factor, most of the time; later steps add others.
const proofs = fc.array(proof, { maxLength: 4 });

const anyInput: fc.Arbitrary<MfaPolicyInput> = fc.record({
  policy: fc.constantFrom(...MFA_POLICIES),
  clientPolicy: fc.option(fc.constantFrom(...MFA_POLICIES), { nil: undefined }),
  requestedAcr: fc.option(fc.array(fc.constantFrom(...ACR_VALUES_SUPPORTED, 'urn:unknown:acr', 'gold'), { maxLength: 3 }), { nil: undefined }),
  acrEssential: fc.boolean(),
  maxAge: fc.option(fc.integer({ min: 0, max: 4 * 3600 }), { nil: undefined }),
  now: fc.constant(new Date(NOW)),
  enrolment: fc.record({ passkeys: fc.integer({ min: 0, max: 2 }), totp: fc.boolean(), recoveryCodes: fc.integer({ min: 0, max: 10 }) }),
  enabled: fc.record({ passkeys: fc.boolean(), totp: fc.boolean() }),
  proofs,
});

// Half the cases are sign-ins that still need something: no passkey proven, and often nothing
// set up yet, where the decisions to ask, to enrol and to refuse are made.
const input: fc.Arbitrary<MfaPolicyInput> = fc.oneof(
  anyInput,
  fc.tuple(anyInput, fc.boolean(), fc.boolean()).map(([i, bare, required]) => ({
    ...i,
    ...(required ? { clientPolicy: 'required' as const } : {}),
    proofs: i.proofs.filter((p) => p.method !== 'passkey'),
    enrolment: bare ? { passkeys: 0, totp: false, recoveryCodes: i.enrolment.recoveryCodes } : i.enrolment,
  })),
);

const effectivePolicy = (i: MfaPolicyInput) => i.clientPolicy ?? i.policy;
const knownRequested = (i: MfaPolicyInput) => (i.requestedAcr ?? []).filter((v) => (ACR_VALUES_SUPPORTED as readonly string[]).includes(v));

/** The proof that using `method` right now adds to the sign-in. */
function proofOf(method: SecondFactorMethod): Proof {
  const now = new Date(NOW);
  return method === 'passkey' ? { method, at: now, deviceBound: false } : { method, at: now };
}

describe('the MFA policy decision', () => {
  it('asks nothing more when the policy is off and no app asks for a level', () => {
    fc.assert(fc.property(input, (i) => {
      fc.pre(effectivePolicy(i) === 'off' && knownRequested(i).length === 0);
      expect(['none', 'sign_in']).toContain(decideMfa(i).outcome);
    }), RUNS);
  });

  it('sends back to the login step exactly when nothing within max_age starts a sign-in', () => {
    fc.assert(fc.property(input, (i) => {
      const current = currentProofs(i.proofs, i.now, i.maxAge);
      expect(decideMfa(i).outcome === 'sign_in').toBe(acrLevel(current) === undefined);
    }), RUNS);
  });

  it('lets a sign-in go on under "required" only with two factors proven within max_age', () => {
    fc.assert(fc.property(input, (i) => {
      fc.pre(effectivePolicy(i) === 'required' && decideMfa(i).outcome === 'none');
      expect(satisfies(currentProofs(i.proofs, i.now, i.maxAge), ACR.multiFactor)).toBe(true);
    }), RUNS);
  });

  it('meets an essential acr request, or refuses', () => {
    fc.assert(fc.property(input, (i) => {
      fc.pre(i.acrEssential === true && knownRequested(i).length > 0 && decideMfa(i).outcome === 'none');
      const current = currentProofs(i.proofs, i.now, i.maxAge);
      expect(knownRequested(i).some((value) => satisfies(current, value as (typeof ACR_VALUES_SUPPORTED)[number]))).toBe(true);
    }), RUNS);
  });

  it('offers only methods the user has and the configuration allows, each of which ends the question when used', () => {
    fc.assert(fc.property(input, (i) => {
      const decision = decideMfa(i);
      fc.pre(decision.outcome === 'second_factor');
      const { methods } = decision as Extract<MfaDecision, { outcome: 'second_factor' }>;
      expect(methods.length).toBeGreaterThan(0);
      for (const method of methods) {
        if (method === 'totp') expect(i.enrolment.totp && i.enabled.totp).toBe(true);
        if (method === 'passkey') expect(i.enrolment.passkeys > 0 && i.enabled.passkeys).toBe(true);
        if (method === 'recovery_code') expect(i.enrolment.recoveryCodes).toBeGreaterThan(0);
        expect(decideMfa({ ...i, proofs: [...i.proofs, proofOf(method)] })).toEqual({ outcome: 'none' });
      }
    }), RUNS);
  });

  it('asks to enrol only a user without a usable second factor, with methods that are on, and never under "off"', () => {
    fc.assert(fc.property(input, (i) => {
      const decision = decideMfa(i);
      fc.pre(decision.outcome === 'enrol');
      const { methods } = decision as Extract<MfaDecision, { outcome: 'enrol' }>;
      expect(effectivePolicy(i)).not.toBe('off');
      expect(i.enrolment.totp && i.enabled.totp).toBe(false);
      expect(i.enrolment.passkeys > 0 && i.enabled.passkeys).toBe(false);
      expect(methods.length).toBeGreaterThan(0);
      for (const method of methods) {
        expect(i.enabled[method === 'totp' ? 'totp' : 'passkeys']).toBe(true);
        // Once set up, the method is what is asked for, and its use ends the question.
        const enrolment = method === 'totp' ? { ...i.enrolment, totp: true } : { ...i.enrolment, passkeys: 1 };
        const next = decideMfa({ ...i, enrolment });
        expect(next.outcome).toBe('second_factor');
        expect((next as Extract<MfaDecision, { outcome: 'second_factor' }>).methods).toContain(method);
        expect(decideMfa({ ...i, enrolment, proofs: [...i.proofs, proofOf(method)] })).toEqual({ outcome: 'none' });
      }
    }), RUNS);
  });

  it('counts a passkey (user verified) as enough for every policy and level', () => {
    fc.assert(fc.property(input, fc.boolean(), (i, deviceBound) => {
      const withPasskey = { ...i, proofs: [...i.proofs, { method: 'passkey' as const, at: new Date(NOW), deviceBound }] };
      expect(decideMfa(withPasskey)).toEqual({ outcome: 'none' });
    }), RUNS);
  });

  it('ignores proofs older than max_age', () => {
    fc.assert(fc.property(input, (i) => {
      expect(decideMfa(i)).toEqual(decideMfa({ ...i, proofs: currentProofs(i.proofs, i.now, i.maxAge) }));
    }), RUNS);
  });

  it('never asks more of a sign-in that has proven more', () => {
    fc.assert(fc.property(input, proof, (i, extra) => {
      fc.pre(decideMfa(i).outcome === 'none');
      expect(decideMfa({ ...i, proofs: [...i.proofs, extra] })).toEqual({ outcome: 'none' });
    }), RUNS);
  });

  it('refuses only what was asked for as essential, or a "required" policy nobody can meet', () => {
    fc.assert(fc.property(input, (i) => {
      fc.pre(decideMfa(i).outcome === 'refuse');
      expect(i.acrEssential === true || (effectivePolicy(i) === 'required' && !i.enabled.totp && !i.enabled.passkeys)).toBe(true);
    }), RUNS);
  });

  it("applies the client's policy instead of the global one", () => {
    fc.assert(fc.property(input, fc.constantFrom(...MFA_POLICIES), (i, clientPolicy) => {
      expect(decideMfa({ ...i, clientPolicy })).toEqual(decideMfa({ ...i, policy: clientPolicy, clientPolicy: undefined }));
    }), RUNS);
  });
});

describe('amr and acr of a sign-in', () => {
  const t = new Date(NOW);
  const cases: [string, Proof[], string[], string | undefined][] = [
    ['a password', [{ method: 'password', at: t }], ['pwd'], ACR.oneFactor],
    ['an emailed code', [{ method: 'email_code', at: t }], ['email'], ACR.oneFactor],
    ['a password and an app code', [{ method: 'password', at: t }, { method: 'totp', at: t }], ['pwd', 'otp', 'mfa'], ACR.multiFactor],
    ['a password and a recovery code', [{ method: 'password', at: t }, { method: 'recovery_code', at: t }], ['pwd', 'otp', 'mfa'], ACR.multiFactor],
    ['an emailed code and an app code', [{ method: 'email_code', at: t }, { method: 'totp', at: t }], ['email', 'otp', 'mfa'], ACR.multiFactor],
    ['a password and an emailed code (one mailbox, not two factors)', [{ method: 'password', at: t }, { method: 'email_code', at: t }], ['pwd', 'email'], ACR.oneFactor],
    ['a device-bound passkey', [{ method: 'passkey', at: t, deviceBound: true }], ['hwk', 'user', 'mfa'], ACR.phishingResistant],
    ['a synced passkey', [{ method: 'passkey', at: t, deviceBound: false }], ['swk', 'user', 'mfa'], ACR.phishingResistant],
    ['a password, then a passkey', [{ method: 'password', at: t }, { method: 'passkey', at: t, deviceBound: false }], ['pwd', 'swk', 'user', 'mfa'], ACR.phishingResistant],
    ['an upstream provider', [{ method: 'federated', at: t, upstreamMfa: false }], ['fed'], ACR.oneFactor],
    ['an upstream provider that used several factors', [{ method: 'federated', at: t, upstreamMfa: true }], ['fed', 'mfa'], ACR.multiFactor],
    ['an app code alone', [{ method: 'totp', at: t }], ['otp'], undefined],
    ['nothing', [], [], undefined],
  ];

  it.each(cases)('%s', (_name, given, amr, acr) => {
    expect(amrFor(given)).toEqual(amr);
    expect(acrFor(given)).toBe(acr);
  });

  it('answers acr_values with the first requested level the sign-in meets, else the level it reached', () => {
    const passwordAndCode: Proof[] = [{ method: 'password', at: t }, { method: 'totp', at: t }];
    expect(acrFor(passwordAndCode, ['phr', ACR.multiFactor, ACR.oneFactor])).toBe(ACR.multiFactor);
    expect(acrFor(passwordAndCode, [ACR.oneFactor, ACR.multiFactor])).toBe(ACR.oneFactor);
    expect(acrFor(passwordAndCode, ['phr'])).toBe(ACR.multiFactor);
    expect(acrFor(passwordAndCode, ['urn:unknown'])).toBe(ACR.multiFactor);
  });

  it('makes "mfa" in amr mean exactly a multi-factor level', () => {
    fc.assert(fc.property(proofs, (given) => {
      const level = acrLevel(given);
      expect(amrFor(given).includes('mfa')).toBe(level === ACR.multiFactor || level === ACR.phishingResistant);
    }), RUNS);
  });
});

describe('the MFA policy decision in examples', () => {
  const t = new Date(NOW);
  const base: MfaPolicyInput = {
    policy: 'optional', now: t, proofs: [{ method: 'password', at: t }],
    enrolment: { passkeys: 0, totp: false, recoveryCodes: 0 }, enabled: { passkeys: true, totp: true },
  };

  it('under "optional", asks only users who set up an authenticator app', () => {
    expect(decideMfa(base)).toEqual({ outcome: 'none' });
    expect(decideMfa({ ...base, enrolment: { passkeys: 1, totp: false, recoveryCodes: 0 } })).toEqual({ outcome: 'none' });
    expect(decideMfa({ ...base, enrolment: { passkeys: 1, totp: true, recoveryCodes: 3 } }))
      .toEqual({ outcome: 'second_factor', required: ACR.multiFactor, methods: ['totp', 'passkey', 'recovery_code'] });
  });

  it('under "required", has users without a second factor set one up', () => {
    expect(decideMfa({ ...base, policy: 'required' })).toEqual({ outcome: 'enrol', methods: ['totp', 'passkey'] });
    expect(decideMfa({ ...base, policy: 'optional', clientPolicy: 'required', enabled: { passkeys: true, totp: false } }))
      .toEqual({ outcome: 'enrol', methods: ['passkey'] });
  });

  it('steps up for acr_values, and again when the second factor is older than max_age', () => {
    const enrolled = { ...base, enrolment: { passkeys: 0, totp: true, recoveryCodes: 0 }, policy: 'off' as const };
    expect(decideMfa(enrolled)).toEqual({ outcome: 'none' });
    expect(decideMfa({ ...enrolled, requestedAcr: [ACR.multiFactor] })).toEqual({ outcome: 'second_factor', required: ACR.multiFactor, methods: ['totp'] });
    const earlier = new Date(NOW - 600_000);
    const proven = { ...enrolled, requestedAcr: [ACR.multiFactor], proofs: [{ method: 'password' as const, at: t }, { method: 'totp' as const, at: earlier }] };
    expect(decideMfa(proven)).toEqual({ outcome: 'none' });
    expect(decideMfa({ ...proven, maxAge: 300 })).toEqual({ outcome: 'second_factor', required: ACR.multiFactor, methods: ['totp'] });
  });

  it('asks for a passkey when an app wants phishing resistance, and goes on or refuses when there is none', () => {
    const withPasskey = { ...base, enrolment: { passkeys: 1, totp: true, recoveryCodes: 5 }, requestedAcr: ['phr'] };
    expect(decideMfa(withPasskey)).toEqual({ outcome: 'second_factor', required: ACR.phishingResistant, methods: ['passkey'] });
    const without = { ...withPasskey, enrolment: { passkeys: 0, totp: true, recoveryCodes: 5 } };
    // Voluntary: the policy's own need (an app code under optional) remains.
    expect(decideMfa(without)).toEqual({ outcome: 'second_factor', required: ACR.multiFactor, methods: ['totp', 'recovery_code'] });
    expect(decideMfa({ ...without, acrEssential: true })).toEqual({ outcome: 'refuse', required: ACR.phishingResistant });
  });
});
