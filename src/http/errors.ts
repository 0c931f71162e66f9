// The one table from error codes to HTTP: for every code of every module's closed list, the status
// it answers with, the message a person reads, and whether the error's own words may be shown.
// Parley's pages (errorPages in app.ts and the forms that show errors beside their fields), the
// management API's JSON problems and oidc-provider's own error pages all answer from here, so a
// code means the same everywhere, and "the database is unreachable: 503, retry in 5 seconds" is
// written once (storage.database_unavailable, recognized by classify).
import Koa, { type Context } from 'koa';
import type { Logger } from 'pino';
import { ANSWER_ERROR_CODES } from '../screensets/engine.ts';
import { AccountValidationError, type AccountError } from '../accounts/errors.ts';
import { MAX_EMAIL_OCTETS } from '../accounts/email.ts';
import { MAX_NAME_LENGTH } from '../accounts/names.ts';
import type { Config } from '../config/schema.ts';
import { EVENTS_ERROR_CODES } from '../events/dead-letters.ts';
import { DomainError, type ErrorCodes, type ErrorModule, type FieldErrors, type MessageParams } from '../errors.ts';
import { isDatabaseUnavailable, errorSummary } from '../storage/database.ts';
import { translate, type MessageVars } from '../views/i18n.ts';
import type { PageResponder } from './context.ts';

/** What a message may need besides the error's own values (`params`): the limits in force, and how long to wait. */
export interface MessageFacts {
  config: Pick<Config, 'accounts'>;
  retryAfterSeconds?: number | undefined;
}

export interface ErrorEntry {
  status: number;
  /** The message key a person reads (the locale files have it in every language; a test checks). */
  message: string;
  /** For waits of two minutes or more: the same message counted in minutes. */
  minutesMessage?: string;
  /** Values the message needs beyond those the error carries (`params`). */
  vars?: (facts: MessageFacts) => MessageVars;
  /**
   * Whether the error's own words may be shown: the API's `error_description` is then the
   * error's message (written for the caller: what is wrong with the request), and otherwise a
   * generic text, with the error in the log. Pages always show `message`, never the error's words.
   */
  expose: boolean;
  /** The JSON problem's `error` (RFC 6749 §5.2 style); the code when not given. */
  problem?: string;
  /** Retry-After in seconds, when the error does not say (retryAfterSeconds). */
  retryAfterSeconds?: number;
  /**
   * How a failure is logged: `outage` is one line without a stack (the database is down, every
   * request says so); `info` is the client's doing; `error`, the default from 500 up, logs the
   * error with its stack and details. Below 500 nothing is logged by default.
   */
  log?: 'none' | 'info' | 'outage' | 'error';
  /** Nobody is left to read an answer (the client went away, or Node already answered): status only. */
  silent?: true;
}

export type ErrorTable = { readonly [M in ErrorModule]: Readonly<Record<ErrorCodes[M], ErrorEntry>> };

/** The person's (or the caller's) to fix: shown as it is. */
const mistake = (status: number, message: string, more: Partial<ErrorEntry> = {}): ErrorEntry => ({ status, message, expose: true, ...more });
/** Parley's or the operator's to fix: the person gets `message`, the log gets the error. */
const failure = (status: number, message: string, more: Partial<ErrorEntry> = {}): ErrorEntry => ({ status, message, expose: false, ...more });

/** Every code of a list with the same kind of entry, for lists whose messages follow one pattern. */
function eachCode<Code extends string>(codes: readonly Code[], entry: (code: Code) => ErrorEntry): Record<Code, ErrorEntry> {
  return Object.fromEntries(codes.map((code) => [code, entry(code)])) as Record<Code, ErrorEntry>;
}

/** At least a second; the message counts whole seconds, or minutes from two minutes on. */
const waitSeconds = (retryAfterSeconds: number | undefined) => Math.max(1, Math.ceil(retryAfterSeconds ?? 1));

