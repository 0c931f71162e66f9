import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/load.ts';
import { thrown } from '../support/thrown.ts';

const SECRET = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;

const problems = (overrides: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) => thrown(() => loadConfig({ env, overrides }), ConfigError).problems;

describe('import and legacy_verify settings', () => {
  it('ship off: no Firebase parameters, no legacy endpoint', () => {
    const config = loadConfig({ env: {} });
    expect(config.import.firebase_scrypt).toEqual({ signer_key: '', salt_separator: '', rounds: 8, mem_cost: 14 });
    expect(config.legacy_verify).toEqual({ url: '', secret: '', timeout: 3, allow_http_hosts: ['127.0.0.1', 'localhost', '::1'] });
  });

  it('take their secrets from the environment', () => {
    const config = loadConfig({
      env: { PARLEY_FIREBASE_SIGNER_KEY: 'c2lnbmVyLWtleQ==', PARLEY_LEGACY_VERIFY_SECRET: SECRET },
      overrides: { legacy_verify: { url: 'https://old.example.com/verify' } },
    });
    expect(config.import.firebase_scrypt.signer_key).toBe('c2lnbmVyLWtleQ==');
    expect(config.legacy_verify.secret).toBe(SECRET);
  });

  it('send a password over plain http only to the listed loopback hosts', () => {
    expect(loadConfig({ env: {}, overrides: { legacy_verify: { url: 'http://127.0.0.1:8080/verify', secret: SECRET } } }).legacy_verify.url)
      .toBe('http://127.0.0.1:8080/verify');
    expect(problems({ legacy_verify: { url: 'http://old.example.com/verify', secret: SECRET } })).toEqual([
      expect.stringMatching(/legacy_verify\.url: must use https; plain http is allowed only to the hosts in legacy_verify\.allow_http_hosts .*not "old\.example\.com"/),
    ]);
  });

  it('sign every request: a url needs a whsec_ secret', () => {
    expect(problems({ legacy_verify: { url: 'https://old.example.com/verify' } })).toEqual([
      expect.stringMatching(/legacy_verify\.secret: requests to legacy_verify\.url are signed/),
    ]);
    expect(problems({ legacy_verify: { url: 'https://old.example.com/verify', secret: 'hunter2' } })).toEqual([
      expect.stringMatching(/legacy_verify\.secret: expected "whsec_"/),
    ]);
  });

  it('check the Firebase parameters\' shape, naming the variable that set a bad one', () => {
    expect(problems({ import: { firebase_scrypt: { rounds: 0, mem_cost: 40 } } })).toEqual(expect.arrayContaining([
      expect.stringMatching(/import\.firebase_scrypt\.rounds:/),
      expect.stringMatching(/import\.firebase_scrypt\.mem_cost:/),
    ]));
    expect(problems({}, { PARLEY_FIREBASE_SIGNER_KEY: 'not base64!' })).toEqual([
      expect.stringMatching(/^environment PARLEY_FIREBASE_SIGNER_KEY: import\.firebase_scrypt\.signer_key:/),
    ]);
  });
});
