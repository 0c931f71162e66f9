import { DomainError, type FieldError, type FieldErrors } from '../errors.ts';

// The mistakes a user can make with an account, as a closed list of codes. Only the HTTP layer
// turns a code into a status and a message; nothing here knows about pages or statuses.
export const ACCOUNT_ERROR_CODES = [
  'invalid_email',
  'email_too_long',
  'email_invisible_characters',
  'name_too_long',
  'name_invalid_characters',
  'password_too_short',
  'password_too_long',
  'password_common',
  'password_required',
  'email_taken',
  /** Unknown address, wrong password, no password: one code, so nothing tells them apart. */
  'invalid_credentials',
  'throttled',
  'too_many_requests',
  'email_not_verified',
  /** Registering without ticking every current terms document. */
  'terms_not_accepted',
  /** A date of birth that is no real date in the past (the age gate). */
  'birthdate_invalid',
  'token_invalid',
  'token_expired',
] as const;

export type AccountErrorCode = (typeof ACCOUNT_ERROR_CODES)[number];

declare module '../errors.ts' {
  interface ErrorCodes { account: AccountErrorCode }
}

/** The form field an error belongs beside. */
export type AccountField = 'name' | 'email' | 'password' | 'birthdate' | 'terms';

/** The fields in the order a form shows them. */
const FIELD_ORDER: readonly AccountField[] = ['name', 'email', 'password', 'birthdate', 'terms'];

export class AccountError extends DomainError<'account'> {
  declare readonly field?: AccountField;

  constructor(code: AccountErrorCode, options: { field?: AccountField; retryAfterSeconds?: number } = {}) {
    // The message is the code alone: it may be logged, so it never carries the email address.
    super('account', code, options);
  }
}

/**
 * Every field problem of one form submission, so the page can show them all at once.
 * `code` and `field` are those of the first problem in the form's order (name, email, password),
 * for callers that show a single message.
 */
export class AccountValidationError extends AccountError {
  readonly fields: FieldErrors<AccountErrorCode, AccountField>;

  constructor(problems: Partial<Record<AccountField, AccountErrorCode>>) {
    const field = FIELD_ORDER.find((f) => problems[f] !== undefined);
    const code = field && problems[field];
    if (!field || !code) throw new TypeError('AccountValidationError needs at least one field problem');
    super(code, { field });
    this.fields = new Map(FIELD_ORDER.flatMap((f): [AccountField, FieldError<AccountErrorCode>][] => {
      const problem = problems[f];
      return problem ? [[f, { code: problem }]] : [];
    }));
  }
}
