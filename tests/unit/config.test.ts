import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { developmentDefaultsInUse, loadConfig } from '../../src/config/load.ts';
import { configFile, problemsOf } from '../support/config-files.ts';

describe('configuration', () => {
  it('loads the shipped defaults with durations in seconds', () => {
    const config = loadConfig({ env: {} });
    expect(config.port).toBe(3000);
    expect(config.profiling.min_interval).toBe(20 * 3600);
    expect(config.ttl.authorization_code).toBe(60);
    expect(config.accounts.argon2).toEqual({ memory_kib: 19456, iterations: 2, parallelism: 1 });
  });

  it('replaces ${issuer} in client URLs with the configured issuer', () => {
    const config = loadConfig({ env: { ISSUER: 'https://id.example.com/' } });
    expect(config.clients[0]!.redirect_uris).toEqual(['https://id.example.com/demo/callback']);
  });

  it('works out the base URL, secure cookies and the clients by id once, and freezes it all', () => {
    const config = loadConfig({ env: { ISSUER: 'https://id.example.com/' } });
    expect(config.issuer).toBe('https://id.example.com/');
    expect(config.baseUrl).toBe('https://id.example.com');
    expect(config.secureCookies).toBe(true);
    expect(loadConfig({ env: {} }).secureCookies).toBe(false);
    // The configured apps, and the preference center's own client.
    expect([...config.clientsById.keys()]).toEqual(['demo-shop', 'parley-account']);
    expect(config.clientsById.get('parley-account')).toMatchObject({
      first_party: true, profiling: false, redirect_uris: ['https://id.example.com/account/callback'],
    });
    expect(config.clients.map((c) => c.client_id)).toEqual(['demo-shop', 'parley-account']);

    // Nothing changes it while Parley runs: a change is a new load.
    const mutable = config as unknown as { account: { recent_sign_in: number }; clients: unknown[] };
    expect(() => { mutable.account.recent_sign_in = -1; }).toThrow(TypeError);
    expect(() => { mutable.clients.push({}); }).toThrow(TypeError);
    expect(() => (config.clientsById as Map<string, unknown>).set('intruder', {})).toThrow(TypeError);
    expect(() => (config.clientsById as Map<string, unknown>).delete('demo-shop')).toThrow(TypeError);
    expect(() => { (config.clientsById.get('demo-shop') as { first_party: boolean }).first_party = false; }).toThrow(TypeError);
    expect(config.account.recent_sign_in).toBe(300);
    expect([...config.clientsById.keys()]).toEqual(['demo-shop', 'parley-account']);
  });

  it("refuses a configured client with the preference center's client id", () => {
    expect(problemsOf(() => loadConfig({ env: {}, overrides: { clients: [{ client_id: 'parley-account', redirect_uris: ['http://localhost/cb'] }], demo: { enabled: false } } })))
      .toEqual([expect.stringContaining('clients[0].client_id: "parley-account" is the preference center\'s own client')]);
  });

  it('lets the file in PARLEY_CONFIG and then the environment override the defaults', () => {
    const file = configFile('port: 4000\naccounts:\n  require_verified_email: true\n');
    const config = loadConfig({ env: { PARLEY_CONFIG: file, PORT: '5000', DATABASE_URL: 'postgres://db/parley' } });
    expect(config.port).toBe(5000);
    expect(config.accounts.require_verified_email).toBe(true);
    expect(config.accounts.password_min_length).toBe(8);
    expect(config.database.url).toBe('postgres://db/parley');
  });

  it('lists every problem at once, each with file, line, key path and what is expected', () => {
    const file = configFile([
      'port: lots',                        // line 1
      'database:',                         // line 2
      '  pool_size: 3',                    // line 3: unknown key
      'profiling:',                        // line 4
      '  min_interval: twenty hours',      // line 5: bad duration
      'clients:',                          // line 6
      '  - client_id: shop',               // line 7
      '    redirect_uris: [not-a-url]',    // line 8
    ].join('\n'));
    const problems = problemsOf(() => loadConfig({ env: { PARLEY_CONFIG: file } }));
    const name = path.relative(process.cwd(), file);
    expect(problems).toEqual(expect.arrayContaining([
      expect.stringMatching(new RegExp(`^${name}:1: port: .*expected number`)),
      expect.stringMatching(new RegExp(`^${name}:3: database\\.pool_size: unknown key`)),
      expect.stringMatching(new RegExp(`^${name}:5: profiling\\.min_interval: expected a duration such as 60s, 15m, 20h or 7d, got "twenty hours"`)),
      expect.stringMatching(new RegExp(`^${name}:8: clients\\[0\\]\\.redirect_uris\\[0\\]: expected an absolute http\\(s\\) URL`)),
    ]));
    expect(problems).toHaveLength(4);
  });

  it('names the line of the key itself when its value is a block', () => {
    const file = configFile('port: 3000\ndatabase:\n  extra:\n    nested: 1\n');
    expect(problemsOf(() => loadConfig({ env: { PARLEY_CONFIG: file } }))).toEqual([expect.stringMatching(/parley\.yaml:3: database\.extra: unknown key/)]);
  });

  it('blames the environment variable that set a bad value', () => {
    expect(problemsOf(() => loadConfig({ env: { PORT: 'abc' } }))).toEqual([expect.stringMatching(/^environment PORT: port: /)]);
  });

  it('cuts slow clients off at http.headers_timeout and http.request_timeout, headers first', () => {
    expect(loadConfig({ env: {} }).http).toEqual({ headers_timeout: 15, request_timeout: 30 });
    const file = configFile('http:\n  headers_timeout: 1m\n  request_timeout: 30s\n');
    expect(problemsOf(() => loadConfig({ env: { PARLEY_CONFIG: file } }))).toEqual([
      expect.stringMatching(/parley\.yaml:2: http\.headers_timeout: must not be longer than http\.request_timeout \(30s\)/),
    ]);
  });

  it('refuses a client that names an undeclared purpose', () => {
    const problems = problemsOf(() => loadConfig({ env: {}, overrides: { clients: [{ client_id: 'demo-shop', redirect_uris: ['http://localhost/cb'], purposes: ['telepathy'] }] } }));
    expect(problems).toEqual([expect.stringContaining('clients[0].purposes[0]: unknown purpose "telepathy"')]);
  });

  it('refuses proxy and scraper addresses that are not addresses or CIDR networks, and a hop count below one', () => {
    const file = configFile([
      'forwarded_for:',
      '  hops: 0',
      '  trusted_proxies: [10.0.0.0/8, proxy.internal, 10.0.0.0/40]',
      'metrics:',
      '  allow_ips: [127.0.0.1, "::1", localhost]',
    ].join('\n'));
    const problems = problemsOf(() => loadConfig({ env: { PARLEY_CONFIG: file } }));
    const name = path.relative(process.cwd(), file);
    expect(problems).toEqual([
      expect.stringMatching(new RegExp(`^${name}:2: forwarded_for.hops: .*>=1`)),
      expect.stringMatching(new RegExp(`^${name}:3: forwarded_for.trusted_proxies\\[1\\]: expected an IP address or a CIDR network`)),
      expect.stringMatching(new RegExp(`^${name}:3: forwarded_for.trusted_proxies\\[2\\]: expected an IP address or a CIDR network`)),
      expect.stringMatching(new RegExp(`^${name}:5: metrics.allow_ips\\[2\\]: expected an IP address or a CIDR network`)),
    ]);
    const config = loadConfig({ env: {}, overrides: { forwarded_for: { hops: 2, trusted_proxies: ['10.0.0.0/8', '2001:db8::/32'] } } });
    expect(config.forwarded_for).toEqual({ hops: 2, trusted_proxies: ['10.0.0.0/8', '2001:db8::/32'] });
    expect(config.throttle.password_reset).toEqual({ per_email: 3, per_ip: 20, window: 3600 });
  });

  it('lists no terms documents by default, and checks each one listed with its line and key path', () => {
    expect(loadConfig({ env: {} }).terms).toEqual([]);
    const file = configFile([
      'terms:',                                          // line 1
      '  - id: tos',                                     // line 2
      '    version: 1',                                  // line 3
      '    title: { en: Terms of service, ar: شروط الخدمة }',
      '    url: { en: https://example.com/terms, ar: not-a-url }',   // line 5
      '  - id: tos',                                     // line 6: duplicate
      '    version: 0',                                  // line 7: not positive
      '    title: Terms',
      '    url: https://example.com/terms',
      '    text: the whole text',                        // line 10: unknown key
    ].join('\n'));
    const problems = problemsOf(() => loadConfig({ env: { PARLEY_CONFIG: file } }));
    const name = path.relative(process.cwd(), file);
    expect(problems).toEqual(expect.arrayContaining([
      expect.stringMatching(new RegExp(`^${name}:5: terms\\[0\\]\\.url\\.ar: expected an absolute http\\(s\\) URL`)),
      expect.stringMatching(new RegExp(`^${name}:7: terms\\[1\\]\\.version: `)),
      expect.stringMatching(new RegExp(`^${name}:10: terms\\[1\\]\\.text: unknown key`)),
    ]));
    const valid = loadConfig({ env: {}, overrides: { terms: [{ id: 'tos', version: 2, title: { en: 'Terms' }, url: '${issuer}/terms' }] } });
    expect(valid.terms).toEqual([{ id: 'tos', version: 2, title: { en: 'Terms' }, url: 'http://localhost:3000/terms' }]);
    const duplicate = problemsOf(() => loadConfig({ env: {}, overrides: { terms: [
      { id: 'tos', version: 1, title: 'Terms', url: 'https://example.com/a' },
      { id: 'tos', version: 1, title: 'Terms', url: 'https://example.com/b' },
    ] } }));
    expect(duplicate).toEqual([expect.stringContaining('terms[1].id: duplicate terms document id "tos"')]);
  });

  it('has the age gate off by default, and keeps the date of birth it asks for only under a legal_obligation purpose', () => {
    expect(loadConfig({ env: {} }).registration).toEqual({ minimum_age: 0, birthdate_purpose: '' });
    expect(problemsOf(() => loadConfig({ env: {}, overrides: { registration: { minimum_age: 16 } } }))).toEqual([
      expect.stringContaining('registration.birthdate_purpose: registration.minimum_age keeps the date of birth under a purpose'),
    ]);
    expect(problemsOf(() => loadConfig({ env: {}, overrides: { registration: { minimum_age: 16, birthdate_purpose: 'offers' } } }))).toEqual([
      expect.stringContaining('purpose "offers" must have legal_basis: legal_obligation, not consent'),
    ]);
    const config = loadConfig({ env: {}, overrides: {
      registration: { minimum_age: 13, birthdate_purpose: 'age_check' },
      purposes: { age_check: { legal_basis: 'legal_obligation', version: 1, title: 'Age check' } },
    } });
    expect(config.registration).toEqual({ minimum_age: 13, birthdate_purpose: 'age_check' });
  });

  it('reports YAML syntax errors with their line', () => {
    const file = configFile('port: 3000\ndatabase: [unclosed\n');
    expect(problemsOf(() => loadConfig({ env: { PARLEY_CONFIG: file } }))[0]).toMatch(/parley\.yaml:\d+: /);
  });

  it('names the development secrets still in use', () => {
    const warnings = developmentDefaultsInUse(loadConfig({ env: {} }));
    expect(warnings.join('\n')).toMatch(/cookie_keys/);
    expect(warnings.join('\n')).toMatch(/key_encryption/);
    // Without SMTP, mail goes to a local directory: fine in development, refused in production.
    expect(warnings.join('\n')).toMatch(/mail\.smtp_url/);
    const safe = loadConfig({
      env: { PARLEY_COOKIE_KEYS: 'a-real-secret-of-enough-length', PARLEY_KEY_ENCRYPTION_SECRET: 'another-real-secret-long-enough', SMTP_URL: 'smtp://127.0.0.1:2525' },
      overrides: { demo: { enabled: false }, clients: [] },
    });
    expect(developmentDefaultsInUse(safe)).toEqual([]);
  });
});
