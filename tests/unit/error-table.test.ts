import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import Koa, { type Context } from 'koa';
import { describe, expect, it } from 'vitest';
import { ACCOUNT_ERROR_CODES, AccountError, AccountValidationError } from '../../src/accounts/errors.ts';
import { CREDENTIAL_ERROR_CODES, CredentialError } from '../../src/accounts/credential-errors.ts';
import { FOREIGN_HASH_ERROR_CODES } from '../../src/accounts/foreign-hashes.ts';
import { CONFIG_ERROR_CODES, loadConfig } from '../../src/config/load.ts';
import { TERMS_ERROR_CODES } from '../../src/consent/terms.ts';
import type { ErrorCodes, ErrorModule } from '../../src/errors.ts';
import { EVENTS_ERROR_CODES } from '../../src/events/dead-letters.ts';
import { UPSTREAM_ERROR_CODES, UpstreamError } from '../../src/federation/errors.ts';
import { IDENTITY_ERROR_CODES } from '../../src/federation/identities.ts';
import { createPageResponder, type RequestState } from '../../src/http/context.ts';
import {
  classify, ERROR_TABLE, errorMessage, fieldMessages, formErrors, problemBody, retryAfter, type Problem,
} from '../../src/http/errors.ts';
import { REQUEST_ERROR_CODES } from '../../src/http/request-errors.ts';
import { IMPORT_ERROR_CODES } from '../../src/import/run.ts';
import { API_TOKEN_ERROR_CODES } from '../../src/oidc/api-tokens.ts';
import { INTERACTION_ERROR_CODES, InteractionExpiredError } from '../../src/oidc/interactions.ts';
import { ANSWER_ERROR_CODES, validateAnswer } from '../../src/screensets/engine.ts';
import { screenSetSchema } from '../../src/screensets/format.ts';
import { SCREENSETS_ERROR_CODES } from '../../src/screensets/library.ts';
import { SEGMENT_ERROR_CODES } from '../../src/segments/query.ts';
import { STATS_ERROR_CODES, StatsRangeError } from '../../src/stats/screensets.ts';
import { STORAGE_ERROR_CODES } from '../../src/storage/errors.ts';
import { SealedValueError } from '../../src/storage/sealed.ts';
import { loadMessages, translate } from '../../src/views/i18n.ts';
import { createRenderer } from '../../src/views/render.ts';

// The one table from error codes to statuses and messages, checked from the modules' own code
// lists: a code added to a list fails to compile until the table has it, and fails here until
// every locale file has its message.

// Typed by the registry of modules, so a module that registers codes fails to compile here until
// its list is added.
const CODE_LISTS: { [M in ErrorModule]: readonly ErrorCodes[M][] } = {
  account: ACCOUNT_ERROR_CODES,
  credential: CREDENTIAL_ERROR_CODES,
  answer: ANSWER_ERROR_CODES,
  upstream: UPSTREAM_ERROR_CODES,
  identity: IDENTITY_ERROR_CODES,
  segment: SEGMENT_ERROR_CODES,
  stats: STATS_ERROR_CODES,
  events: EVENTS_ERROR_CODES,
  interaction: INTERACTION_ERROR_CODES,
  api_token: API_TOKEN_ERROR_CODES,
  request: REQUEST_ERROR_CODES,
  storage: STORAGE_ERROR_CODES,
  config: CONFIG_ERROR_CODES,
  screensets: SCREENSETS_ERROR_CODES,
  import: IMPORT_ERROR_CODES,
  foreign_hash: FOREIGN_HASH_ERROR_CODES,
  terms: TERMS_ERROR_CODES,
};

const CODES = (Object.entries(CODE_LISTS) as [ErrorModule, readonly string[]][])
  .flatMap(([module, codes]) => codes.map((code) => ({ module, code }) as Problem));
const name = (problem: Problem) => `${problem.module}.${problem.code}`;
const messages = loadMessages();
const LOCALES = Object.keys(messages);
const config = loadConfig({ env: {} });
// The values a code's message may take from the error itself (answers' bounds, the provider's words).
const SAMPLE_PARAMS = { min: 3, max: 4, step: 0.5, base: 1, max_length: 40, description: 'redirect_uri is not registered' };

