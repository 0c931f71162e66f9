import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emailProblem, normalizeEmail } from '../../src/accounts/email.ts';
import { nameProblem } from '../../src/accounts/names.ts';
import { findForm, HttpBrowser, type FormFields, type Page } from '../support/browser.ts';
import { ownDatabase } from '../support/database.ts';
import { appClient, authorizationRequest, oidc, PASSWORD, register, uniqueEmail, type AppClient } from '../support/oidc-app.ts';
import { startTestServer, TEST_CLIENTS, type TestServer } from '../support/server.ts';

// Generated input thrown at every form and every API body Parley has: NUL and other control
// characters, invisible and direction-changing characters, lone surrogates, very long and
// multi-byte text, markup and quotes, alone or inside otherwise valid values. Whatever comes in,
// the answer is never a 5xx, and input refused as a mistake leaves every table as it was.
//
// One server and one database of the file's own (its tables are fingerprinted whole), a bounded
// number of runs per form: fast-check prints the seed and the smallest failing input if one fails.

const RUNS = 20;

const screensetsDir = mkdtempSync(path.join(os.tmpdir(), 'parley-fuzz-screensets-'));
writeFileSync(path.join(screensetsDir, 'fuzz.yaml'), `
id: fuzz
title: { en: Every kind of question }
trigger: [after_registration]
questions:
  - { id: nickname, type: text, purpose: personalization, label: { en: Nickname }, max_length: 40 }
  - id: drinks
    type: multi_choice
    purpose: personalization
    label: { en: Drinks }
    options: [{ value: coffee, label: { en: Coffee } }, { value: tea, label: { en: Tea } }]
  - { id: cups, type: number, purpose: personalization, label: { en: Cups }, min: 0, max: 20, step: 1 }
  - { id: born, type: date, purpose: offers, label: { en: Born }, max: today }
  - { id: tastings, type: boolean, purpose: offers, label: { en: Tastings } }
  - { id: mood, type: scale, purpose: personalization, label: { en: Mood }, min: 1, max: 5, min_label: { en: Low }, max_label: { en: High } }
  - id: roast
    type: single_choice
    purpose: personalization
    label: { en: Roast }
    options: [{ value: light, label: { en: Light } }, { value: dark, label: { en: Dark } }]
`);
const QUESTIONS = ['nickname', 'drinks', 'cups', 'born', 'tastings', 'mood', 'roast'];
const VALID_ANSWERS: FormFields = {
  'answer.nickname': 'Ann', 'answer.drinks': ['tea'], 'answer.cups': '2', 'answer.born': '1990-04-01',
  'answer.tastings': 'true', 'answer.mood': '3', 'answer.roast': 'dark', consent: ['personalization', 'offers'],
};

const SECRET = 'fuzz-api-client-secret-0123456789';

let server: TestServer;
let drop: () => Promise<void> = async () => {};
let web: AppClient;
let spa: AppClient;
let apiToken: string;
/** Signed in through the SPA a moment ago, every question answered: the preference center's user. */
let user: { browser: HttpBrowser; email: string; sub: string };

beforeAll(async () => {
  const own = await ownDatabase('parley_fuzz');
  drop = own.drop;
  server = await startTestServer({
    database: { url: own.backend.url },
    screensets: { dir: screensetsDir },
    profiling: { max_questions_per_session: 10 },
    // Thousands of failed sign-ins from one address: throttled ones would all take the same short path.
    throttle: { ip: { free_attempts: 1_000_000 }, account: { free_attempts: 1_000_000 } },
    clients: [...TEST_CLIENTS('${issuer}'), {
      client_id: 'fuzz-api', client_secret: SECRET, grant_types: ['client_credentials'], purposes: ['personalization', 'offers'],
      scope: 'accounts:read accounts:export accounts:write segments:read stats:read events:replay',
    }],
  });
  web = await appClient(server);
  spa = await appClient(server, 'spa');
  const apiClient = await oidc.discovery(new URL(server.issuer), 'fuzz-api', SECRET, undefined, { execute: [oidc.allowInsecureRequests] });
  apiToken = (await oidc.clientCredentialsGrant(apiClient, { scope: 'accounts:read accounts:export accounts:write segments:read stats:read events:replay' })).access_token;

  const browser = new HttpBrowser();
  const email = uniqueEmail('fuzz');
  const request = await authorizationRequest(spa, { scope: 'openid email profile preferences' });
  const screen = await register(browser, await browser.navigate(request.url), email, spa.redirectUri);
  const callback = await browser.submit(screen, '/profile', VALID_ANSWERS, spa.redirectUri);
  const code = new URL(callback.url).searchParams.get('code');
  expect(code).toBeTruthy();
  const account = await server.parley.storage.db.selectFrom('accounts').select('id').where('email', '=', email).executeTakeFirstOrThrow();
  user = { browser, email, sub: account.id };
  expect(await server.parley.storage.db.selectFrom('answers').select('question_id').where('account_id', '=', user.sub).execute()).toHaveLength(QUESTIONS.length);
}, 120_000);

