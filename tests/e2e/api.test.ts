import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { importJWK, SignJWT, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_SCOPES } from '../../src/config/schema.ts';
import { apiRoutes, routerPath } from '../../src/http/api/routes.ts';
import { loadSigningKeys } from '../../src/oidc/keys.ts';
import { HttpBrowser, type Page } from '../support/browser.ts';
import { appClient, authorizationRequest, exchange, oidc, register, uniqueEmail, type AppClient } from '../support/oidc-app.ts';
import { captureLogs, startTestServer, TEST_CLIENTS, type TestServer } from '../support/server.ts';

// The management API over HTTP against a real server: client credentials tokens from the token
// endpoint (openid-client, as a CRM would), users with answers created through the real sign-in
// and question screen, and every response checked against the server's own OpenAPI document.
// Question and screen-set ids carry a tag unique to the run, so counts hold on a shared database.

const tag = `e${crypto.randomUUID().replaceAll('-', '').slice(0, 8)}`;
const BREW = `brew_${tag}`;
const BIRTHDAY = `birthday_${tag}`;
const SET = `api-${tag}`;
const OPERATOR = uniqueEmail('operator');

const screensetsDir = mkdtempSync(path.join(os.tmpdir(), 'parley-api-screensets-'));
writeFileSync(path.join(screensetsDir, 'api.yaml'), `
id: ${SET}
title: { en: API test set, ar: مجموعة اختبار, ja: APIテスト }
trigger: [after_registration]
questions:
  - id: ${BREW}
    type: single_choice
    purpose: personalization
    label: { en: How do you brew?, ar: كيف تحضّر قهوتك؟, ja: 淹れ方は？ }
    options:
      - { value: espresso, label: { en: Espresso, ar: إسبريسو, ja: エスプレッソ } }
      - { value: filter, label: { en: Filter, ar: مفلترة, ja: ドリップ } }
  - id: ${BIRTHDAY}
    type: date
    purpose: offers
    label: { en: When is your birthday?, ar: متى عيد ميلادك؟, ja: お誕生日は？ }
    max: today
`);

const SECRET = 'api-client-secret-for-tests-0123';
const API_CLIENTS = [
  // A CRM registered for personalization only, with every scope but events.
  { client_id: 'crm', client_secret: SECRET, grant_types: ['client_credentials'], purposes: ['personalization'], scope: 'accounts:read accounts:export accounts:write accounts:import segments:read stats:read events:replay' },
  // A data platform registered for both purposes.
  { client_id: 'platform', client_secret: SECRET, grant_types: ['client_credentials'], purposes: ['personalization', 'offers'], scope: 'accounts:read segments:read stats:read' },
  // A system allowed to read accounts, nothing else.
  { client_id: 'reader', client_secret: SECRET, grant_types: ['client_credentials'], purposes: ['personalization'], scope: 'accounts:read' },
];

let server: TestServer;
let spa: AppClient;
let api: string;
let logLines: Record<string, unknown>[] = [];

beforeAll(async () => {
  server = await startTestServer({
    screensets: { dir: screensetsDir },
    api: { operators: [OPERATOR.toUpperCase()] },
    clients: [...TEST_CLIENTS('${issuer}'), ...API_CLIENTS],
  });
  spa = await appClient(server, 'spa');
  api = `${server.issuer}/api/v1`;
  logLines = captureLogs(server);
});
afterAll(async () => { await server?.close(); });

// ---- Tokens -------------------------------------------------------------------------------------

async function clientConfig(clientId: string, secret = SECRET) {
  return oidc.discovery(new URL(server.issuer), clientId, secret, undefined, { execute: [oidc.allowInsecureRequests] });
}

const tokens = new Map<string, string>();
async function tokenFor(clientId: string, scope = 'accounts:read accounts:export accounts:write segments:read stats:read events:replay'): Promise<string> {
  const key = `${clientId} ${scope}`;
  if (!tokens.has(key)) tokens.set(key, (await oidc.clientCredentialsGrant(await clientConfig(clientId), { scope })).access_token);
  return tokens.get(key)!;
}

/** A token signed with the issuer's own key, with whatever claims a test needs. */
async function mint(claims: Record<string, unknown>, header: Record<string, unknown> = {}): Promise<string> {
  const [key] = await loadSigningKeys(server.parley.storage.db, server.config.secrets.key_encryption, new Date());
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    iss: server.issuer, aud: `${server.issuer}/api/v1`, sub: 'crm', client_id: 'crm', scope: 'accounts:read segments:read',
    iat: now - 60, exp: now + 600, jti: crypto.randomUUID(), ...claims,
  }).setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: key!.kid!, ...header }).sign(await importJWK(key as JWK, 'RS256'));
}

