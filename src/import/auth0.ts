// Auth0's two files with users in them:
//
// - the bulk user import file (a JSON array; "Bulk User Import Database Schema and Examples" in
//   Auth0's docs): email, email_verified, user_id, given_name, family_name, name, nickname,
//   blocked, and password_hash (bcrypt) or custom_password_hash {algorithm, hash {value,
//   encoding}, salt {value, encoding, position}, password {encoding}};
// - the user export (newline-delimited JSON from an export job: user_id, email, email_verified,
//   name, given_name, family_name, nickname, created_at, locale, identities, blocked), and the
//   password hash export Auth0's support hands out in the same form (_id {$oid}, email,
//   email_verified, passwordHash).
//
// Both become line records. user_metadata and app_metadata are not imported: they have no
// place in Parley's profile; answers and consents come through the line format.
import type { Mapped } from './mapped.ts';
import { isObject, text } from './mapped.ts';

const SUPPORTED = 'bcrypt, argon2, pbkdf2, sha256, sha512';
/** Auth0's password.encoding values, as Node names the same encodings. */
const PASSWORD_ENCODINGS: Record<string, string> = {
  utf8: 'utf8', ascii: 'latin1', latin1: 'latin1', binary: 'latin1', utf16le: 'utf16le', ucs2: 'utf16le',
};
const DIGEST_BYTES: Record<string, number> = { sha256: 32, sha512: 64 };

type Converted = { ok: true; password: Record<string, unknown> } | { ok: false; error: string };

/** custom_password_hash → the line format's password object. */
export function convertCustomPasswordHash(custom: unknown): Converted {
  const at = 'custom_password_hash';
  if (!isObject(custom)) return { ok: false, error: `${at}: expected an object` };
  const algorithm = custom.algorithm;
  const hash = isObject(custom.hash) ? custom.hash : undefined;
  const value = hash?.value;
  if (typeof value !== 'string' || value === '') return { ok: false, error: `${at}.hash.value: is required` };
  switch (algorithm) {
    case 'bcrypt':
    case 'argon2':
    case 'pbkdf2':
      // Auth0 takes these as the standard strings (MCF, PHC), with hash.encoding utf8 and no salt.
      return { ok: true, password: { format: algorithm, hash: value } };
    case 'sha256':
    case 'sha512': {
      let encoding = hash?.encoding;
      if (encoding === undefined) {
        // The length tells the two apart: a SHA-256 digest is 64 hex digits or 43–44 base64 characters.
        encoding = /^[0-9a-fA-F]+$/.test(value) && value.length === 2 * DIGEST_BYTES[algorithm]! ? 'hex' : 'base64';
      }
      if (encoding !== 'hex' && encoding !== 'base64') return { ok: false, error: `${at}.hash.encoding: expected hex or base64 for ${algorithm}` };
      const salt = custom.salt === undefined ? undefined : isObject(custom.salt) ? custom.salt : null;
      if (salt === null) return { ok: false, error: `${at}.salt: expected an object {value, encoding, position}` };
      const passwordEncoding = isObject(custom.password) ? custom.password.encoding ?? 'utf8' : 'utf8';
      const nodeEncoding = typeof passwordEncoding === 'string' ? PASSWORD_ENCODINGS[passwordEncoding] : undefined;
      if (!nodeEncoding) return { ok: false, error: `${at}.password.encoding: expected one of ${Object.keys(PASSWORD_ENCODINGS).join(', ')}` };
      return {
        ok: true,
        password: {
          format: algorithm, hash: value, hash_encoding: encoding,
          ...(salt ? { salt: salt.value, salt_encoding: salt.encoding ?? 'utf8', salt_position: salt.position } : {}),
          password_encoding: nodeEncoding,
        },
      };
    }
    default:
      return { ok: false, error: `${at}.algorithm: ${typeof algorithm === 'string' ? `"${algorithm}"` : 'it'} is not supported (${SUPPORTED}); such users can sign in through legacy_verify or reset their password` };
  }
}

function nameOf(user: Record<string, unknown>): string | undefined {
  return text(user.name) ?? ([text(user.given_name), text(user.family_name)].filter(Boolean).join(' ') || undefined) ?? text(user.nickname);
}

