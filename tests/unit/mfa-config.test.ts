import { describe, expect, it } from 'vitest';
import { relyingParty } from '../../src/accounts/passkeys.ts';
import { loadConfig } from '../../src/config/load.ts';
import { problemsOf } from '../support/config.ts';

describe('mfa configuration', () => {
  it('ships with passkeys, authenticator apps and email codes on, and second factors optional', () => {
    const { mfa } = loadConfig({ env: {} });
    expect(mfa.policy).toBe('optional');
    expect([mfa.passkeys.enabled, mfa.totp.enabled, mfa.email_codes.enabled]).toEqual([true, true, true]);
    expect(mfa.email_codes).toMatchObject({ ttl: 600, max_attempts: 5 });
  });

  it('derives the passkey relying party from the issuer', () => {
    expect(relyingParty(loadConfig({ env: {}, overrides: { issuer: 'https://login.shop.example:8443/' } })))
      .toEqual({ id: 'login.shop.example', name: 'Parley', origins: ['https://login.shop.example:8443'] });
  });

  it('lets a deployment on several subdomains name the common domain and every origin', () => {
    const config = loadConfig({
      env: {},
      overrides: { issuer: 'https://id.shop.example', mfa: { passkeys: { rp_id: 'shop.example', origins: ['https://id.shop.example', 'https://login.shop.example/'] } } },
    });
    expect(relyingParty(config)).toEqual({ id: 'shop.example', name: 'Parley', origins: ['https://id.shop.example', 'https://login.shop.example'] });
  });

  it('refuses origins a browser would not use the passkeys on, naming the key', () => {
    expect(problemsOf({ issuer: 'https://id.shop.example', mfa: { passkeys: { rp_id: 'shop.example', origins: ['https://shop-example.com'] } } }))
      .toEqual([expect.stringMatching(/mfa\.passkeys\.origins\[0\]: passkeys for "shop\.example" cannot be used on https:\/\/shop-example\.com/)]);
    expect(problemsOf({ issuer: 'https://id.shop.example', mfa: { passkeys: { rp_id: 'other.example' } } }))
      .toEqual([expect.stringMatching(/mfa\.passkeys\.rp_id: passkeys for "other\.example" cannot be used on https:\/\/id\.shop\.example/)]);
    expect(problemsOf({ issuer: 'https://id.example.com', mfa: { passkeys: { origins: ['https://id.example.com/login'] } } }))
      .toEqual([expect.stringMatching(/mfa\.passkeys\.origins\[0\]: expected an origin/)]);
  });

  it('refuses a required second factor with no method to set one up', () => {
    const off = { totp: { enabled: false }, passkeys: { enabled: false } };
    expect(problemsOf({ mfa: { policy: 'required', ...off } })).toEqual([expect.stringMatching(/: mfa\.policy: a required second factor needs/)]);
    expect(problemsOf({ mfa: off, demo: { enabled: false }, clients: [{ client_id: 'bank', redirect_uris: ['https://bank.example/cb'], mfa: 'required' }] }))
      .toEqual([expect.stringMatching(/: clients\[0\]\.mfa: a required second factor needs/)]);
  });
});