// ---- Calls, each response validated against the OpenAPI document --------------------------------

type Json = Record<string, unknown>;
let document: Json | undefined;
const exercised = new Set<string>();

async function call(method: string, pathAndQuery: string, options: { token?: string | null; body?: unknown; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let body: string | undefined;
  if (options.body !== undefined) {
    headers['content-type'] ??= 'application/json';
    body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
  }
  const response = await fetch(`${api}${pathAndQuery}`, { method, headers, body });
  const text = await response.text();
  const json = text ? JSON.parse(text) as Json : undefined;
  checkAgainstDocument(method, pathAndQuery.split('?')[0]!, response, json);
  return { status: response.status, headers: response.headers, body: json as Json };
}

async function openApi(): Promise<Json> {
  document ??= await (await fetch(`${server.issuer}/api/v1/openapi.json`)).json() as Json;
  return document;
}

function checkAgainstDocument(method: string, actualPath: string, response: Response, json: unknown) {
  if (!document) return;
  const paths = document.paths as Record<string, Record<string, Json>>;
  // A literal path (/accounts/import) before a template that also matches it (/accounts/{id}).
  const template = Object.keys(paths).find((p) => p === actualPath)
    ?? Object.keys(paths).find((p) => new RegExp(`^${p.replace(/\{\w+\}/g, '[^/]+')}$`).test(actualPath));
  const operation = template ? paths[template]![method.toLowerCase()] : undefined;
  if (!operation) {
    // Not an operation: the JSON 404/405 of the API, in the error shape.
    expect(json, `${method} ${actualPath}`).toBeDefined();
    expectValid(errorSchema(), json, `${method} ${actualPath} ${response.status}`);
    return;
  }
  exercised.add(`${method.toUpperCase()} ${template}`);
  const responses = operation.responses as Record<string, Json>;
  const documented = responses[String(response.status)];
  expect(documented, `${method} ${template} answered ${response.status}, which the document does not list`).toBeDefined();
  const content = documented!.content as Record<string, { schema: Json }> | undefined;
  if (!content) {
    expect(json, `${method} ${template} ${response.status} has no body`).toBeUndefined();
    return;
  }
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  expectValid(content['application/json']!.schema, json, `${method} ${template} ${response.status}`);
}

const errorSchema = () => ({ $ref: '#/components/schemas/Error' });

function expectValid(schema: Json, value: unknown, where: string) {
  const problems = validate(schema, value, '$');
  expect(problems, `${where}: ${JSON.stringify(value).slice(0, 300)}`).toEqual([]);
}

// A JSON Schema (2020-12) validator for the keywords the document uses. An unknown keyword is an
// error, so the document cannot use something this check would silently ignore.
const ANNOTATIONS = new Set(['description', 'title', 'format', '$schema', 'id']);
function validate(schema: Json, value: unknown, at: string): string[] {
  const problems: string[] = [];
  const fail = (message: string) => problems.push(`${at}: ${message}`);
  for (const [keyword, argument] of Object.entries(schema)) {
    switch (keyword) {
      case '$ref': {
        const name = /^#\/components\/schemas\/(\w+)$/.exec(argument as string)?.[1];
        const target = name ? ((document!.components as Json).schemas as Record<string, Json>)[name] : undefined;
        if (!target) fail(`unresolvable $ref ${String(argument)}`);
        else problems.push(...validate(target, value, at));
        break;
      }
      case 'type': {
        const types = [argument].flat() as string[];
        const actual = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
        const ok = types.some((t) => t === actual || (t === 'integer' && Number.isInteger(value)) || (t === 'number' && typeof value === 'number'));
        if (!ok) fail(`expected ${types.join('|')}, got ${actual}`);
        break;
      }
      case 'properties':
        if (value && typeof value === 'object' && !Array.isArray(value)) {
          for (const [name, sub] of Object.entries(argument as Record<string, Json>)) {
            if (name in value) problems.push(...validate(sub, (value as Json)[name], `${at}.${name}`));
          }
        }
        break;
      case 'required':
        if (value && typeof value === 'object') for (const name of argument as string[]) if (!(name in value)) fail(`missing ${name}`);
        break;
      case 'additionalProperties':
        if (value && typeof value === 'object' && !Array.isArray(value)) {
          const known = Object.keys((schema.properties as Json | undefined) ?? {});
          for (const [name, item] of Object.entries(value)) {
            if (known.includes(name)) continue;
            if (argument === false) fail(`unexpected property ${name}`);
            else problems.push(...validate(argument as Json, item, `${at}.${name}`));
          }
        }
        break;
      case 'propertyNames':
        if (value && typeof value === 'object') for (const name of Object.keys(value)) problems.push(...validate(argument as Json, name, `${at}[key ${name}]`));
        break;
      case 'items':
        if (Array.isArray(value)) value.forEach((item, i) => problems.push(...validate(argument as Json, item, `${at}[${i}]`)));
        break;
      case 'anyOf':
        if (!(argument as Json[]).some((sub) => validate(sub, value, at).length === 0)) fail('matches none of anyOf');
        break;
      case 'oneOf':
        if ((argument as Json[]).filter((sub) => validate(sub, value, at).length === 0).length !== 1) fail('does not match exactly one of oneOf');
        break;
      case 'enum':
        if (!(argument as unknown[]).includes(value)) fail(`not one of ${JSON.stringify(argument)}`);
        break;
      case 'const':
        if (value !== argument) fail(`expected ${JSON.stringify(argument)}`);
        break;
      case 'minimum': if (typeof value === 'number' && value < (argument as number)) fail(`below ${String(argument)}`); break;
      case 'maximum': if (typeof value === 'number' && value > (argument as number)) fail(`above ${String(argument)}`); break;
      case 'minItems': if (Array.isArray(value) && value.length < (argument as number)) fail('too few items'); break;
      case 'maxItems': if (Array.isArray(value) && value.length > (argument as number)) fail('too many items'); break;
      case 'minLength': if (typeof value === 'string' && value.length < (argument as number)) fail('too short'); break;
      case 'maxLength': if (typeof value === 'string' && value.length > (argument as number)) fail('too long'); break;
      case 'pattern': if (typeof value === 'string' && !new RegExp(argument as string, 'u').test(value)) fail(`does not match ${String(argument)}`); break;
      default:
        if (!ANNOTATIONS.has(keyword)) fail(`the validator does not know the keyword ${keyword}`);
    }
  }
  return problems;
}

// ---- Users, through the real sign-in and question screen ----------------------------------------

interface User { browser: HttpBrowser; email: string; sub: string }

async function newUser(answers: { brew?: string; birthday?: string }, consents: string[], email = uniqueEmail('api')): Promise<User> {
  const browser = new HttpBrowser();
  const request = await authorizationRequest(spa, { scope: 'openid email' });
  const screen = await register(browser, await browser.navigate(request.url), email, spa.redirectUri);
  expect(screen.html).toContain('How do you brew?');
  const callback = await browser.submit(screen, '/profile', {
    [`answer.${BREW}`]: answers.brew ?? '', [`answer.${BIRTHDAY}`]: answers.birthday ?? '', consent: consents,
  }, spa.redirectUri);
  const result = await exchange(spa, request, callback.url);
  return { browser, email, sub: result.claims()!.sub };
}

async function accountAction(user: User, action: string, fields: Record<string, string>): Promise<Page> {
  return user.browser.submit(await user.browser.navigate(`${server.issuer}/account`), action, fields);
}

let alice: User; // the operator: espresso, a birthday, both consents
let bob: User; // espresso and a birthday, then withdraws personalization
let carol: User; // filter, no birthday, personalization only

beforeAll(async () => {
  await openApi();
  alice = await newUser({ brew: 'espresso', birthday: '1990-04-01' }, ['personalization', 'offers'], OPERATOR);
  bob = await newUser({ brew: 'espresso', birthday: '1985-12-24' }, ['personalization', 'offers']);
  carol = await newUser({ brew: 'filter' }, ['personalization']);
  await accountAction(bob, '/account/consents/personalization', { action: 'withdraw' });
});

describe('access tokens for the API', () => {
  it('are JWTs for the API audience from the client credentials grant, with at most the client\'s scopes', async () => {
    const discovery = await (await fetch(`${server.issuer}/.well-known/openid-configuration`)).json() as Json;
    expect(discovery.grant_types_supported).toContain('client_credentials');
    const granted = await oidc.clientCredentialsGrant(await clientConfig('reader'), { scope: 'accounts:read segments:read stats:read' });
    expect(granted.scope).toBe('accounts:read');
    const [header, payload] = granted.access_token.split('.').slice(0, 2).map((part) => JSON.parse(Buffer.from(part, 'base64url').toString()) as Json);
    expect(header).toMatchObject({ alg: 'RS256', typ: 'at+jwt' });
    expect(payload).toMatchObject({ iss: server.issuer, aud: `${server.issuer}/api/v1`, client_id: 'reader', sub: 'reader', scope: 'accounts:read' });
    expect(Number(payload!.exp) - Number(payload!.iat)).toBe(server.config.api.access_token_ttl);
  });

  it('are not given to apps that sign users in, nor to a wrong secret', async () => {
    const webApp = await appClient(server, 'web-app');
    await expect(oidc.clientCredentialsGrant(webApp.config, { scope: 'accounts:read' })).rejects.toMatchObject({ error: expect.stringMatching(/^(unauthorized_client|invalid_request)$/) });
    await expect(oidc.clientCredentialsGrant(await clientConfig('crm', 'wrong-secret-0123456789'), { scope: 'accounts:read' }))
      .rejects.toMatchObject({ error: 'invalid_client' });
  });
});

describe('authorization', () => {
  it('answers 401 with a Bearer challenge without a valid token for this API', async () => {
    const signInToken = (await signInAgain(alice)).access_token;
    const cases: [string, string | null][] = [
      ['no token', null],
      ['not a JWT', 'not-a-token'],
      ['an access token of a sign-in (for userinfo)', signInToken],
      ['expired', await mint({ exp: Math.floor(Date.now() / 1000) - 120 })],
      ['another audience', await mint({ aud: server.issuer })],
      ['another issuer', await mint({ iss: 'https://evil.example' })],
      ['an ID token type', await mint({}, { typ: 'JWT' })],
      ['a client that is not configured', await mint({ client_id: 'ghost', sub: 'ghost' })],
    ['a sign-in client', await mint({ client_id: 'web-app', sub: 'web-app' })],
      ['a user token, not a client one', await mint({ sub: alice.sub })],
    ];
    for (const [name, token] of cases) {
      const response = await call('GET', `/accounts/${alice.sub}`, { token });
      expect(response.status, name).toBe(401);
      expect(response.headers.get('www-authenticate'), name).toMatch(/^Bearer realm="[^"]+", error="invalid_token"/);
      expect(response.body.error, name).toBe('invalid_token');
    }
    // A tampered signature.
    const good = await tokenFor('crm');
    const tampered = `${good.slice(0, -6)}${good.slice(-6) === 'AAAAAA' ? 'BBBBBB' : 'AAAAAA'}`;
    expect((await call('GET', `/accounts/${alice.sub}`, { token: tampered })).status).toBe(401);
  });

  it('answers 403 insufficient_scope for a token without the scope of the call', async () => {
    const token = await tokenFor('reader', 'accounts:read');
    const response = await call('POST', '/segments/count', { token, body: { answered: BREW } });
    expect(response.status).toBe(403);
    expect(response.headers.get('www-authenticate')).toContain('error="insufficient_scope", scope="segments:read"');
    expect(response.body).toMatchObject({ error: 'insufficient_scope' });
    expect((await call('DELETE', `/accounts/${carol.sub}`, { token })).status).toBe(403);
    expect((await call('GET', '/stats/screensets', { token })).status).toBe(403);
  });

  it('logs every call with the client id and the route, not the account', async () => {
    const token = await tokenFor('crm');
    logLines.length = 0;
    await call('GET', `/accounts/${alice.sub}`, { token });
    await call('GET', `/accounts/${alice.sub}`, { token: null });
    const lines = logLines.filter((l) => l.msg === 'api call');
    expect(lines).toEqual([
      expect.objectContaining({ level: 30, client_id: 'crm', method: 'GET', route: '/api/v1/accounts/{id}', status: 200 }),
      expect.objectContaining({ client_id: null, status: 401 }),
    ]);
    for (const line of lines) expect(JSON.stringify(line)).not.toContain(alice.sub);
  });
});

describe('accounts', () => {
  it('reads an account with the answers the client may receive: its purposes and current consent', async () => {
    const crm = await call('GET', `/accounts/${alice.sub}`, { token: await tokenFor('crm') });
    expect(crm.status).toBe(200);
    expect(crm.body).toMatchObject({ id: alice.sub, email: alice.email, email_verified: false, answers: { [BREW]: 'espresso' } });
    // The CRM is registered for personalization only: the birthday (offers) is never shown to it.
    expect(crm.body.answers).not.toHaveProperty(BIRTHDAY);
    expect(crm.body.consents).toEqual([expect.objectContaining({ purpose: 'personalization', state: 'granted', version: 1 })]);

    const platform = await call('GET', `/accounts/${alice.sub}`, { token: await tokenFor('platform', 'accounts:read segments:read stats:read') });
    expect(platform.body.answers).toEqual({ [BREW]: 'espresso', [BIRTHDAY]: '1990-04-01' });

    // Bob withdrew personalization: his brew answer is kept but released to no one.
    const withdrawn = await call('GET', `/accounts/${bob.sub}`, { token: await tokenFor('platform', 'accounts:read segments:read stats:read') });
    expect(withdrawn.body.answers).toEqual({ [BIRTHDAY]: '1985-12-24' });
    expect(withdrawn.body.consents).toEqual(expect.arrayContaining([expect.objectContaining({ purpose: 'personalization', state: 'withdrawn' })]));

    expect((await call('GET', '/accounts/no-such-account', { token: await tokenFor('crm') })).status).toBe(404);
    // An id no account can have is a caller's mistake, not a server error.
    expect((await call('GET', '/accounts/abc%00def', { token: await tokenFor('crm') })).status).toBe(400);
  });

  it('exports everything, as the preference center\'s download does', async () => {
    const response = await call('GET', `/accounts/${alice.sub}/export`, { token: await tokenFor('crm') });
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const download = await (await alice.browser.request(`${server.issuer}/account/export`)).json() as Json;
    const { exported_at: _a, ...fromApi } = response.body;
    const { exported_at: _b, ...fromCenter } = download;
    expect(fromApi).toEqual(fromCenter);
    expect(response.body.answers).toEqual(expect.arrayContaining([expect.objectContaining({ question_id: BIRTHDAY })]));
    // Everything, under every purpose: reading an account is not enough for it.
    const reader = await call('GET', `/accounts/${alice.sub}/export`, { token: await tokenFor('reader', 'accounts:read') });
    expect(reader.status).toBe(403);
  });
});

describe('segments', () => {
  const crmToken = () => tokenFor('crm');
  const platformToken = () => tokenFor('platform', 'accounts:read segments:read stats:read');

  it('counts accounts by answers the client may see, under current consent', async () => {
    const count = async (body: unknown, token?: string) => (await call('POST', '/segments/count', { token: token ?? await crmToken(), body })).body.count;
    // Alice and Bob answered espresso; Bob withdrew personalization, so only Alice counts.
    expect(await count({ answer: BREW, in: ['espresso'] })).toBe(1);
    expect(await count({ answered: BREW })).toBe(2);
    expect(await count({ all: [
      { answer: BREW, in: ['espresso'] }, { consent: 'personalization', state: 'granted' }, { answered_within: '180d', answer: BREW },
    ] })).toBe(1);
    expect(await count({ any: [{ answer: BREW, in: ['filter'] }, { answer: BREW, in: ['espresso'] }] })).toBe(2);
    expect(await count({ all: [{ answered: BIRTHDAY }, { consent: 'personalization', state: 'withdrawn' }] }, await platformToken())).toBe(1);
    expect(await count({ all: [{ answered: BIRTHDAY }, { not_answered: BREW }] }, await platformToken())).toBe(1);
  });

  it('pages through the accounts with a cursor', async () => {
    const token = await crmToken();
    const first = await call('POST', '/segments/accounts?limit=1', { token, body: { answered: BREW } });
    expect(first.status).toBe(200);
    expect(first.body.accounts).toHaveLength(1);
    const second = await call('POST', `/segments/accounts?limit=1&cursor=${first.body.next_cursor as string}`, { token, body: { answered: BREW } });
    expect(second.body.next_cursor).toBeNull();
    const ids = [...(first.body.accounts as { id: string }[]), ...(second.body.accounts as { id: string }[])].map((a) => a.id);
    expect(ids.sort()).toEqual([alice.sub, carol.sub].sort());
    expect((await call('POST', '/segments/accounts?limit=1001', { token, body: { answered: BREW } })).body.details)
      .toEqual([expect.objectContaining({ path: 'query.limit' })]);
    expect((await call('POST', '/segments/accounts?cursor=bogus', { token, body: { answered: BREW } })).body.error).toBe('invalid_cursor');
  });

  it('refuses a cursor written by hand that holds no account id, with 400 and not 500', async () => {
    const token = await crmToken();
    const condition = { answered: BREW };
    const digest = createHash('sha256').update(JSON.stringify(condition)).digest('base64url').slice(0, 16);
    for (const after of ['a\u0000b', 'x'.repeat(129), '', 42]) {
      const cursor = Buffer.from(JSON.stringify(['c1', digest, after])).toString('base64url');
      const response = await call('POST', `/segments/accounts?cursor=${cursor}`, { token, body: condition });
      expect(response.status, String(after)).toBe(400);
      expect(response.body.error).toBe('invalid_cursor');
    }
  });

  it('refuses conditions on purposes the client is not registered for (403), and says where', async () => {
    const response = await call('POST', '/segments/count', { token: await crmToken(), body: { all: [{ answered: BREW }, { answer: BIRTHDAY, in: ['1990-04-01'] }] } });
    expect(response.status).toBe(403);
    expect(response.body).toMatchObject({ error: 'purpose_not_allowed', details: [{ path: 'all[1].answer' }] });
  });

  it('explains invalid conditions with paths (400)', async () => {
    const token = await crmToken();
    const invalid = await call('POST', '/segments/count', { token, body: { all: [{ answer: BREW, in: [] }, { consent: 'personalization', state: 'maybe' }, { answr: BREW }] } });
    expect(invalid.status).toBe(400);
    expect((invalid.body.details as { path: string }[]).map((d) => d.path)).toEqual(['all[0].in', 'all[1].state', 'all[2]']);
    const unknown = await call('POST', '/segments/count', { token, body: { answered: 'no_such_question' } });
    expect(unknown).toMatchObject({ status: 400, body: { error: 'invalid_condition', details: [{ path: 'answered' }] } });
    const option = await call('POST', '/segments/count', { token, body: { answer: BREW, in: ['latte'] } });
    expect(option.body.error_description).toContain('espresso, filter');
    expect((await call('POST', '/segments/count', { token, body: '{"answered":' })).status).toBe(400);
    expect((await call('POST', '/segments/count', { token, body: 'answered=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } })).status).toBe(415);
    // A condition nested thousands deep (small enough to send) is refused before it is validated.
    const deep = `${'{"not":'.repeat(3000)}{"answered":"${BREW}"}${'}'.repeat(3000)}`;
    expect(await call('POST', '/segments/count', { token, body: deep })).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
  });
});

describe('statistics', () => {
  it('counts shown, answered, skipped and declined per day, and the answers under the client\'s purposes', async () => {
    const today = new Date().toISOString().slice(0, 10);
    const response = await call('GET', `/stats/screensets?from=${today}&to=${today}`, { token: await tokenFor('crm') });
    expect(response.status).toBe(200);
    const set = (response.body.screensets as { set_id: string; questions: Json[] }[]).find((s) => s.set_id === SET)!;
    const brew = set.questions.find((q) => q.question_id === BREW)!;
    expect(brew.days).toEqual([{ date: today, shown: 3, answered: 3, skipped: 0, declined: 0, answer_rate: 1 }]);
    // Bob's espresso is not counted: he withdrew personalization.
    expect(brew.distribution).toEqual({ espresso: 1, filter: 1 });
    const birthday = set.questions.find((q) => q.question_id === BIRTHDAY)!;
    // Carol left the birthday blank: shown, not answered. Dates are never aggregated.
    expect(birthday).toMatchObject({ totals: { shown: 3, answered: 2, skipped: 1, answer_rate: 0.6667 }, distribution: null });

    const bad = await call('GET', '/stats/screensets?from=2026-02-30', { token: await tokenFor('crm') });
    expect(bad).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
  });

  it('shows operators a page of charts, in their language and direction, once their address is verified', async () => {
    // Whoever registers an operator's address first is not an operator until the address is proven.
    expect((await alice.browser.navigate(`${server.issuer}/stats`)).status).toBe(403);
    const [verify] = (await server.linksSentTo(alice.email)).filter((l) => l.includes('/verify-email'));
    expect((await new HttpBrowser().navigate(verify!)).status).toBe(200);

    const page = await alice.browser.navigate(`${server.issuer}/stats`);
    expect(page.status).toBe(200);
    expect(page.html).toContain('API test set');
    expect(page.html).toContain('How do you brew?');
    expect(page.html).toMatch(/<svg[^>]*role="img"/);
    expect(page.html).toMatch(/<meter min="0" max="1" value="1"/);
    expect(page.html).not.toMatch(/\sstyle=/);
    const firstBar = (html: string) => Number(/<rect x="([\d.]+)"/.exec(html)![1]);
    const arabic = await alice.browser.navigate(`${server.issuer}/stats?ui_locales=ar`);
    expect(arabic.html).toContain('<html lang="ar" dir="rtl">');
    expect(arabic.html).toContain('مجموعة اختبار');
    // The first day is drawn at the start of the reading direction: the right in Arabic.
    expect(firstBar(page.html)).toBeLessThan(20);
    expect(firstBar(arabic.html)).toBeGreaterThan(580);

    // A period that cannot be shown says why, rather than blaming the server.
    const reversed = await alice.browser.navigate(`${server.issuer}/stats?from=2026-03-01&to=2026-01-01`);
    expect(reversed.status).toBe(400);
    expect(reversed.html).toContain('This period cannot be shown: use dates such as 2026-01-31, a start on or before the end, and at most 366 days.');
  });

  it('refuses the page to other users and sends signed-out visitors to sign in', async () => {
    const other = await carol.browser.navigate(`${server.issuer}/stats`);
    expect(other.status).toBe(403);
    const signedOut = await new HttpBrowser().request(`${server.issuer}/stats`);
    expect(signedOut.status).toBe(303);
    expect(signedOut.headers.get('location')).toBe('/account/login?return=%2Fstats');
  });
});

describe('deleting an account', () => {
  it('deletes with accounts:write, then the account is gone', async () => {
    const token = await tokenFor('crm');
    expect((await call('DELETE', `/accounts/${carol.sub}`, { token })).status).toBe(204);
    expect((await call('GET', `/accounts/${carol.sub}`, { token })).status).toBe(404);
    expect((await call('DELETE', `/accounts/${carol.sub}`, { token })).status).toBe(404);
    const events = await server.parley.storage.db.selectFrom('outbox_events').select('type').where('account_id', '=', carol.sub).execute();
    expect(events.map((e) => e.type)).toContain('account.deleted');
  });
});

describe('event replay', () => {
  // The full path (dead letters after a down receiver, then replay) is in webhooks-server.test.ts.
  it('lists no dead events and replays nothing when every delivery went through', async () => {
    const token = await tokenFor('crm');
    expect(await call('GET', '/events/dead', { token })).toMatchObject({ status: 200, body: { events: [] } });
    expect(await call('POST', '/events/replay', { token, body: { ids: ['no-such-event'] } })).toMatchObject({ status: 200, body: { replayed: 0 } });
    expect((await call('POST', '/events/replay', { token, body: { ids: [] } })).status).toBe(400);
  });
});

describe('importing accounts', () => {
  const record = (n: string, extra: Record<string, unknown> = {}) => ({
    external_id: `api-import-${tag}-${n}`, email: `api-import-${tag}-${n}@example.com`, ...extra,
  });
  const batch = [
    record('1', {
      password: '$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a',
      answers: [{ question_id: BREW, value: 'filter', answered_at: '2022-03-01T10:00:00Z', purpose: 'personalization' }],
      consents: [{ purpose: 'personalization', version: 1, action: 'granted', at: '2022-03-01T10:00:00Z' }],
    }),
    record('2', { email: 'not an address' }),
    'not an object',
    record('4', { answers: [{ question_id: 'nowhere', value: 'x', answered_at: '2022-03-01T10:00:00Z', purpose: 'personalization' }] }),
  ];

  it('writes each good record, answers every record with its index and the reason it failed, and changes nothing the second time', async () => {
    const token = await tokenFor('crm', 'accounts:import');
    const first = await call('POST', '/accounts/import', { token, body: { records: batch } });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ dry_run: false, counts: { created: 1, updated: 0, unchanged: 0, failed: 3 } });
    const results = first.body.results as { index: number; outcome: string; account_id?: string; error?: string }[];
    expect(results.map((r) => [r.index, r.outcome])).toEqual([[0, 'created'], [1, 'failed'], [2, 'failed'], [3, 'failed']]);
    expect(results[1]!.error).toBe('email: not a valid email address');
    expect(results[2]!.error).toBe('expected a JSON object (one account)');
    expect(results[3]!.error).toBe('answers[0].question_id: no screen-set asks "nowhere"');

    const { db } = server.parley.storage;
    const account = await db.selectFrom('accounts').select(['id', 'password_hash']).where('email', '=', record('1').email).executeTakeFirstOrThrow();
    expect(account).toEqual({ id: results[0]!.account_id, password_hash: expect.stringMatching(/^\$foreign\$2y\$/) });
    expect(await db.selectFrom('answer_history').select(['source', 'recorded_at']).where('account_id', '=', account.id).execute())
      .toEqual([{ source: 'import', recorded_at: new Date('2022-03-01T10:00:00Z') }]);
    expect(await db.selectFrom('outbox_events').select('type').where('account_id', '=', account.id).execute()).toEqual([]);

    const again = await call('POST', '/accounts/import', { token, body: { records: batch } });
    expect(again.body.counts).toEqual({ created: 0, updated: 0, unchanged: 1, failed: 3 });
    const runs = await db.selectFrom('outbox_events').select('payload').where('type', '=', 'account.imported').orderBy('seq').execute();
    expect(runs.at(-1)!.payload).toMatchObject({ source: 'api', format: 'parley', unchanged: 1, failed: 3 });
  });

  it('writes nothing on a dry run', async () => {
    const token = await tokenFor('crm', 'accounts:import');
    const dry = await call('POST', '/accounts/import', { token, body: { records: [record('dry')], dry_run: true } });
    expect(dry.body).toMatchObject({ dry_run: true, counts: { created: 1 } });
    expect(dry.body.results).toEqual([{ index: 0, outcome: 'created' }]);
    expect(await server.parley.storage.db.selectFrom('accounts').select('id').where('email', '=', record('dry').email).execute()).toEqual([]);
  });

  it('refuses a malformed body or more than 1,000 records with 400 and a clear message, and a token without the scope with 403', async () => {
    const token = await tokenFor('crm', 'accounts:import');
    const tooMany = await call('POST', '/accounts/import', { token, body: { records: Array.from({ length: 1001 }, (_, i) => record(`many-${i}`)) } });
    expect(tooMany).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
    expect(tooMany.body.error_description).toMatch(/records: at most 1000 records per request/);
    expect(await server.parley.storage.db.selectFrom('accounts').select('id').where('email', '=', record('many-0').email).execute()).toEqual([]);
    expect((await call('POST', '/accounts/import', { token, body: '{"records": [' })).status).toBe(400);
    expect((await call('POST', '/accounts/import', { token, body: { records: [] } })).body.error_description).toMatch(/records: send at least one record/);
    expect((await call('POST', '/accounts/import', { token, body: { users: [] } })).status).toBe(400);
    const reader = await call('POST', '/accounts/import', { token: await tokenFor('reader', 'accounts:read'), body: { records: [record('x')] } });
    expect(reader).toMatchObject({ status: 403, body: { error: 'insufficient_scope' } });
  });
});

describe('the OpenAPI document', () => {
  it('describes the security scheme with the token URL and every scope', async () => {
    const doc = await openApi();
    expect(doc.openapi).toBe('3.1.0');
    const scheme = ((doc.components as Json).securitySchemes as Json).oauth2 as { flows: { clientCredentials: { tokenUrl: string; scopes: Json } } };
    expect(scheme.flows.clientCredentials.tokenUrl).toBe(`${server.issuer}/token`);
    expect(Object.keys(scheme.flows.clientCredentials.scopes).sort()).toEqual([...API_SCOPES].sort());
  });

  it('lists exactly the routes the API router registers', async () => {
    const doc = await openApi();
    const documented = Object.entries(doc.paths as Record<string, Json>)
      .flatMap(([p, operations]) => Object.keys(operations).map((method) => `${method.toUpperCase()} /api/v1${routerPath(p)}`)).sort();
    // The router as the server builds it; its dependencies are not called while routes are listed.
    const router = apiRoutes({ config: server.config, openApi: () => doc } as never);
    const registered = router.stack
      .filter((layer) => !String(layer.path).endsWith('{/*rest}'))
      .flatMap((layer) => layer.methods.filter((m) => m !== 'HEAD').map((m) => `${m} ${layer.path}`)).sort();
    expect(registered).toEqual(documented);
  });

  it('answers in JSON for anything else under /api/v1', async () => {
    const missing = await call('GET', '/nothing/here', { token: await tokenFor('crm') });
    expect(missing).toMatchObject({ status: 404, body: { error: 'not_found' } });
    const method = await call('PUT', `/accounts/${alice.sub}`, { token: await tokenFor('crm') });
    expect(method.status).toBe(405);
    expect(method.headers.get('allow')).toContain('DELETE');
  });

  it('was exercised in full by this file, every response valid against it', async () => {
    const doc = await openApi();
    const all = Object.entries(doc.paths as Record<string, Json>).flatMap(([p, operations]) => Object.keys(operations).map((m) => `${m.toUpperCase()} ${p}`));
    // The document itself is fetched directly, not through call().
    expect(all.filter((op) => !exercised.has(op) && op !== 'GET /openapi.json')).toEqual([]);
  });
});

/** A signed-in user's access token from a sign-in of the SPA: opaque, for the userinfo endpoint. */
async function signInAgain(user: User) {
  const request = await authorizationRequest(spa, { scope: 'openid' });
  const callback = await user.browser.navigate(request.url, {}, spa.redirectUri);
  return exchange(spa, request, callback.url);
}
