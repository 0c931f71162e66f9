import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG_FILE, loadConfig } from '../../src/config/load.ts';
import { resolveUpstreamSettings } from '../../src/federation/settings.ts';
import { configFile, problemsOf } from '../support/config-files.ts';

const p8 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

describe('identity_providers configuration', () => {
  it('accepts every example documented in config/default.yaml, and reads their secrets', () => {
    // The commented examples are the operators' documentation: they must stay valid.
    const lines = readFileSync(DEFAULT_CONFIG_FILE, 'utf8').split('\n');
    const start = lines.findIndex((l) => l.startsWith('#   - id: google'));
    const end = lines.findIndex((l) => l.startsWith('identity_providers:'));
    expect(start).toBeGreaterThan(0);
    const examples = lines.slice(start, end).map((l) => l.replace(/^# ?/, '')).join('\n');
    const config = loadConfig({ env: { PARLEY_CONFIG: configFile(`identity_providers:\n${examples}\n`) } });
    expect(config.identity_providers.map((p) => p.id)).toEqual(['google', 'apple', 'microsoft', 'github', 'acme', 'forge']);
    const settings = resolveUpstreamSettings(config.identity_providers, {
      env: { GOOGLE_CLIENT_SECRET: 'g', MICROSOFT_CLIENT_SECRET: 'm', GITHUB_CLIENT_SECRET: 'h', ACME_CLIENT_SECRET: 'a', FORGE_CLIENT_SECRET: 'f' },
      readFile: (file) => { expect(file).toBe('/run/secrets/AuthKey_XYZ987ABCD.p8'); return p8; },
    });
    const [google, apple, microsoft, github, acme, forge] = settings;
    expect(google).toMatchObject({ type: 'oidc', issuer: 'https://accounts.google.com', trustEmailVerified: true, authorizationParams: { prompt: 'select_account' }, timeout: 10 });
    expect(apple).toMatchObject({ issuer: 'https://appleid.apple.com', responseMode: 'form_post', clientAuthentication: { method: 'apple_jwt', teamId: 'ABCDE12345', keyId: 'XYZ987ABCD' } });
    expect(apple!.loginHintParameter).toBeUndefined();
    expect(microsoft).toMatchObject({ issuer: 'https://login.microsoftonline.com/common/v2.0', trustEmailVerified: false, allowedTenants: [] });
    expect(github).toMatchObject({ type: 'oauth2', endpoints: { emails_endpoint: 'https://api.github.com/user/emails' }, claims: { subject: ['id'], name: ['name', 'login'] } });
    expect(acme).toMatchObject({ name: { en: 'Acme ID' }, trustEmailVerified: false, loginHintParameter: 'login_hint' });
    expect(forge).toMatchObject({ claims: { subject: ['id'], email_verified: ['email_confirmed'], name: ['display_name', 'username'], locale: ['locale'] } });
  });

  /** The file's problems are exactly these: [line, key path under identity_providers, start of the message]. */
  const expectProblems = (lines: string[], expected: [number, string, string][]) => {
    const file = configFile(lines.join('\n'));
    const name = path.relative(process.cwd(), file);
    const problems = problemsOf(() => loadConfig({ env: { PARLEY_CONFIG: file } }));
    const escape = (text: string) => text.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
    expect(problems).toEqual(expect.arrayContaining(expected.map(([line, key, message]) => expect.stringMatching(
      new RegExp(`^${escape(`${name}:${line}: identity_providers${key}: ${message}`)}`),
    ))));
    expect(problems).toHaveLength(expected.length);
  };

  it('reports malformed entries with file, line, key path and what is expected', () => {
    expectProblems([
      'identity_providers:',                                   // 1
      '  - id: Forge',                                         // 2: upper case
      '    type: oauth2',                                      // 3
      '    client_id: forge',                                  // 4
      '    authorization_endpoint: http://forge.example/auth', // 5: http, not loopback
      '    client_secret: { vault: g }',                       // 6
      '    scope: openid',                                     // 7: unknown key
      '    timeout: soon',                                     // 8
    ], [
      [2, '[0].id', 'use a lower-case letter'],
      [5, '[0].authorization_endpoint', 'expected an https URL (plain http only to localhost'],
      [6, '[0].client_secret', 'expected the secret itself, { env: VARIABLE } or { file: path }'],
      [8, '[0].timeout', 'expected a duration'],
      [7, '[0].scope', 'unknown key'],
    ]);
  });

  it('reports what a preset or a type needs, and what may not be combined', () => {
    expectProblems([
      'identity_providers:',                                   // 1
      '  - id: acme',                                          // 2
      '    type: oidc',                                        // 3: no issuer, no name
      '    client_id: parley',                                 // 4
      '    scopes: [email]',                                   // 5: no openid
      '  - id: apple',                                         // 6
      '    preset: apple',                                     // 7: no apple:
      '    client_id: com.example.web',                        // 8
      '    client_secret: not-for-apple',                      // 9
      '  - id: microsoft',                                     // 10
      '    preset: microsoft',                                 // 11
      '    client_id: ms',                                     // 12
      '    client_secret: { env: MS_SECRET }',                 // 13
      '    trust_email_verified: true',                        // 14
      '  - id: forge',                                         // 15
      '    type: oauth2',                                      // 16
      '    name: Forge',                                       // 17
      '    client_id: forge',                                  // 18
      '    authorization_endpoint: https://forge.example/auth',// 19
      '    token_endpoint: https://forge.example/token',       // 20 (no userinfo_endpoint, no claims.subject)
      '    authorization_params: { state: fixed }',            // 21
      '    tenant: common',                                    // 22
      '  - id: acme',                                          // 23: duplicate
      '    preset: google',                                    // 24: no client_secret
      '    type: oauth2',                                      // 25
      '    client_id: g',                                      // 26
    ], [
      [2, '[0].issuer', 'an OpenID provider needs its issuer'],
      [2, '[0].name', 'a provider without a preset needs a name'],
      [5, '[0].scopes', 'an OpenID provider needs the openid scope'],
      [6, '[1]', 'Sign in with Apple needs apple:'],
      [9, '[1].client_secret', "Apple's client secret is a JWT"],
      [14, '[2].trust_email_verified', 'Microsoft does not prove'],
      [15, '[3].userinfo_endpoint', 'a plain OAuth 2.0 provider needs its userinfo_endpoint'],
      [15, '[3].claims', 'OAuth 2.0 has no standard user id'],
      [21, '[3].authorization_params.state', 'state is set by Parley itself'],
      [22, '[3].tenant', 'tenant belongs to a provider with preset: microsoft'],
      [23, '[4].id', 'duplicate identity provider id "acme"'],
      [25, '[4].type', 'preset google is type oidc'],
      [23, '[4].client_secret', 'Google needs the client_secret'],
    ]);
  });

  it('names a secret that cannot be read by its key path, never by its value', () => {
    const config = loadConfig({ env: {}, overrides: { identity_providers: [
      { id: 'google', preset: 'google', client_id: 'g', client_secret: { env: 'GOOGLE_SECRET' } },
      { id: 'github', preset: 'github', client_id: 'h', client_secret: { file: '/nonexistent/parley/secret' } },
      { id: 'apple', preset: 'apple', client_id: 'a', apple: { team_id: 'ABCDE12345', key_id: 'XYZ987ABCD', private_key: 'not a key but a secret-looking string' } },
    ] } });
    const problems = problemsOf(() => resolveUpstreamSettings(config.identity_providers, { env: {} }));
    expect(problems).toEqual([
      'identity_providers[0].client_secret: the environment variable GOOGLE_SECRET is not set',
      'identity_providers[1].client_secret: the file /nonexistent/parley/secret cannot be read (ENOENT)',
      'identity_providers[2].apple.private_key: expected the Sign in with Apple key: a P-256 private key in PKCS #8 PEM (the .p8 file)',
    ]);
    expect(problems.join('\n')).not.toContain('secret-looking');
  });

  it('keeps secrets out of JSON, util.inspect and strings', () => {
    const config = loadConfig({ env: {}, overrides: { identity_providers: [{ id: 'google', preset: 'google', client_id: 'g', client_secret: { env: 'S' } }] } });
    const [settings] = resolveUpstreamSettings(config.identity_providers, { env: { S: 'very-secret-value' } });
    expect(JSON.stringify(settings)).not.toContain('very-secret-value');
    expect(inspect(settings, { depth: 5 })).not.toContain('very-secret-value');
    expect(`${(settings!.clientAuthentication as { secret: object }).secret}`).toBe('[redacted]');
    expect((settings!.clientAuthentication as { secret: { reveal(): string } }).secret.reveal()).toBe('very-secret-value');
  });

  it('is empty by default', () => {
    expect(loadConfig({ env: {} }).identity_providers).toEqual([]);
  });
});
