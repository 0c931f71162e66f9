import type { AccountErrorCode } from './errors.ts';

// One spelling per address, so that "Ann@Example.com", "ann@example.com " and its full-width
// form are one account, one throttle key and one unique row.
export function normalizeEmail(email: string): string {
  return email.normalize('NFKC').trim().toLowerCase();
}

/**
 * RFC 5321 §4.5.3.1: a path holds at most 256 octets with its angle brackets, so an address at
 * most 254; a local part at most 64. Octets of UTF-8 (RFC 6531), not characters: "東京" is six.
 */
export const MAX_EMAIL_OCTETS = 254;
export const MAX_LOCAL_PART_OCTETS = 64;

// Whitespace, controls and the characters that only a quoted local part or a display name may
// hold. No consumer address needs them, and refusing them keeps an address from smuggling a
// second recipient or a header into a message. (NUL, a control, could not even be stored, nor
// half a surrogate pair, Cs.)
const FORBIDDEN = /[\s\p{Cc}\p{Cs},;:<>()[\]\\"]/u;

// Characters that show as nothing, or that only reorder what is around them: zero-width spaces
// and joiners, soft hyphens, direction marks, overrides and isolates, variation selectors,
// fillers. NFKC keeps them, so "look@…" and "look<ZWSP>@…" would be two accounts that read
// alike, one of them an impostor. No mailbox name needs them.
const INVISIBLE = /[\p{Default_Ignorable_Code_Point}\p{Bidi_Control}]/u;

const octets = (text: string) => Buffer.byteLength(text, 'utf8');

export type EmailProblem = Extract<AccountErrorCode, 'invalid_email' | 'email_too_long' | 'email_invisible_characters'>;

/**
 * What is wrong with a normalized address, if anything. A deliberately plain check: the emailed
 * link is the real proof that an address works.
 */
export function emailProblem(normalized: string): EmailProblem | undefined {
  if (INVISIBLE.test(normalized)) return 'email_invisible_characters';
  if (FORBIDDEN.test(normalized)) return 'invalid_email';
  if (octets(normalized) > MAX_EMAIL_OCTETS) return 'email_too_long';
  const parts = normalized.split('@');
  if (parts.length !== 2) return 'invalid_email';
  const [local, domain] = parts as [string, string];
  if (local.length === 0 || octets(local) > MAX_LOCAL_PART_OCTETS) return 'invalid_email';
  const labels = domain.split('.');
  return labels.length >= 2 && labels.every((label) => label.length > 0) ? undefined : 'invalid_email';
}

export function isValidEmail(normalized: string): boolean {
  return emailProblem(normalized) === undefined;
}
