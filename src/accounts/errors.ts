// The mistakes a user can make with an account, as a closed list of codes. Only the HTTP layer
// turns a code into a status and a message; nothing here knows about pages or statuses.
export type AccountErrorCode =
  | 'invalid_email'
  | 'password_too_short'
  | 'password_too_long'
  | 'password_common'
  | 'password_required'
  | 'email_taken'
  | 'invalid_credentials'
  | 'throttled'
  | 'too_many_requests'
  | 'email_not_verified'
  | 'token_invalid'
  | 'token_expired';

/** The form field an error belongs beside. */
export type AccountField = 'email' | 'password';

export class AccountError extends Error {
  readonly code: AccountErrorCode;
  readonly field?: AccountField;
  /** For 'throttled': how long until another attempt is let through. */
  readonly retryAfterSeconds?: number;

  constructor(code: AccountErrorCode, options: { field?: AccountField; retryAfterSeconds?: number } = {}) {
    // The message is the code alone: it may be logged, so it never carries the email address.
    super(code);
    this.name = 'AccountError';
    this.code = code;
    if (options.field !== undefined) this.field = options.field;
    if (options.retryAfterSeconds !== undefined) this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

/**
 * Every field problem of one form submission, so the page can show them all at once.
 * `code` and `field` are those of the first problem (email before password), for callers that
 * show a single message.
 */
export class AccountValidationError extends AccountError {
  readonly fields: Partial<Record<AccountField, AccountErrorCode>>;

  constructor(fields: Partial<Record<AccountField, AccountErrorCode>>) {
    const field: AccountField = fields.email ? 'email' : 'password';
    const code = fields[field];
    if (!code) throw new TypeError('AccountValidationError needs at least one field problem');
    super(code, { field });
    this.name = 'AccountValidationError';
    this.fields = { ...fields };
  }
}