afterAll(async () => {
  await server?.close();
  await drop();
});

// ---- What goes in -------------------------------------------------------------------------------

const SPECIAL = [
  '\u0000', '\u0001', '\u0007', '\t', '\n', '\r', '\u007F', '\u0085', '\u009B', // controls
  '\u00AD', '\u034F', '\u061C', '\u115F', '\u180E', '\u200B', '\u200C', '\u200D', '\u200E', '\u200F', // invisible
  '\u202A', '\u202B', '\u202C', '\u202D', '\u202E', '\u2066', '\u2067', '\u2068', '\u2069', // embeddings, overrides, isolates
  '\u2028', '\u2029', '\u2060', '\u3164', '\uFE0F', '\uFEFF', '\uFFFD', '\uFFFF', '\u{E0001}', '\u{E0041}',
  '\uD800', '\uDFFF', // lone surrogates
  '\u0301', 'é', 'ß', 'İ', 'ﬃ', '東', '\u{1F469}\u200D\u{1F4BB}', '\u{10FFFF}', // combining, case-folding, wide, emoji
  '%00', '\\u0000', '\\', "'", '"', '<script>', '&amp;', '{{x}}', '${x}', '@', '.', ' ', '+', '%', '?', '#', '/', '..',
];
const piece = fc.oneof(
  // NUL on its own: PostgreSQL refuses it in text and jsonb, so it finds every path to the database.
  { weight: 1, arbitrary: fc.constant('\u0000') },
  { weight: 3, arbitrary: fc.constantFrom(...SPECIAL) },
  { weight: 2, arbitrary: fc.string({ maxLength: 6 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 6 }) },
);
/** Han letters, each different from the last: three octets each, and nothing a database can compress. */
const incompressible = (n: number) => Array.from({ length: n }, (_, i) => String.fromCodePoint(0x4e00 + ((i * 7919) % 20000))).join('');
/** Text long enough to pass every limit: repeated, or incompressible. */
const long = fc.oneof(
  fc.tuple(fc.constantFrom('a', 'é', '東', '\u{1F600}', '\u0000', '\u200B'), fc.integer({ min: 190, max: 2600 })).map(([c, n]) => c.repeat(n)),
  fc.integer({ min: 60, max: 1600 }).map(incompressible),
);
const weird = fc.oneof(
  { weight: 4, arbitrary: fc.array(piece, { minLength: 1, maxLength: 8 }).map((parts) => parts.join('')) },
  { weight: 1, arbitrary: long },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', 'true', 'yes', '0', '-1', '1e309', 'NaN', 'null', '[]', '{}') },
);
/**
 * A path segment: percent-encoded (lone surrogates become U+FFFD, as in any URL), or with raw
 * escapes that are not UTF-8 at all.
 */
const segmentOf = (text: string) => encodeURIComponent(text.replace(/\p{Cs}/gu, '\uFFFD'));
const rawEscape = fc.constantFrom('%00', '%FF', '%ED%A0%80', '%C0%AF', '%', '%zz', '..%2F..', '%E2%80%8B');
const rawSegment = fc.oneof(weird.map(segmentOf), rawEscape);

/** Something shaped like an address, with weirdness inside. */
const address = fc.oneof(
  weird,
  fc.tuple(weird, weird).map(([local, domain]) => `${local}@${domain}.example`),
  fc.tuple(fc.constantFrom('ann', 'look', 'x'), piece, fc.constantFrom('@example.com', '@EXAMPLE.com', '@例え.jp')).map(([l, p, d]) => `${l}${p}${d}`),
  fc.tuple(long, fc.constantFrom('@example.com', '')).map(([l, d]) => `${l}${d}`),
);
/** Any JSON value, strings drawn from the weird ones. */
const json = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small' },
    weird, fc.integer(), fc.double(), fc.boolean(), fc.constant(null),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.oneof(weird, fc.constantFrom('all', 'any', 'not', 'answer', 'in', 'answered_within', 'answered', 'not_answered', 'consent', 'state', 'ids', 'endpoint')), tie('value'), { maxKeys: 4 })),
})).value;
/** Segment conditions that pass the shape check, with weird values where values go. */
const condition = fc.oneof(
  fc.record({ answer: fc.oneof(fc.constantFrom(...QUESTIONS), weird), in: fc.array(fc.oneof(weird, fc.integer(), fc.boolean()), { minLength: 1, maxLength: 3 }) }),
  fc.record({ answer: fc.constantFrom(...QUESTIONS), answered_within: weird }),
  fc.record({ answered: fc.oneof(fc.constantFrom(...QUESTIONS), weird) }),
  fc.record({ consent: weird, state: fc.constantFrom('granted', 'withdrawn', 'none', 'outdated') }),
);

