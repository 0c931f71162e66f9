// The mistakes a user can make with an account, as a closed list of codes. Only the HTTP layer
// turns a code into a status and a message; nothing here knows about pages or statuses.
export type AccountErrorCode =
  | 'invalid_email'
  | 'email_too_long'
  | 'email_invisible_characters'
  | 'name_too_long'
  | 'name_invalid_characters'
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
export type AccountField = 'name' | 'email' | 'password';

/** The fields in the order a form shows them. */
const FIELD_ORDER: readonly AccountField[] = ['name', 'email', 'password'];

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
 * `code` and `field` are those of the first problem in the form's order (name, email, password),
 * for callers that show a single message.
 */
export class AccountValidationError extends AccountError {
  readonly fields: Partial<Record<AccountField, AccountErrorCode>>;

  constructor(fields: Partial<Record<AccountField, AccountErrorCode>>) {
    const field = FIELD_ORDER.find((f) => fields[f] !== undefined);
    const code = field && fields[field];
    if (!field || !code) throw new TypeError('AccountValidationError needs at least one field problem');
    super(code, { field });
    this.name = 'AccountValidationError';
    this.fields = { ...fields };
  }
}