describe('the error table', () => {
  it('has one entry for each code of each module\'s list, and no other', () => {
    expect(Object.keys(ERROR_TABLE).sort()).toEqual(Object.keys(CODE_LISTS).sort());
    for (const [module, codes] of Object.entries(CODE_LISTS)) {
      expect(new Set(codes).size, module).toBe(codes.length);
      expect(Object.keys(ERROR_TABLE[module as ErrorModule]).sort(), module).toEqual([...codes].sort());
    }
    expect(CODES.length).toBeGreaterThan(80);
  });

  it.each(LOCALES)('has the message of every code in %s', (locale) => {
    for (const problem of CODES) {
      const entry = ERROR_TABLE[problem.module][problem.code as never] as (typeof ERROR_TABLE)['account']['throttled'];
      for (const key of [entry.message, entry.minutesMessage].filter((k) => k !== undefined)) {
        expect(Object.keys(messages[locale]!), `${locale}: ${name(problem)} → ${key}`).toContain(key);
      }
    }
  });

  it.each(LOCALES)('fills in every value of every message in %s, waits in seconds and in minutes', (locale) => {
    const t = (key: string, vars?: Record<string, string | number>) => translate(locale, key, vars);
    for (const problem of CODES) {
      for (const retryAfterSeconds of [30, 900]) {
        const text = errorMessage(t, { ...problem, retryAfterSeconds, params: SAMPLE_PARAMS }, config);
        expect(text, `${locale}: ${name(problem)}`).not.toMatch(/[{}]/);
        expect(text.trim(), `${locale}: ${name(problem)}`).not.toBe('');
      }
    }
    const throttled = (seconds: number) => errorMessage(t, { module: 'account', code: 'throttled', retryAfterSeconds: seconds }, config);
    expect(throttled(30)).not.toBe(throttled(900));
  });

  it('takes the limits in force from the configuration and the wait from the error', () => {
    const en = (key: string, vars?: Record<string, string | number>) => translate('en', key, vars);
    const strict = { accounts: { ...config.accounts, password_min_length: 12 } };
    expect(errorMessage(en, new AccountError('password_too_short'), strict)).toBe('Use at least 12 characters.');
    expect(errorMessage(en, new AccountError('throttled', { retryAfterSeconds: 1.2 }), config)).toBe('Too many failed attempts. Try again in 2 seconds.');
    expect(errorMessage(en, new CredentialError('throttled', { retryAfterSeconds: 890 }), config)).toBe('Too many failed attempts. Try again in 15 minutes.');
    expect(errorMessage(en, new CredentialError('name_invalid', { params: { max: 64 } }), config)).toContain('1 to 64 characters');
  });

  it('never shows the words of an error that is Parley\'s to fix; every one from 500 up is such an error but one', () => {
    const exposedFailures = CODES.filter((p) => {
      const entry = ERROR_TABLE[p.module][p.code as never] as { status: number; expose: boolean };
      return entry.status >= 500 && entry.expose;
    }).map(name);
    // The API says which feature this server does not run; that is no secret.
    expect(exposedFailures).toEqual(['request.not_implemented']);

    const bug = classify(new TypeError('cannot read rows of undefined at /srv/parley/src/accounts/service.ts:42'));
    expect(bug).toMatchObject({ module: 'request', code: 'internal_error', status: 500 });
    expect(problemBody(bug, 'req-1')).toEqual({ error: 'server_error', error_description: 'Something went wrong on our side. Please try again. (request req-1)' });
    const unreadable = classify(new SealedValueError('signing key k1'));
    expect(unreadable).toMatchObject({ module: 'storage', code: 'sealed_value_unreadable', status: 500 });
    expect(JSON.stringify(problemBody(unreadable, 'req-2'))).not.toContain('k1');
    // An upstream's failure: the person reads what to do, the operator finds the details in the log.
    const upstream = classify(new UpstreamError('invalid_id_token', { provider: 'google', stage: 'token', reason: 'bad signature' }));
    expect(upstream.status).toBe(502);
    expect(JSON.stringify(problemBody(upstream, 'req-3'))).not.toMatch(/google|signature/);
  });

  it('shows the caller what is wrong with its request', () => {
    expect(problemBody(classify(new StatsRangeError('from must not be after to')), 'r')).toEqual({ error: 'invalid_request', error_description: 'from must not be after to' });
    expect(classify(new StatsRangeError('from must not be after to')).status).toBe(400);
  });

  it('answers an unreachable database with 503 and Retry-After, from the drivers\' own errors', () => {
    for (const error of [Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }), new Error('Connection terminated unexpectedly')]) {
      const failure = classify(error);
      expect(failure).toMatchObject({ module: 'storage', code: 'database_unavailable', status: 503 });
      expect(retryAfter(failure)).toBe('5');
      expect(problemBody(failure, 'r')).toEqual({ error: 'temporarily_unavailable', error_description: 'The service is temporarily unavailable. Please try again in a moment.' });
    }
  });

  it('gives every sign-in failure that could tell accounts or credentials apart one status and one message', () => {
    // Unknown address and wrong password are one code already (invalid_credentials); a passkey
    // that is unknown, unverified, of a used challenge or with a counter gone backwards read the same.
    const passkey = (['challenge_invalid', 'passkey_not_verified', 'passkey_unknown', 'passkey_counter_regressed'] as const)
      .map((code) => ERROR_TABLE.credential[code]);
    expect(new Set(passkey.map((e) => `${e.status} ${e.message}`)).size).toBe(1);
    expect(ERROR_TABLE.account.invalid_credentials).toMatchObject({ status: 401, message: 'error.invalid_credentials' });
  });

  it('places Koa\'s own refusals (ctx.throw) by their status, and the expired interaction', () => {
    const thrownBy = (status: number): unknown => {
      const req = new IncomingMessage(new Socket());
      const ctx = new Koa().createContext(req, new ServerResponse(req));
      try {
        ctx.throw(status);
      } catch (error) {
        return error;
      }
      throw new Error('ctx.throw returned');
    };
    expect(classify(thrownBy(404))).toMatchObject({ module: 'request', code: 'not_found', status: 404 });
    expect(classify(thrownBy(400))).toMatchObject({ module: 'request', code: 'bad_request', status: 400 });
    expect(classify(thrownBy(422))).toMatchObject({ module: 'request', code: 'bad_request', status: 400 });
    expect(classify(thrownBy(500))).toMatchObject({ module: 'request', code: 'internal_error', status: 500 });
    expect(classify(new InteractionExpiredError())).toMatchObject({ module: 'interaction', code: 'session_expired', status: 400 });
    expect(new InteractionExpiredError().name).toBe('InteractionExpiredError');
  });
});