// ---- What must not change -----------------------------------------------------------------------

const DOMAIN_TABLES = [
  'accounts', 'email_tokens', 'login_throttle', 'answers', 'answer_history', 'prompt_log', 'rewards',
  'consent_ledger', 'communication_ledger', 'terms_acceptances', 'outbox_events', 'deliveries', 'webhook_endpoints', 'signing_keys',
] as const;

/**
 * Every row of every domain table, hashed; and how many OIDC artifacts of each kind exist. Mail
 * queued before is sent first: the server's mail lane would otherwise record its sending (in
 * deliveries and the outbox) while a request under test runs.
 */
async function fingerprint(): Promise<Record<string, string>> {
  await server.deliverMail();
  const db = server.parley.storage.db;
  const parts = DOMAIN_TABLES.map((table) => sql<{ t: string; f: string }>`
    select ${table}::text as t, count(*)::text || ':' || md5(coalesce(string_agg(md5(x::text), '' order by md5(x::text)), '')) as f
    from ${sql.table(table)} x`);
  const { rows } = await sql<{ t: string; f: string }>`${sql.join(parts, sql` union all `)}
    union all select 'oidc:' || model as t, count(*)::text as f from oidc_payloads group by model`.execute(db);
  return Object.fromEntries(rows.map((r) => [r.t, r.f]));
}

