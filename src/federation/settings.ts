import { readFileSync } from 'node:fs';
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { inspect } from 'node:util';
import { ConfigError, formatPath } from '../config/load.ts';
import type { IdentityProviderConfig, LocalizedText } from '../config/schema.ts';
import {
  PRESETS, STANDARD_CLAIMS, microsoftIssuer,
  type ClaimMapping, type OAuth2Endpoints, type PresetName, type ProviderType,
} from './presets.ts';

/**
 * A secret held in memory. It prints as [redacted] through JSON (pino), util.inspect and string
 * conversion, so that a settings object logged by mistake gives nothing away; only `reveal()`
 * hands out the value, at the moment it is sent to the provider.
 */
export class SecretValue {
  readonly #value: string;
  constructor(value: string) { this.#value = value; }
  reveal(): string { return this.#value; }
  toJSON(): string { return '[redacted]'; }
  toString(): string { return '[redacted]'; }
  [inspect.custom](): string { return '[redacted]'; }
}

export type ClientAuthentication =
  | { method: 'client_secret_post'; secret: SecretValue }
  // Sign in with Apple: the secret is an ES256 JWT signed with this key (apple-secret.ts).
  | { method: 'apple_jwt'; teamId: string; keyId: string; privateKey: KeyObject }
  | { method: 'none' };

/** One configured provider with its preset applied and its secrets read: what the client runs on. */
export interface UpstreamSettings {
  id: string;
  type: ProviderType;
  preset?: PresetName;
  name: LocalizedText;
  clientId: string;
  clientAuthentication: ClientAuthentication;
  /** oidc: the issuer to discover from (for Microsoft's multi-tenant endpoints, not the tokens' issuer). */
  issuer?: string;
  /** oauth2: the endpoints, as there is nothing to discover. */
  endpoints?: OAuth2Endpoints;
  scopes: string[];
  claims: ClaimMapping;
  trustEmailVerified: boolean;
  responseMode?: 'form_post';
  loginHintParameter?: string;
  /** Microsoft: `tid`s allowed to sign in; empty: any. */
  allowedTenants: string[];
  authorizationParams: Record<string, string>;
  signUp: boolean;
  /** Seconds each request to the provider may take. */
  timeout: number;
}

export interface SecretSources {
  env: NodeJS.ProcessEnv;
  readFile?: (file: string) => string;
}

type SecretSource = NonNullable<IdentityProviderConfig['client_secret']>;

function readSecret(source: SecretSource, sources: SecretSources, at: (string | number)[], problems: string[]): string | undefined {
  const where = formatPath(at);
  if (typeof source === 'string') return source;
  if ('env' in source) {
    const value = sources.env[source.env];
    if (value === undefined || value === '') {
      problems.push(`${where}: the environment variable ${source.env} is not set`);
      return undefined;
    }
    return value;
  }
  try {
    const value = (sources.readFile ?? ((file) => readFileSync(file, 'utf8')))(source.file).trim();
    if (value === '') problems.push(`${where}: the file ${source.file} is empty`);
    return value || undefined;
  } catch (error) {
    problems.push(`${where}: the file ${source.file} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    return undefined;
  }
}

/** The .p8 file Apple gives is a PKCS #8 PEM of a P-256 key; environment variables often carry it with literal \n. */
function readApplePrivateKey(pem: string, at: (string | number)[], problems: string[]): KeyObject | undefined {
  try {
    const key = createPrivateKey(pem.includes('\\n') ? pem.replaceAll('\\n', '\n') : pem);
    if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return key;
  } catch {
    // reported below, without the text of the key
  }
  problems.push(`${formatPath(at)}: expected the Sign in with Apple key: a P-256 private key in PKCS #8 PEM (the .p8 file)`);
  return undefined;
}

function asList(names: string | readonly string[] | undefined): string[] | undefined {
  return names === undefined ? undefined : [names].flat();
}

/**
 * The configured identity providers ready for the client: preset values under the entry's own,
 * secrets read from where the entry says. Throws ConfigError naming every secret that cannot be
 * read (its key path and why, never its value), as an invalid configuration does.
 */
export function resolveUpstreamSettings(providers: readonly IdentityProviderConfig[], sources: SecretSources): UpstreamSettings[] {
  const problems: string[] = [];
  const settings = providers.map((p, index): UpstreamSettings => {
    const at = (...key: (string | number)[]) => ['identity_providers', index, ...key];
    const preset = p.preset ? PRESETS[p.preset] : undefined;
    const type = preset?.type ?? p.type ?? 'oidc';

    let clientAuthentication: ClientAuthentication = { method: 'none' };
    if (p.apple) {
      const pem = readSecret(p.apple.private_key, sources, at('apple', 'private_key'), problems);
      const privateKey = pem === undefined ? undefined : readApplePrivateKey(pem, at('apple', 'private_key'), problems);
      if (privateKey) clientAuthentication = { method: 'apple_jwt', teamId: p.apple.team_id, keyId: p.apple.key_id, privateKey };
    } else if (p.client_secret !== undefined) {
      const secret = readSecret(p.client_secret, sources, at('client_secret'), problems);
      if (secret !== undefined) clientAuthentication = { method: 'client_secret_post', secret: new SecretValue(secret) };
    }

    const issuer = p.preset === 'microsoft' ? microsoftIssuer(p.tenant ?? 'common') : p.issuer ?? preset?.issuer;
    const presetEndpoints = preset?.endpoints;
    const endpoints = type === 'oauth2'
      ? {
        authorization_endpoint: p.authorization_endpoint ?? presetEndpoints?.authorization_endpoint ?? '',
        token_endpoint: p.token_endpoint ?? presetEndpoints?.token_endpoint ?? '',
        userinfo_endpoint: p.userinfo_endpoint ?? presetEndpoints?.userinfo_endpoint ?? '',
        ...(p.emails_endpoint ?? presetEndpoints?.emails_endpoint ? { emails_endpoint: (p.emails_endpoint ?? presetEndpoints?.emails_endpoint)! } : {}),
      }
      : undefined;
    // A generic OpenID provider gets the standard login_hint; a preset says whether it has one.
    const loginHintParameter = type === 'oidc' ? (preset ? preset.loginHintParameter : 'login_hint') : undefined;
    const base = preset?.claims ?? STANDARD_CLAIMS;
    const claims: ClaimMapping = {
      subject: asList(p.claims?.subject) ?? base.subject,
      email: asList(p.claims?.email) ?? base.email,
      email_verified: asList(p.claims?.email_verified) ?? base.email_verified,
      name: asList(p.claims?.name) ?? base.name,
      locale: asList(p.claims?.locale) ?? base.locale,
    };
    return {
      id: p.id,
      type,
      ...(p.preset ? { preset: p.preset } : {}),
      name: p.name ?? preset?.name ?? p.id,
      clientId: p.client_id,
      clientAuthentication,
      ...(issuer !== undefined && type === 'oidc' ? { issuer } : {}),
      ...(endpoints ? { endpoints } : {}),
      scopes: [...(p.scopes ?? preset?.scopes ?? ['openid', 'email', 'profile'])],
      claims,
      // The schema refuses true where the preset does not allow it; this keeps the rule even for
      // settings built by hand.
      trustEmailVerified: (p.trust_email_verified ?? preset?.trustEmailVerified ?? false) && (preset?.trustEmailVerifiedAllowed ?? true),
      ...(preset?.responseMode ? { responseMode: preset.responseMode } : {}),
      ...(loginHintParameter ? { loginHintParameter } : {}),
      allowedTenants: [...(p.allowed_tenants ?? [])],
      authorizationParams: p.authorization_params ?? {},
      signUp: p.sign_up,
      timeout: p.timeout,
    };
  });
  if (problems.length > 0) throw new ConfigError(problems);
  return settings;
}
