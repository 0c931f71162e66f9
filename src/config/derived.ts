// What Parley reads from its configuration without it being written there: worked out once, when
// the configuration is loaded, and frozen with the rest, so every part reads the same value and
// nothing changes it while Parley runs.
import type { ClientConfig, Config, ValidatedConfig } from './schema.ts';

/** The client the preference center signs in with, like any app: built in, never configured. */
export const ACCOUNT_CLIENT_ID = 'parley-account';

export interface DerivedSettings {
  /** The issuer without a trailing slash: the start of every URL Parley publishes. */
  readonly baseUrl: string;
  /** Cookies carry Secure when the issuer is https (behind a TLS-terminating proxy too). */
  readonly secureCookies: boolean;
  /** Every client by its id: the configured apps and the built-in preference-center client. */
  readonly clientsById: ReadonlyMap<string, ClientConfig>;
}

/** The issuer without a trailing slash, the start of the URLs built from it ("${issuer}/..." too). */
export function baseUrlOf(issuer: string): string {
  return issuer.replace(/\/$/, '');
}

function accountClient(baseUrl: string): ValidatedConfig['clients'][number] {
  return {
    client_id: ACCOUNT_CLIENT_ID,
    name: 'Account settings',
    redirect_uris: [`${baseUrl}/account/callback`],
    post_logout_redirect_uris: [`${baseUrl}/account`],
    first_party: true,
    pkce_required: true,
    grant_types: ['authorization_code'],
    purposes: [],
    // Signing in to manage your data is not the moment to ask for more of it.
    profiling: false,
  };
}

/** Completes a checked configuration with what derives from it, and freezes it all. */
export function completeConfig(validated: ValidatedConfig): Config {
  const baseUrl = baseUrlOf(validated.issuer);
  const clients = [...validated.clients, accountClient(baseUrl)];
  return deepFreeze({
    ...validated,
    clients,
    baseUrl,
    secureCookies: new URL(validated.issuer).protocol === 'https:',
    clientsById: readOnlyMap(clients.map((c) => [c.client_id, c])),
  }) as Config;
}

/** A Map whose entries cannot change: Object.freeze alone leaves set, delete and clear working. */
function readOnlyMap<K, V>(entries: [K, V][]): ReadonlyMap<K, V> {
  const map = new Map(entries);
  const refuse = () => { throw new TypeError('the configuration is read-only'); };
  for (const method of ['set', 'delete', 'clear']) Object.defineProperty(map, method, { value: refuse });
  return Object.freeze(map);
}

function deepFreeze<T>(value: T): T {
  if (value === null || typeof value !== 'object') return value;
  for (const inner of value instanceof Map ? value.values() : Object.values(value)) deepFreeze(inner);
  return Object.freeze(value);
}
