import { describe, expect, it } from 'vitest';
import { decideLinking, type LinkingAccount, type LinkingInput } from '../../src/federation/linking.ts';

// The five account pre-hijacking attacks of Sudhodanan & Paverd (USENIX Security 2022), each
// played against the linking rules: the attacker knows only the victim's address and prepares
// an account before the victim arrives. Then the ordinary paths, for contrast.

const VICTIM = 'victim@example.com';
const google = { id: 'google', trustEmailVerified: true, signUp: true };
const microsoft = { id: 'microsoft', trustEmailVerified: false, signUp: true };

/** What the attacker made: a password account on the victim's address, never verified (they cannot read the mail). */
const preHijacked: LinkingAccount = { id: 'acc-attacker-made', email: VICTIM, emailVerified: false, hasPassword: true, linkedProviders: [] };

/** The victim arriving with their own Google account, whose address Google verified. */
const victimAtGoogle: LinkingInput = {
  identity: { provider: 'google', subject: 'victim-google-sub', email: VICTIM, emailVerified: true },
  provider: google,
  accountWithEmail: preHijacked,
};

describe('account pre-hijacking attacks', () => {
  it('classic-federated merge: the attacker\'s password account is not merged with the victim\'s Google identity', () => {
    // The address matches, but nobody proved it on that account: no link, and its password is
    // not accepted as proof (the attacker chose it).
    expect(decideLinking(victimAtGoogle)).toEqual({ kind: 'prove_ownership', accountId: preHijacked.id, methods: ['email_code'] });
    expect(decideLinking({ ...victimAtGoogle, proofs: { account: preHijacked.id } }).kind).toBe('prove_ownership');
    // The victim reads the code sent to their address: the account is theirs, cleared of the attacker's password first.
    expect(decideLinking({ ...victimAtGoogle, proofs: { address: VICTIM } })).toEqual({ kind: 'link', accountId: preHijacked.id, reclaim: true });
  });

  it('unexpired session: the attacker\'s session does not outlive the victim\'s claim', () => {
    // The attacker, signed in to the account they made, cannot add anything to it …
    const attackerSession = { account: preHijacked, recentlyAuthenticated: true };
    expect(decideLinking({
      identity: { provider: 'google', subject: 'attacker-google-sub', email: 'attacker@example.com', emailVerified: true },
      provider: google,
      session: attackerSession,
    })).toEqual({ kind: 'refuse', reason: 'account_email_unverified' });
    // … and when the victim proves the address, the link reclaims the account: every session ends.
    const decision = decideLinking({ ...victimAtGoogle, proofs: { address: VICTIM } });
    expect(decision).toMatchObject({ kind: 'link', reclaim: true });
  });

  it('trojan identifier: no way in can be attached to an account whose address nobody proved', () => {
    const attackersIdentity = { provider: 'google', subject: 'attacker-google-sub', email: 'attacker@example.com', emailVerified: true };
    // From a session in the pre-made account, even a freshly authenticated one.
    expect(decideLinking({ identity: attackersIdentity, provider: google, session: { account: preHijacked, recentlyAuthenticated: true } }))
      .toEqual({ kind: 'refuse', reason: 'account_email_unverified' });
    // Signing in with it lands in an account of its own address, not in the victim's.
    expect(decideLinking({ identity: attackersIdentity, provider: google }))
      .toEqual({ kind: 'create_account', email: 'attacker@example.com', emailProvenBy: 'provider' });
    // And should one exist from before (linked while the address was unproven, say by an import),
    // the victim's claim removes every way in that was there before.
    const withTrojan = { ...preHijacked, linkedProviders: ['github'] };
    expect(decideLinking({ ...victimAtGoogle, accountWithEmail: withTrojan })).toMatchObject({ methods: ['email_code'] });
    expect(decideLinking({ ...victimAtGoogle, accountWithEmail: withTrojan, proofs: { address: VICTIM } })).toMatchObject({ reclaim: true });
  });

  it('unexpired email change: the victim\'s claim cancels the change the attacker left pending', () => {
    // The attacker started moving the account to their own address and kept the confirmation
    // link. The account still has the victim's unproven address, so the victim's sign-in asks for
    // a code, and the link is a reclaim, which cancels pending email changes (the attacker's link dies).
    expect(decideLinking(victimAtGoogle)).toMatchObject({ kind: 'prove_ownership', methods: ['email_code'] });
    expect(decideLinking({ ...victimAtGoogle, proofs: { address: VICTIM } })).toEqual({ kind: 'link', accountId: preHijacked.id, reclaim: true });
  });

  it('non-verifying IdP: an address a provider is not trusted for makes no account and reaches no account', () => {
    // The attacker signs up at a provider that does not check addresses (or whose check Parley
    // does not trust: Microsoft), with the victim's address, claimed verified.
    const attackerAtMicrosoft: LinkingInput = {
      identity: { provider: 'microsoft', subject: 'attacker-ms-sub', email: VICTIM, emailVerified: true },
      provider: microsoft,
    };
    // No account yet: none is created; a code goes to the victim's address, which the attacker cannot read.
    expect(decideLinking(attackerAtMicrosoft)).toEqual({ kind: 'verify_email', suggestedEmail: VICTIM, reason: 'not_trusted' });
    // The victim has an account: same answer, so the attacker learns nothing of it either.
    const victimsAccount: LinkingAccount = { id: 'acc-victim', email: VICTIM, emailVerified: true, hasPassword: true, linkedProviders: [] };
    expect(decideLinking({ ...attackerAtMicrosoft, accountWithEmail: victimsAccount })).toEqual(decideLinking(attackerAtMicrosoft));
    // A trusted provider that says the address is not verified is treated the same way.
    expect(decideLinking({ ...victimAtGoogle, identity: { ...victimAtGoogle.identity, emailVerified: false }, accountWithEmail: undefined }))
      .toEqual({ kind: 'verify_email', suggestedEmail: VICTIM, reason: 'not_verified' });
  });
});

