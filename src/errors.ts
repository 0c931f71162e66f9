// The one base of the errors Parley's modules throw on purpose. Each module declares its codes as
// a closed list and registers them here (see ErrorCodes), so a code is always one of a known set;
// only src/http/errors.ts turns a code into a status, a message and whether it is shown, and its
// table must name every registered code or the project does not compile.

/**
 * Module name → the union of its error codes. Empty here: each module adds its own entry where
 * it declares its codes, with
 *
 *     declare module '../errors.ts' { interface ErrorCodes { account: AccountErrorCode } }
 *
 * so the list of modules is never written out by hand, and a new module cannot be forgotten by
 * the HTTP table.
 */
export interface ErrorCodes {}

export type ErrorModule = keyof ErrorCodes;

export type ErrorCode<M extends ErrorModule = ErrorModule> = ErrorCodes[M];

/** The values a message needs to be precise ("at most {max} characters"). */
export type MessageParams = Readonly<Record<string, string | number>>;

/** One problem with one field of a form. Account forms and answers to questions share this shape. */
export interface FieldError<Code extends string = string> {
  readonly code: Code;
  readonly params?: MessageParams;
}

/**
 * Every field problem of one submission, by field name (a form field, or a question id). A Map,
 * not an object: question ids are chosen by screen-set authors, and one named `constructor` must
 * not find Object.prototype's.
 */
export type FieldErrors<Code extends string = string, Field extends string = string> = ReadonlyMap<Field, FieldError<Code>>;

export interface DomainErrorOptions {
  /** The form field the problem belongs beside. */
  field?: string;
  /** For throttling and rate limits: how long until another attempt is let through. */
  retryAfterSeconds?: number;
  /** The values the message needs. */
  params?: MessageParams;
  /** For operators' logs only; never shown to the person or the caller. Never secrets or personal data. */
  details?: object;
  /**
   * What went wrong in words, for logs and, where the HTTP table exposes the code, for API
   * callers. Defaults to the code, so nothing personal can end up in it by accident.
   */
  message?: string;
  cause?: unknown;
}

export abstract class DomainError<M extends ErrorModule = ErrorModule> extends Error {
  /** Whose list the code is from: the HTTP table is keyed by module, then code. */
  readonly module: M;
  readonly code: ErrorCodes[M];
  readonly field?: string;
  readonly retryAfterSeconds?: number;
  readonly params?: MessageParams;
  readonly details?: object;

  constructor(module: M, code: ErrorCodes[M], options: DomainErrorOptions = {}) {
    super(options.message ?? String(code), options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.module = module;
    this.code = code;
    if (options.field !== undefined) this.field = options.field;
    if (options.retryAfterSeconds !== undefined) this.retryAfterSeconds = options.retryAfterSeconds;
    if (options.params !== undefined) this.params = options.params;
    if (options.details !== undefined) this.details = options.details;
  }
}