const THROTTLED = mistake(429, 'error.throttled', {
  minutesMessage: 'error.throttled_minutes',
  vars: ({ retryAfterSeconds }) => ({ seconds: waitSeconds(retryAfterSeconds), minutes: Math.ceil(waitSeconds(retryAfterSeconds) / 60) }),
});
const TOO_MANY_REQUESTS = mistake(429, 'error.too_many_requests', {
  vars: ({ retryAfterSeconds }) => ({ minutes: Math.ceil(Math.max(60, retryAfterSeconds ?? 60) / 60) }),
});
// Whatever a passkey ceremony failed on, the person reads the same: which check failed would tell
// an attacker holding someone's authenticator more than it tells the owner.
const PASSKEY_FAILED = mistake(401, 'error.credential.passkey_failed');
const INTERNAL = failure(500, 'error.server', { problem: 'server_error' });

export const ERROR_TABLE: ErrorTable = {
  // Sign-in failures of every kind except throttling share one status and one message
  // (invalid_credentials), so nothing reveals whether an account exists.
  account: {
    invalid_email: mistake(400, 'error.invalid_email'),
    email_too_long: mistake(400, 'error.email_too_long', { vars: () => ({ max: MAX_EMAIL_OCTETS }) }),
    email_invisible_characters: mistake(400, 'error.email_invisible_characters'),
    name_too_long: mistake(400, 'error.name_too_long', { vars: () => ({ max: MAX_NAME_LENGTH }) }),
    name_invalid_characters: mistake(400, 'error.name_invalid_characters'),
    password_too_short: mistake(400, 'error.password_too_short', { vars: ({ config }) => ({ min: config.accounts.password_min_length }) }),
    password_too_long: mistake(400, 'error.password_too_long', { vars: ({ config }) => ({ max: config.accounts.password_max_length }) }),
    password_common: mistake(400, 'error.password_common'),
    password_required: mistake(400, 'error.password_required'),
    email_taken: mistake(409, 'error.email_taken'),
    invalid_credentials: mistake(401, 'error.invalid_credentials'),
    throttled: THROTTLED,
    too_many_requests: TOO_MANY_REQUESTS,
    email_not_verified: mistake(403, 'error.email_not_verified'),
    terms_not_accepted: mistake(400, 'error.terms_not_accepted'),
    birthdate_invalid: mistake(400, 'error.birthdate_invalid'),
    token_invalid: mistake(400, 'error.token_invalid'),
    token_expired: mistake(400, 'error.token_expired'),
  },
  credential: {
    method_disabled: mistake(403, 'error.credential.method_disabled'),
    challenge_invalid: PASSKEY_FAILED,
    passkey_not_verified: PASSKEY_FAILED,
    passkey_unknown: PASSKEY_FAILED,
    passkey_counter_regressed: PASSKEY_FAILED,
    passkey_already_registered: mistake(409, 'error.credential.passkey_already_registered'),
    last_sign_in_method: mistake(409, 'error.credential.last_sign_in_method'),
    name_invalid: mistake(400, 'error.credential.name_invalid'),
    email_invalid: mistake(400, 'error.invalid_email'),
    totp_already_enrolled: mistake(409, 'error.credential.totp_already_enrolled'),
    totp_not_enrolled: mistake(409, 'error.credential.totp_not_enrolled'),
    code_invalid: mistake(401, 'error.credential.code_invalid'),
    code_replayed: mistake(401, 'error.credential.code_replayed'),
    code_expired: mistake(401, 'error.credential.code_expired'),
    code_exhausted: mistake(401, 'error.credential.code_exhausted'),
    throttled: THROTTLED,
    too_many_requests: TOO_MANY_REQUESTS,
  },
  // Refused answers are shown beside their question; the engine gives the values each message needs.
  answer: eachCode(ANSWER_ERROR_CODES, (code) => mistake(400, `answer.error.${code}`)),
  // The person is told what to do next; the operator finds the provider, the stage and the
  // provider's own words in the log (UpstreamError's details), from 502 up.
  upstream: {
    access_denied: mistake(403, 'error.upstream.cancelled'),
    state_mismatch: mistake(400, 'error.upstream.state_mismatch'),
    expired: mistake(400, 'error.upstream.expired'),
    invalid_id_token: failure(502, 'error.upstream.failed'),
    tenant_not_allowed: mistake(403, 'error.upstream.tenant_not_allowed'),
    invalid_response: failure(502, 'error.upstream.failed'),
    upstream_unavailable: failure(502, 'error.upstream.unavailable'),
    timeout: failure(504, 'error.upstream.unavailable'),
    misconfigured: failure(500, 'error.upstream.failed'),
  },
  identity: {
    last_sign_in_method: mistake(409, 'error.identity.last_sign_in_method'),
    not_linked: mistake(404, 'error.identity.not_linked'),
    sign_up_disabled: mistake(403, 'error.identity.sign_up_disabled'),
    linked_to_another_account: mistake(409, 'error.identity.linked_to_another_account'),
    account_email_unverified: mistake(403, 'error.identity.account_email_unverified'),
    wrong_account: mistake(403, 'error.identity.wrong_account'),
    email_unproven: mistake(403, 'error.identity.email_unproven'),
  },
  // The API's callers read the error's own message, which names the place in the condition.
  segment: {
    invalid_condition: mistake(400, 'error.bad_request'),
    purpose_not_allowed: mistake(403, 'error.forbidden'),
    invalid_cursor: mistake(400, 'error.bad_request'),
  },
  stats: {
    invalid_range: mistake(400, 'error.stats.invalid_range', { problem: 'invalid_request' }),
  },
  events: eachCode(EVENTS_ERROR_CODES, () => mistake(400, 'error.bad_request', { problem: 'invalid_request' })),
  interaction: {
    session_expired: mistake(400, 'error.session_expired'),
  },
  terms: {
    not_accepted: mistake(400, 'error.terms_not_accepted'),
    // Deleted while its sign-in was at the terms step: as good as an expired sign-in.
    account_missing: mistake(400, 'error.session_expired'),
  },
  api_token: {
    invalid_token: mistake(401, 'error.forbidden', { problem: 'invalid_token' }),
  },
  request: {
    csrf: mistake(403, 'error.csrf'),
    body_too_large: mistake(413, 'error.too_large', { problem: 'invalid_request' }),
    body_timeout: mistake(408, 'error.bad_request', { log: 'info', silent: true }),
    client_closed_request: mistake(499, 'error.bad_request', { log: 'info', silent: true }),
    unsupported_media_type: mistake(415, 'error.bad_request', { problem: 'invalid_request' }),
    malformed_body: mistake(400, 'error.bad_request', { problem: 'invalid_request' }),
    invalid_parameters: mistake(400, 'error.bad_request', { problem: 'invalid_request' }),
    insufficient_scope: mistake(403, 'error.forbidden'),
    bad_request: mistake(400, 'error.bad_request', { problem: 'invalid_request' }),
    forbidden: mistake(403, 'error.forbidden', { problem: 'access_denied' }),
    // oidc-provider's refusal: its status and its fixed description of what the app sent wrong.
    protocol_error: mistake(400, 'error.oidc', { problem: 'invalid_request' }),
    not_found: mistake(404, 'error.not_found'),
    method_not_allowed: mistake(405, 'error.bad_request', { problem: 'invalid_request' }),
    not_implemented: mistake(501, 'error.server'),
    internal_error: INTERNAL,
  },
  storage: {
    database_unavailable: failure(503, 'error.unavailable', { problem: 'temporarily_unavailable', retryAfterSeconds: 5, log: 'outage' }),
    sealed_value_unreadable: INTERNAL,
  },
  // Errors of the start and of the command line (main.ts answers them there), and a hash the
  // import refuses: one that reached a request would be Parley's bug.
  config: { invalid_config: INTERNAL },
  screensets: { invalid_screensets: INTERNAL },
  import: { usage: INTERNAL },
  foreign_hash: { unusable_hash: INTERNAL },
};