describe('ordinary sign-ins', () => {
  const ann: LinkingAccount = { id: 'acc-ann', email: 'ann@example.com', emailVerified: true, hasPassword: true, linkedProviders: ['github'] };
  const annAtGoogle: LinkingInput = { identity: { provider: 'google', subject: 'ann-sub', email: 'Ann@Example.com', emailVerified: true }, provider: google };

  it('a new person gets an account with the address the provider proved; next time the link signs them in', () => {
    expect(decideLinking(annAtGoogle)).toEqual({ kind: 'create_account', email: 'ann@example.com', emailProvenBy: 'provider' });
    expect(decideLinking({ ...annAtGoogle, linkedAccountId: 'acc-ann' })).toEqual({ kind: 'sign_in', accountId: 'acc-ann' });
  });

  it('someone with a verified account proves it is theirs (password, a code, a provider already linked), then it is linked', () => {
    const input = { ...annAtGoogle, accountWithEmail: ann };
    expect(decideLinking(input)).toEqual({ kind: 'prove_ownership', accountId: 'acc-ann', methods: ['password', 'email_code', 'provider:github'] });
    expect(decideLinking({ ...input, proofs: { account: 'acc-ann' } })).toEqual({ kind: 'link', accountId: 'acc-ann', reclaim: false });
    expect(decideLinking({ ...input, proofs: { address: 'ann@example.com' } })).toEqual({ kind: 'link', accountId: 'acc-ann', reclaim: false });
  });

  it('a Microsoft or GitHub user without a trusted address types a code, then gets an account', () => {
    const viaMicrosoft: LinkingInput = { identity: { provider: 'microsoft', subject: 'ms-sub', email: 'ann@contoso.example', emailVerified: false }, provider: microsoft };
    expect(decideLinking(viaMicrosoft)).toMatchObject({ kind: 'verify_email', suggestedEmail: 'ann@contoso.example' });
    expect(decideLinking({ ...viaMicrosoft, proofs: { address: 'ann@contoso.example' } }))
      .toEqual({ kind: 'create_account', email: 'ann@contoso.example', emailProvenBy: 'code' });
    const noAddress: LinkingInput = { identity: { provider: 'github', subject: '42', emailVerified: false }, provider: { id: 'github', trustEmailVerified: true, signUp: true } };
    expect(decideLinking(noAddress)).toEqual({ kind: 'verify_email', reason: 'missing' });
  });

  it('linking from /account asks for a recent sign-in, and never moves an identity from another account', () => {
    const session = { account: ann, recentlyAuthenticated: false };
    expect(decideLinking({ ...annAtGoogle, session })).toMatchObject({ kind: 'prove_ownership', accountId: 'acc-ann' });
    expect(decideLinking({ ...annAtGoogle, session: { ...session, recentlyAuthenticated: true } })).toEqual({ kind: 'link', accountId: 'acc-ann', reclaim: false });
    expect(decideLinking({ ...annAtGoogle, session, linkedAccountId: 'acc-other' })).toEqual({ kind: 'refuse', reason: 'linked_to_another_account' });
  });

  it('a provider with sign_up: false links and signs in, but creates nothing', () => {
    expect(decideLinking({ ...annAtGoogle, provider: { ...google, signUp: false } })).toEqual({ kind: 'refuse', reason: 'sign_up_disabled' });
  });
});
