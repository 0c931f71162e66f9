// One spelling per address, so that "Ann@Example.com", "ann@example.com " and its full-width
// form are one account, one throttle key and one unique row.
export function normalizeEmail(email: string): string {
  return email.normalize('NFKC').trim().toLowerCase();
}

// RFC 5321 §4.5.3.1: at most 254 characters in a path, 64 in a local part.
const MAX_EMAIL_LENGTH = 254;
const MAX_LOCAL_PART_LENGTH = 64;
// Whitespace, controls and the characters that only a quoted local part or a display name may
// hold. No consumer address needs them, and refusing them keeps an address from smuggling a
// second recipient or a header into a message.
const FORBIDDEN = /[\s\p{Cc},;:<>()[\]\\"]/u;

/** A deliberately plain check: the emailed link is the real proof that an address works. */
export function isValidEmail(normalized: string): boolean {
  if (normalized.length > MAX_EMAIL_LENGTH || FORBIDDEN.test(normalized)) return false;
  const parts = normalized.split('@');
  if (parts.length !== 2) return false;
  const [local, domain] = parts as [string, string];
  if (local.length === 0 || local.length > MAX_LOCAL_PART_LENGTH) return false;
  const labels = domain.split('.');
  return labels.length >= 2 && labels.every((label) => label.length > 0);
}
