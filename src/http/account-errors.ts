import type { Context } from 'koa';
import { AccountError, AccountValidationError, type AccountErrorCode } from '../accounts/errors.ts';
import type { Config } from '../config/schema.ts';
import { MAX_EMAIL_OCTETS } from '../accounts/email.ts';
import { MAX_NAME_LENGTH } from '../accounts/names.ts';
import type { PageResponder } from './context.ts';

// Status codes for the account errors a user can cause. Sign-in failures of every kind except
// throttling share one status and one message, so nothing reveals whether an account exists.
const STATUS: Record<AccountErrorCode, number> = {
  invalid_email: 400,
  email_too_long: 400,
  email_invisible_characters: 400,
  name_too_long: 400,
  name_invalid_characters: 400,
  password_too_short: 400,
  password_too_long: 400,
  password_common: 400,
  password_required: 400,
  email_taken: 409,
  invalid_credentials: 401,
  throttled: 429,
  too_many_requests: 429,
  email_not_verified: 403,
  token_invalid: 400,
  token_expired: 400,
};

export function accountErrorStatus(error: AccountError): number {
  return STATUS[error.code];
}

export function accountErrorMessage(pages: PageResponder, ctx: Context, config: Config, code: AccountErrorCode, retryAfterSeconds?: number): string {
  switch (code) {
    case 'password_too_short': return pages.t(ctx, 'error.password_too_short', { min: config.accounts.password_min_length });
    case 'password_too_long': return pages.t(ctx, 'error.password_too_long', { max: config.accounts.password_max_length });
    case 'email_too_long': return pages.t(ctx, 'error.email_too_long', { max: MAX_EMAIL_OCTETS });
    case 'name_too_long': return pages.t(ctx, 'error.name_too_long', { max: MAX_NAME_LENGTH });
    case 'throttled': {
      const seconds = Math.max(1, Math.ceil(retryAfterSeconds ?? 1));
      return seconds >= 120
        ? pages.t(ctx, 'error.throttled_minutes', { minutes: Math.ceil(seconds / 60) })
        : pages.t(ctx, 'error.throttled', { seconds });
    }
    case 'too_many_requests': return pages.t(ctx, 'error.too_many_requests', { minutes: Math.ceil(Math.max(60, retryAfterSeconds ?? 60) / 60) });
    default: return pages.t(ctx, `error.${code}`);
  }
}

/** Field-by-field messages for a form, from a validation error or a single account error. */
export function fieldErrors(pages: PageResponder, ctx: Context, config: Config, error: AccountError): { name?: string; email?: string; password?: string; form?: string } {
  if (error instanceof AccountValidationError) {
    const out: { name?: string; email?: string; password?: string } = {};
    for (const [field, code] of Object.entries(error.fields) as [keyof typeof out, AccountErrorCode][]) {
      out[field] = accountErrorMessage(pages, ctx, config, code);
    }
    return out;
  }
  const message = accountErrorMessage(pages, ctx, config, error.code, error.retryAfterSeconds);
  return error.field ? { [error.field]: message } : { form: message };
}
