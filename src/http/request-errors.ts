import { DomainError, type DomainErrorOptions } from '../errors.ts';

// What a request itself can get wrong, whatever route it is for: its form, its body, its path, its
// method, its right to call. The HTTP edge throws these; the table in errors.ts answers them.
export const REQUEST_ERROR_CODES = [
  /** The form's CSRF token is missing or is not this browser's. */
  'csrf',
  /** The body is larger than the route takes. */
  'body_too_large',
  /** The body did not arrive within http.request_timeout (Node has already answered 408). */
  'body_timeout',
  /** The client closed the connection before its body arrived. */
  'client_closed_request',
  'unsupported_media_type',
  /** The body is not what its media type says (JSON that does not parse, or nests too deep). */
  'malformed_body',
  /** Path, query or body do not match what the operation takes; the message lists each problem. */
  'invalid_parameters',
  /** The caller is authenticated but lacks the scope the call needs. */
  'insufficient_scope',
  'bad_request',
  'forbidden',
  /** oidc-provider refused a protocol request it cannot redirect back to the app. */
  'protocol_error',
  'not_found',
  'method_not_allowed',
  /** The operation exists but this server does not run what it needs. */
  'not_implemented',
  /** Anything not foreseen: Parley's fault, never the person's. */
  'internal_error',
] as const;

export type RequestErrorCode = (typeof REQUEST_ERROR_CODES)[number];

declare module '../errors.ts' {
  interface ErrorCodes { request: RequestErrorCode }
}

/** A problem with one field of the request (a path such as `query.limit`), for the API's `details`. */
export interface RequestIssue { path: string; message: string }

export class RequestError extends DomainError<'request'> {
  /** Each problem of an invalid request, where there are several. */
  readonly issues?: readonly RequestIssue[];

  constructor(code: RequestErrorCode, options: DomainErrorOptions & { issues?: readonly RequestIssue[] } = {}) {
    super('request', code, options);
    if (options.issues) this.issues = options.issues;
  }
}

export class CsrfError extends RequestError {
  constructor() {
    super('csrf', { message: 'missing or invalid CSRF token' });
  }
}

/** A request body larger than the limit: answered with 413 before anything is parsed. */
export class BodyTooLargeError extends RequestError {
  constructor(limit: number) {
    super('body_too_large', { message: `the body is larger than ${limit} bytes` });
  }
}

/**
 * The body did not arrive whole: the client closed the connection mid-upload (499, as proxies
 * count a request its client gave up on), or the server cut it off at `http.request_timeout`
 * (408; Node has already answered that on the socket). Either way nobody is left to answer,
 * and nothing is wrong on our side.
 */
export class IncompleteBodyError extends RequestError {
  constructor(timedOut: boolean) {
    super(timedOut ? 'body_timeout' : 'client_closed_request', {
      message: timedOut ? 'the request body did not arrive within http.request_timeout' : 'the client closed the request before its body arrived',
    });
  }
}