function changedTables(before: Record<string, string>, after: Record<string, string>): string[] {
  return [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((t) => before[t] !== after[t]).sort();
}

/**
 * Runs one request and checks the rule: never a 5xx; refused as bad input (4xx) changes nothing but
 * what `mayChangeWhenRefused` names for that status; accepted input is checked by `accepted`.
 */
async function expectSafe(
  send: () => Promise<{ status: number; detail?: string }>,
  options: { mayChangeWhenRefused?: (status: number) => string[]; accepted?: (status: number, changed: string[]) => Promise<void> | void } = {},
): Promise<void> {
  const before = await fingerprint();
  const { status, detail } = await send();
  expect(status, `answered ${status}${detail ? `: ${detail.slice(0, 300)}` : ''}`).toBeLessThan(500);
  const changed = changedTables(before, await fingerprint());
  if (status >= 400) {
    const allowed = options.mayChangeWhenRefused?.(status) ?? [];
    expect(changed.filter((t) => !allowed.includes(t)), `refused with ${status}, yet stored`).toEqual([]);
  } else {
    await options.accepted?.(status, changed);
  }
}

const pageResult = (page: Page) => ({ status: page.status, detail: page.status >= 500 ? page.html : undefined });

// ---- The sign-in pages --------------------------------------------------------------------------

async function loginPage(): Promise<{ browser: HttpBrowser; page: Page }> {
  const browser = new HttpBrowser();
  return { browser, page: await browser.navigate((await authorizationRequest(web)).url) };
}

describe('the sign-in pages', () => {
  it('sign-in: never a 5xx; a refused address stores nothing, a wrong password only its throttle count', async () => {
    const { browser, page } = await loginPage();
    await fc.assert(fc.asyncProperty(address, weird, async (email, password) => {
      await expectSafe(async () => pageResult(await browser.submit(page, '/login', { email, password })), {
        mayChangeWhenRefused: (status) => (status === 401 ? ['login_throttle'] : []),
      });
    }), { numRuns: RUNS * 2, examples: [['ann\u0000@example.com', PASSWORD], [`${incompressible(1500)}@example.com`, PASSWORD]] });
  });

  it('registration: never a 5xx; refused input stores nothing; what is stored keeps to the rules', async () => {
    // Often two of the three fields valid, so that the third is the one checked.
    const freshAddress = fc.uuid().map((id) => `fuzz-${id}@example.com`);
    const fields = fc.oneof(
      fc.record({ email: address, password: fc.constant(PASSWORD), name: fc.constant('Ann') }),
      fc.record({ email: freshAddress, password: fc.constant(PASSWORD), name: weird }),
      fc.record({ email: freshAddress, password: weird, name: fc.constant('Ann') }),
      fc.record({ email: address, password: weird, name: weird }),
    );
    await fc.assert(fc.asyncProperty(fields, async ({ email, password, name }) => {
      const { browser, page } = await loginPage();
      const form = await browser.navigate(new URL(/href="([^"]*\/register)"/.exec(page.html)![1]!, page.url).href);
      await expectSafe(async () => pageResult(await browser.submit(form, '/register', { email, password, name }, web.redirectUri)), {
        accepted: async () => {
          const stored = await server.parley.storage.db.selectFrom('accounts').select(['email', 'name']).where('email', '=', normalizeEmail(email)).executeTakeFirst();
          if (!stored) return;
          expect(emailProblem(stored.email)).toBeUndefined();
          if (stored.name !== null) expect(nameProblem(stored.name)).toBeUndefined();
        },
      });
    }), { numRuns: RUNS, examples: [[{ email: `fuzz-${crypto.randomUUID()}@example.com`, password: PASSWORD, name: 'Ann\u0000' }]] });
  });

  it('password reset: never a 5xx, and nothing stored for an address without an account', async () => {
    const browser = new HttpBrowser();
    const forgot = await browser.navigate(`${server.issuer}/forgot-password`);
    await fc.assert(fc.asyncProperty(address, async (email) => {
      await expectSafe(async () => pageResult(await browser.submit(forgot, '/forgot-password', { email })), {
        accepted: (_status, changed) => { expect(changed).toEqual([]); },
      });
    }), { numRuns: RUNS });
    const reset = (await browser.navigate(`${server.issuer}/forgot-password`));
    const { hidden } = findForm(reset.html, '/forgot-password');
    await fc.assert(fc.asyncProperty(weird, weird, async (token, password) => {
      await expectSafe(async () => pageResult(await browser.navigate(`${server.issuer}/reset-password`, { form: { csrf: hidden.csrf!, token, password } })));
    }), { numRuns: RUNS });
  });

  it('emailed links: never a 5xx, nothing stored, whatever the token', async () => {
    const token = fc.oneof(weird.map((text) => new URLSearchParams({ token: text }).toString()), rawSegment.map((raw) => `token=${raw}`));
    await fc.assert(fc.asyncProperty(token, fc.constantFrom('/verify-email', '/reset-password', '/account/email/confirm'), async (query, route) => {
      await expectSafe(async () => pageResult(await new HttpBrowser().navigate(`${server.issuer}${route}?${query}`)), {
        accepted: (_status, changed) => { expect(changed).toEqual([]); },
      });
    }), { numRuns: RUNS });
  });

  it('the question screen: never a 5xx, and refused answers store nothing', async () => {
    let screen: { browser: HttpBrowser; page: Page } | undefined;
    const answers = fc.dictionary(fc.constantFrom(...QUESTIONS.map((q) => `answer.${q}`), 'decline', 'consent', 'csrf'), fc.array(weird, { minLength: 1, maxLength: 2 }), { maxKeys: 4 });
    await fc.assert(fc.asyncProperty(answers, async (fields) => {
      if (!screen) {
        const browser = new HttpBrowser();
        const request = await authorizationRequest(spa, { scope: 'openid email profile preferences' });
        screen = { browser, page: await register(browser, await browser.navigate(request.url), uniqueEmail('screen'), spa.redirectUri) };
      }
      const { browser, page } = screen;
      const form = findForm(page.html, '/profile');
      const action = new URL(form.action.replaceAll('&amp;', '&'), page.url).href;
      await expectSafe(async () => {
        const answered = await browser.navigate(action, { form: { csrf: form.hidden.csrf!, ...fields } }, spa.redirectUri);
        // Accepted: this sign-in is over; the next run starts another.
        if (answered.status < 400) screen = undefined;
        return pageResult(answered);
      });
    }), { numRuns: RUNS });
  });
});

// ---- The preference center ------------------------------------------------------------------------

describe('the preference center', () => {
  const post = async (action: string, fields: FormFields) => {
    const page = await user.browser.navigate(`${server.issuer}/account`);
    const { hidden } = findForm(page.html, '/account/communication');
    return user.browser.navigate(`${server.issuer}${action}`, { form: { ...hidden, ...fields } });
  };
  /** A path segment, and the text it names (a form field carries the question id in its name too). */
  const segment = fc.oneof(fc.constantFrom(...QUESTIONS, 'personalization', 'offers', 'spa'), weird, rawEscape)
    .map((text) => ({ text, path: /^%|%[0-9A-F]{2}/i.test(text) ? text : segmentOf(text) }));

  it('answers, consents, communication, apps: never a 5xx, and refused input stores nothing', async () => {
    const action = fc.oneof(
      fc.tuple(segment, fc.array(weird, { maxLength: 3 })).map(([q, values]) => [`/account/answers/${q.path}`, { [`answer.${q.text}`]: values }] as const),
      segment.map((q) => [`/account/answers/${q.path}/delete`, {}] as const),
      fc.tuple(segment, weird, fc.oneof(weird, fc.constant('yes'))).map(([p, a, d]) => [`/account/consents/${p.path}`, { action: a, delete_answers: d }] as const),
      fc.array(weird, { maxLength: 4 }).map((comm) => ['/account/communication', { comm }] as const),
      segment.map((c) => [`/account/apps/${c.path}/revoke`, {}] as const),
      weird.map((newEmail) => ['/account/email', { new_email: newEmail }] as const),
      weird.filter((c) => c !== 'yes').map((confirm) => ['/account/delete', { confirm }] as const),
    );
    await fc.assert(fc.asyncProperty(action, async ([route, fields]) => {
      await expectSafe(async () => pageResult(await post(route, fields)));
    }), { numRuns: RUNS * 3 });
    // The user is still there, signed in: nothing above deleted or signed out the account.
    expect((await user.browser.navigate(`${server.issuer}/account`)).html).toContain(user.email);
  });
});

// ---- The management API ---------------------------------------------------------------------------

describe('the management API', () => {
  async function call(method: string, pathAndQuery: string, body?: unknown) {
    const response = await fetch(`${server.issuer}/api/v1${pathAndQuery}`, {
      method,
      headers: { authorization: `Bearer ${apiToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await response.text();
    // Every answer of the API is JSON; Node itself answers a request line too long for it (431) before the API sees it.
    if (response.status !== 204 && response.status !== 431) expect(() => JSON.parse(text), `${response.status} ${text}`).not.toThrow();
    return { status: response.status, detail: text };
  }
  const digest = (value: unknown) => createHash('sha256').update(JSON.stringify(value)).digest('base64url').slice(0, 16);
  const cursorFor = (value: unknown, after: unknown) => Buffer.from(JSON.stringify(['c1', digest(value), after])).toString('base64url');

  it('segments: never a 5xx, nothing stored, whatever the condition, the limit or the cursor', async () => {
    // A condition that holds for the signed-up user, so that paging goes as far as reading the cursor.
    const answerable = fc.constantFrom(...QUESTIONS).map((answered) => ({ answered }));
    // Mostly a limit that holds, so that a weird cursor is the thing checked.
    const limit = fc.option(fc.oneof(fc.constantFrom('1', '2', '1000'), weird), { freq: 2 });
    const cursor = fc.option(fc.oneof(weird, weird.map((after) => ({ after }))), { freq: 4 });
    await fc.assert(fc.asyncProperty(fc.oneof(answerable, condition, json), limit, cursor, async (body, limit, cursor) => {
      const cursorText = cursor === null ? undefined : typeof cursor === 'string' ? cursor : cursorFor(body, cursor.after);
      const query = new URLSearchParams({ ...(limit === null ? {} : { limit }), ...(cursorText === undefined ? {} : { cursor: cursorText }) });
      await expectSafe(() => call('POST', '/segments/count', body));
      await expectSafe(() => call('POST', `/segments/accounts?${query}`, body));
    }), {
      numRuns: RUNS * 2,
      // Found before: half a surrogate pair as a text answer; a NUL in a hand-made cursor.
      examples: [[{ answer: 'nickname', in: ['\uD800'] }, null, null], [{ answered: 'nickname' }, null, { after: 'a\u0000' }]],
    });
  });

  it('accounts, statistics and dead events: never a 5xx, nothing stored', async () => {
    const request = fc.oneof(
      rawSegment.map((id) => ['GET', `/accounts/${id}`] as const),
      rawSegment.map((id) => ['GET', `/accounts/${id}/export`] as const),
      rawSegment.filter((id) => id !== user.sub).map((id) => ['DELETE', `/accounts/${id}`] as const),
      fc.tuple(weird, weird).map(([from, to]) => ['GET', `/stats/screensets?${new URLSearchParams({ from, to })}`] as const),
      weird.map((limit) => ['GET', `/events/dead?${new URLSearchParams({ limit })}`] as const),
    );
    await fc.assert(fc.asyncProperty(request, async ([method, route]) => {
      await expectSafe(() => call(method, route));
    }), { numRuns: RUNS * 2 });
    const replay = fc.oneof(json, fc.record({ ids: fc.array(weird, { minLength: 1, maxLength: 3 }) }), fc.record({ all: fc.constant(true), endpoint: weird }));
    await fc.assert(fc.asyncProperty(replay, async (body) => {
      await expectSafe(() => call('POST', '/events/replay', body), { accepted: (_status, changed) => { expect(changed).toEqual([]); } });
    }), { numRuns: RUNS, examples: [[{ ids: ['\u0000'] }], [{ all: true, endpoint: '\u0000' }]] });
  });
});

// ---- The provider's endpoints ---------------------------------------------------------------------

describe('the OpenID Connect endpoints', () => {
  const PARAMS = ['state', 'nonce', 'login_hint', 'ui_locales', 'claims_locales', 'acr_values', 'prompt', 'max_age', 'display',
    'scope', 'response_mode', 'code_challenge', 'id_token_hint', 'redirect_uri', 'client_id', 'resource', 'claims', 'request', 'request_uri'];

  it('authorization requests: never a 5xx, and a refused one stores no interaction', async () => {
    await fc.assert(fc.asyncProperty(fc.dictionary(fc.constantFrom(...PARAMS), weird, { minKeys: 1, maxKeys: 2 }), async (params) => {
      const url = new URL((await authorizationRequest(web)).url);
      for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
      await expectSafe(async () => {
        const response = await new HttpBrowser().request(url.href);
        const location = response.headers.get('location') ?? '';
        // Sent on to sign in: the request was accepted. Anything else is a refusal, wherever it is shown.
        const refused = !location.includes('/interaction/');
        return { status: refused && response.status < 400 ? 400 : response.status, detail: response.status >= 500 ? await response.text() : undefined };
      });
    }), { numRuns: RUNS * 2, examples: [[{ state: '\u0000' }], [{ client_id: 'web-app\u0000' }], [{ claims: '{"userinfo":{"\u0000":null}}' }]] });
  });

  it('token, introspection, revocation, userinfo and logout: never a 5xx, nothing stored', async () => {
    const basic = `Basic ${Buffer.from('web-app:web-app-secret-for-tests').toString('base64')}`;
    const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
    const request = fc.oneof(
      fc.record({ grant_type: fc.oneof(fc.constantFrom('authorization_code', 'refresh_token', 'client_credentials'), weird), code: weird, redirect_uri: weird, code_verifier: weird, refresh_token: weird })
        .map((fields) => ['/token', fields] as const),
      fc.record({ token: weird, token_type_hint: weird }).map((fields) => ['/token/introspection', fields] as const),
      fc.record({ token: weird, token_type_hint: weird }).map((fields) => ['/token/revocation', fields] as const),
      fc.record({ access_token: weird }).map((fields) => ['/me', fields] as const),
    );
    await fc.assert(fc.asyncProperty(request, async ([route, fields]) => {
      await expectSafe(async () => {
        // Userinfo takes the access token alone; the other endpoints authenticate the client.
        const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', ...(route === '/me' ? {} : { authorization: basic }) };
        const response = await fetch(`${server.issuer}${route}`, { method: 'POST', headers, body: form(fields) });
        return { status: response.status, detail: await response.text() };
      });
    }), { numRuns: RUNS * 2, examples: [[['/me', { access_token: '\u0000' }]], [['/token', { grant_type: 'refresh_token', refresh_token: '\u0000', code: '', redirect_uri: '', code_verifier: '' }]]] });

    const logout = fc.dictionary(fc.constantFrom('id_token_hint', 'post_logout_redirect_uri', 'state', 'ui_locales', 'client_id', 'logout_hint'), weird, { maxKeys: 3 });
    await fc.assert(fc.asyncProperty(logout, async (params) => {
      await expectSafe(async () => {
        const response = await user.browser.request(`${server.issuer}/session/end?${new URLSearchParams(params)}`);
        return { status: response.status, detail: await response.text() };
      }, { accepted: (_status, changed) => { expect(changed.filter((t) => !t.startsWith('oidc:'))).toEqual([]); } });
    }), { numRuns: RUNS, examples: [[{ state: '\u0000' }]] });
  });
});