function common(user: Record<string, unknown>): Mapped | undefined {
  // Parley has no blocked accounts: bringing one in would let its owner sign in again.
  if (user.blocked === true) return { ok: false, error: 'blocked: the user is blocked in Auth0; unblock or remove it before importing' };
  if (user.email === undefined || user.email === null || user.email === '') {
    return { ok: false, error: 'email: the user has no email address; Parley accounts are identified by email' };
  }
  return undefined;
}

/** One element of a bulk user import file. */
export function mapAuth0ImportUser(user: unknown): Mapped {
  if (!isObject(user)) return { ok: false, error: 'expected a user object' };
  const refused = common(user);
  if (refused) return refused;
  if (user.password_hash !== undefined && user.custom_password_hash !== undefined) {
    return { ok: false, error: 'password_hash and custom_password_hash: give one or the other' };
  }
  let password: unknown;
  let passwordKey = 'password_hash';
  if (user.custom_password_hash !== undefined) {
    const converted = convertCustomPasswordHash(user.custom_password_hash);
    if (!converted.ok) return converted;
    password = converted.password;
    passwordKey = 'custom_password_hash';
  } else if (user.password_hash !== undefined) {
    password = { format: 'bcrypt', hash: user.password_hash };
  }
  const name = nameOf(user);
  // Auth0 stores the account as "auth0|<user_id>" ("prepended by the connection strategy"), and
  // its exports say so: the same prefix here makes an import file and an export of the same
  // users one account each.
  const userId = typeof user.user_id === 'string' && user.user_id !== '' && !user.user_id.includes('|') ? `auth0|${user.user_id}` : user.user_id;
  return {
    ok: true,
    value: {
      ...(userId !== undefined ? { external_id: userId } : {}),
      email: user.email,
      email_verified: user.email_verified ?? false,
      ...(name ? { name } : {}),
      ...(password !== undefined ? { password } : {}),
    },
    sourceKeys: { external_id: 'user_id', password: passwordKey },
  };
}

/** Identities of other connections (social, enterprise): "google-oauth2|1234" or identities[]. */
function identitiesOf(user: Record<string, unknown>): unknown[] | undefined {
  if (Array.isArray(user.identities)) {
    return user.identities
      .filter((i) => !(isObject(i) && i.provider === 'auth0'))
      .map((i) => (isObject(i) ? { provider: i.connection ?? i.provider, subject: i.user_id === undefined ? undefined : String(i.user_id) } : i));
  }
  if (typeof user.user_id === 'string') {
    const bar = user.user_id.indexOf('|');
    const provider = bar > 0 ? user.user_id.slice(0, bar) : undefined;
    // Database and passwordless users are Auth0's own, not another provider's.
    if (provider && !['auth0', 'email', 'sms'].includes(provider)) return [{ provider, subject: user.user_id.slice(bar + 1) }];
  }
  return undefined;
}

/** One line of an Auth0 user export, or of Auth0's password hash export. */
export function mapAuth0ExportUser(user: unknown): Mapped {
  if (!isObject(user)) return { ok: false, error: 'expected a user object' };
  const refused = common(user);
  if (refused) return refused;
  const oid = isObject(user._id) ? user._id.$oid : undefined;
  if (typeof oid === 'string') {
    return {
      ok: true,
      value: {
        external_id: `auth0|${oid}`,
        email: user.email,
        email_verified: user.email_verified ?? false,
        ...(user.passwordHash !== undefined && user.passwordHash !== null ? { password: { format: 'bcrypt', hash: user.passwordHash } } : {}),
      },
      sourceKeys: { external_id: '_id.$oid', password: 'passwordHash' },
    };
  }
  const name = nameOf(user);
  const identities = identitiesOf(user);
  return {
    ok: true,
    value: {
      ...(user.user_id !== undefined ? { external_id: user.user_id } : {}),
      email: user.email,
      email_verified: user.email_verified ?? false,
      ...(name ? { name } : {}),
      ...(typeof user.locale === 'string' && user.locale !== '' ? { locale: user.locale } : {}),
      ...(user.created_at !== undefined ? { created_at: user.created_at } : {}),
      ...(identities ? { identities } : {}),
    },
    sourceKeys: { external_id: 'user_id' },
  };
}