/** A code of a module, with what its message needs: a DomainError, a FieldError with its module, a classified failure. */
export interface Problem<M extends ErrorModule = ErrorModule> {
  module: M;
  code: ErrorCodes[M];
  retryAfterSeconds?: number | undefined;
  params?: MessageParams | undefined;
}

export function entryOf(problem: Problem): ErrorEntry {
  const section = ERROR_TABLE[problem.module] as Readonly<Record<string, ErrorEntry>> | undefined;
  // Own entries only: no code may find an Object.prototype member by its name.
  return section && Object.hasOwn(section, problem.code) ? section[problem.code]! : INTERNAL;
}

/** Any failure, placed in the table. */
export interface Classified extends Problem {
  entry: ErrorEntry;
  status: number;
  error: unknown;
}

const STATUS_CODES: Readonly<Record<number, ErrorCodes['request']>> = {
  400: 'bad_request', 403: 'forbidden', 404: 'not_found', 405: 'method_not_allowed', 413: 'body_too_large',
};

/**
 * Where a failure is in the table: a DomainError by its module and code; the database's drivers'
 * own errors when it cannot be reached; Koa's `ctx.throw(404)` by its status; anything else is
 * an internal error.
 */
export function classify(error: unknown): Classified {
  if (error instanceof DomainError) {
    return classified({ module: error.module, code: error.code, retryAfterSeconds: error.retryAfterSeconds, params: error.params }, error);
  }
  if (isDatabaseUnavailable(error)) return classified({ module: 'storage', code: 'database_unavailable' }, error);
  if (error instanceof Koa.HttpError && error.status < 500) {
    return classified({ module: 'request', code: STATUS_CODES[error.status] ?? 'bad_request' }, error);
  }
  return classified({ module: 'request', code: 'internal_error' }, error);
}