describe('field errors', () => {
  const pages = createPageResponder(createRenderer({ defaultLocale: 'en', supported: ['en', 'ar', 'ja'] }), config);
  const ctx = (locale: string) => ({ state: { locale } as Partial<RequestState> }) as unknown as Context;

  it('have one shape for an account form and for answers, rendered beside each field', () => {
    const registration = new AccountValidationError({ password: 'password_too_short', email: 'invalid_email' });
    expect([...registration.fields.keys()]).toEqual(['email', 'password']);
    expect(formErrors(pages, ctx('en'), registration)).toEqual({
      email: 'Enter an email address like name@example.com.',
      password: `Use at least ${config.accounts.password_min_length} characters.`,
    });

    const question = screenSetSchema.parse({
      id: 's', title: 'S', trigger: ['after_login'],
      questions: [{ id: 'constructor', type: 'multi_choice', purpose: 'p', label: 'L', min_selections: 2, options: [{ value: 'a', label: 'A' }, { value: 'b', label: 'B' }] }],
    }).questions[0]!;
    const rejection = validateAnswer(question, ['a'], new Date());
    if (rejection.ok) throw new Error('expected a refusal');
    expect(fieldMessages(pages, ctx('en'), 'answer', new Map([['constructor', rejection]]))).toEqual(new Map([['constructor', 'Choose at least 2 options.']]));
    expect(fieldMessages(pages, ctx('ar'), 'answer', new Map([['constructor', rejection]])).get('constructor')).toBe('اختر خيارين على الأقل.');
  });

  it('put a problem of no one field above the form', () => {
    expect(formErrors(pages, ctx('en'), new AccountError('token_expired'))).toEqual({ form: 'This link has expired. Ask for a new one.' });
    expect(formErrors(pages, ctx('en'), new AccountError('email_taken', { field: 'email' }))).toEqual({
      email: 'An account with this email already exists. Sign in, or reset your password.',
    });
  });
});
