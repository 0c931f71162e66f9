// A Keycloak realm export (kc.sh export --realm <name> [--users realm_file | different_files]):
// the realm's JSON with its users[], or the users-only files ("<realm>-users-<n>.json") that
// hold {"realm", "users": [...]}. Each user becomes one line record. Keycloak's
// UserRepresentation: id, username, email, emailVerified, firstName, lastName, enabled,
// createdTimestamp (ms), attributes {locale: [..]}, credentials [CredentialRepresentation],
// federatedIdentities [{identityProvider, userId, userName}].
import type { Mapped } from './mapped.ts';
import { isObject, text } from './mapped.ts';

interface KeycloakCredential {
  type?: unknown;
  secretData?: unknown;
  credentialData?: unknown;
  priority?: unknown;
  // Before Keycloak 10 a credential carried its hash in these fields.
  hashedSaltedValue?: unknown;
  salt?: unknown;
  hashIterations?: unknown;
  algorithm?: unknown;
  // A realm file written by hand may hold a plain-text password.
  value?: unknown;
}

function passwordOf(credentials: unknown): { password?: unknown; at?: string; error?: string } {
  if (!Array.isArray(credentials)) return {};
  const index = credentials.findIndex((c) => isObject(c) && c.type === 'password');
  if (index < 0) return {};
  const at = `credentials[${index}]`;
  const credential = credentials[index] as KeycloakCredential;
  if (credential.secretData !== undefined || credential.credentialData !== undefined) {
    return { at, password: { format: 'keycloak', secret_data: credential.secretData ?? {}, credential_data: credential.credentialData ?? {} } };
  }
  if (credential.hashedSaltedValue !== undefined) {
    return {
      at,
      password: {
        format: 'keycloak',
        secret_data: { value: credential.hashedSaltedValue, salt: credential.salt },
        credential_data: { hashIterations: credential.hashIterations, algorithm: credential.algorithm ?? 'pbkdf2-sha256' },
      },
    };
  }
  if (credential.value !== undefined) {
    return { error: `${at}: a plain-text password is not imported; export the realm from Keycloak (kc.sh export) to get its hashed credentials` };
  }
  return { error: `${at}: a password credential without secretData` };
}

export function mapKeycloakUser(user: unknown): Mapped {
  if (!isObject(user)) return { ok: false, error: 'expected a user object' };
  if (user.serviceAccountClientId !== undefined) return { ok: false, error: 'a client\'s service account, not a person: not imported' };
  // Parley has no disabled accounts: bringing one in enabled would let its owner sign in again.
  if (user.enabled === false) return { ok: false, error: 'enabled: false: the user is disabled in Keycloak; enable or remove it before importing' };
  if (user.email === undefined || user.email === null || user.email === '') {
    return { ok: false, error: 'email: the user has no email address; Parley accounts are identified by email' };
  }
  const password = passwordOf(user.credentials);
  if (password.error) return { ok: false, error: password.error };
  const attributes = isObject(user.attributes) ? user.attributes : {};
  const locale = Array.isArray(attributes.locale) ? attributes.locale[0] : attributes.locale;
  const name = [text(user.firstName), text(user.lastName)].filter(Boolean).join(' ');
  const created = user.createdTimestamp;
  const identities = Array.isArray(user.federatedIdentities)
    ? user.federatedIdentities.map((f) => (isObject(f) ? { provider: f.identityProvider, subject: f.userId } : f))
    : undefined;
  return {
    ok: true,
    value: {
      external_id: user.id,
      email: user.email,
      email_verified: user.emailVerified ?? false,
      ...(name ? { name } : {}),
      ...(locale !== undefined ? { locale } : {}),
      ...(created !== undefined ? { created_at: typeof created === 'number' && Number.isFinite(created) ? new Date(created).toISOString() : created } : {}),
      ...(password.password !== undefined ? { password: password.password } : {}),
      ...(identities ? { identities } : {}),
    },
    sourceKeys: {
      external_id: 'id', email_verified: 'emailVerified', name: 'firstName', locale: 'attributes.locale',
      created_at: 'createdTimestamp', password: password.at ?? 'credentials', identities: 'federatedIdentities',
    },
  };
}