/** A problem known by its code, with the failure behind it (if any) for the log. */
export function classified(problem: Problem, error?: unknown): Classified {
  const entry = entryOf(problem);
  return { ...problem, entry, status: entry.status, error };
}

/** The message a person reads, in the language of `t`. */
export function errorMessage(t: (key: string, vars?: MessageVars) => string, problem: Problem, config: MessageFacts['config']): string {
  const entry = entryOf(problem);
  const facts: MessageFacts = { config, retryAfterSeconds: problem.retryAfterSeconds };
  const key = entry.minutesMessage && waitSeconds(problem.retryAfterSeconds) >= 120 ? entry.minutesMessage : entry.message;
  return t(key, { ...entry.vars?.(facts), ...problem.params });
}

/** The value of Retry-After, for the errors that have one. */
export function retryAfter(failure: Classified): string | undefined {
  const seconds = failure.retryAfterSeconds ?? failure.entry.retryAfterSeconds;
  return seconds === undefined ? undefined : String(Math.max(1, Math.ceil(seconds)));
}

/** One log line per failure, as its entry says: never the stack of an outage, never a person's mistake. */
export function logFailure(log: Logger, failure: Classified, what = 'unhandled error'): void {
  const level = failure.entry.log ?? (failure.status >= 500 ? 'error' : 'none');
  const error = failure.error;
  if (level === 'info') log.info(error instanceof Error ? error.message : String(error));
  else if (level === 'outage') log.error({ err: errorSummary(error) }, 'database unavailable');
  else if (level === 'error') log.error({ err: error, code: `${failure.module}.${failure.code}` }, what);
}

/**
 * The JSON problem of the API and of oidc-provider's JSON endpoints: `error`, and in
 * `error_description` the error's own words when the table exposes them, else the generic message.
 */
export function problemBody(failure: Classified, requestId: string): { error: string; error_description: string } {
  const description = failure.entry.expose && failure.error instanceof Error
    ? failure.error.message
    : `${translate('en', failure.entry.message)}${failure.status === 500 ? ` (request ${requestId})` : ''}`;
  return { error: failure.entry.problem ?? failure.code, error_description: description };
}

/**
 * Field by field, the messages of one submission's problems (an account form's, or the answers of
 * a question screen), to show beside each field.
 */
export function fieldMessages<M extends ErrorModule, F extends string>(
  pages: PageResponder, ctx: Context, module: M, errors: FieldErrors<ErrorCodes[M], F>,
): Map<F, string> {
  return new Map([...errors].map(([field, error]) => [field, pages.errorMessage(ctx, { module, code: error.code, params: error.params })]));
}

/** An account form's messages: each field's beside it, a problem of no one field above the form. */
export function formErrors(pages: PageResponder, ctx: Context, error: AccountError): { name?: string; email?: string; password?: string; birthdate?: string; terms?: string; form?: string } {
  if (error instanceof AccountValidationError) return Object.fromEntries(fieldMessages(pages, ctx, 'account', error.fields));
  const text = pages.errorMessage(ctx, error);
  return error.field ? { [error.field]: text } : { form: text };
}

/** The status a problem answers with. */
export function errorStatus(problem: Problem): number {
  return entryOf(problem).status;
}
