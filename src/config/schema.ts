import { z } from 'zod';
import { EVENT_TYPES } from '../events/outbox.ts';
import { parseNetwork } from '../ip-addresses.ts';
import { ACCOUNT_CLIENT_ID, type DerivedSettings } from './derived.ts';
import { formatDuration, parseDuration } from './duration.ts';
import { PRESETS, PRESET_NAMES, PROVIDER_TYPES, RESERVED_AUTHORIZATION_PARAMETERS, isSecureOrLoopback } from '../federation/presets.ts';

// The schema checks shapes only. Every default value lives in config/default.yaml, which is
// read first, so the file people read is the one source of truth for defaults.

const duration = z.string().transform((text, ctx) => {
  const seconds = parseDuration(text);
  if (seconds === undefined) {
    ctx.addIssue({ code: 'custom', message: `expected a duration such as 60s, 15m, 20h or 7d, got "${text}"` });
    return z.NEVER;
  }
  return seconds;
});

const httpUrl = z.string().refine((text) => {
  try {
    const { protocol } = new URL(text);
    return protocol === 'http:' || protocol === 'https:';
  } catch {
    return false;
  }
}, { message: 'expected an absolute http(s) URL' });

const addressOrNetwork = z.string().refine((text) => parseNetwork(text) !== undefined, {
  message: 'expected an IP address or a CIDR network such as 10.0.0.0/8 or 2001:db8::/32',
});

const localizedText = z.union([z.string().min(1), z.record(z.string().min(2), z.string().min(1))]);

/**
 * The scopes of the management API (/api/v1). A client with the client_credentials grant gets
 * access tokens carrying at most the ones listed in its `scope`.
 */
export const API_SCOPES = ['accounts:read', 'accounts:export', 'accounts:write', 'accounts:import', 'segments:read', 'stats:read', 'events:replay'] as const;
export type ApiScope = (typeof API_SCOPES)[number];

export const LEGAL_BASES = [
  'consent', 'contract', 'legitimate_interest', 'legal_obligation', 'public_interest', 'vital_interest',
] as const;

/**
 * When a sign-in needs a second factor: never; when the user has enrolled one; always (users
 * without one enrol first). Set globally under mfa.policy and per client.
 */
export const MFA_POLICIES = ['off', 'optional', 'required'] as const;
export type MfaPolicy = (typeof MFA_POLICIES)[number];

const purpose = z.strictObject({
  legal_basis: z.enum(LEGAL_BASES),
  version: z.number().int().positive(),
  title: localizedText,
  description: localizedText.optional(),
  retention: duration.optional(),
});

const client = z.strictObject({
  client_id: z.string().min(1).regex(/^[A-Za-z0-9._~-]+$/, 'use letters, digits and . _ ~ - only'),
  client_secret: z.string().min(1).optional(),
  name: z.string().min(1).optional(),
  // Required for apps that sign users in (authorization_code); a client that only calls the
  // management API with client_credentials has none.
  redirect_uris: z.array(httpUrl).default([]),
  post_logout_redirect_uris: z.array(httpUrl).default([]),
  // First-party apps (the brand's own) are not shown the OIDC consent screen.
  first_party: z.boolean().default(false),
  // PKCE (S256) is required unless an app that cannot do it is explicitly relaxed.
  pkce_required: z.boolean().default(true),
  grant_types: z.array(z.enum(['authorization_code', 'refresh_token', 'client_credentials']))
    .default(['authorization_code', 'refresh_token']),
  // The scopes the client may ask for: OIDC scopes for sign-ins, API scopes (API_SCOPES) for
  // client_credentials tokens. Absent: any OIDC scope, and no API scope.
  scope: z.string().optional(),
  purposes: z.array(z.string()).default([]),
  profiling: z.boolean().default(true),
  // Overrides mfa.policy for sign-ins to this client.
  mfa: z.enum(MFA_POLICIES).optional(),
});

const throttleRule = z.strictObject({
  free_attempts: z.number().int().min(1),
  base_delay: duration,
  max_delay: duration,
});

// Standard Webhooks secrets: "whsec_" and the base64 of 24 to 64 random bytes, the HMAC key.
// https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md#signature-scheme
const webhookSecret = z.string().refine((text) => {
  const match = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(text);
  if (!match) return false;
  const bytes = Buffer.from(match[1]!, 'base64').length;
  return bytes >= 24 && bytes <= 64;
}, { message: 'expected "whsec_" followed by the base64 of 24 to 64 random bytes (e.g. "whsec_$(openssl rand -base64 32)")' });

const webhook = z.strictObject({
  // Names the endpoint in the database (its deliveries, its disabled state) and in logs and the
  // API. Without it the id is derived from the url, so a changed url is a new endpoint.
  id: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,63}$/, 'use lower-case letters, digits and _ . - (at most 64)').optional(),
  url: httpUrl,
  events: z.array(z.enum(EVENT_TYPES)).min(1),
  purposes: z.array(z.string()).default([]),
  format: z.enum(['standard', 'set']).default('standard'),
  // Every request is signed with each; the first is the current one (rotation: prepend a new one).
  secrets: z.array(webhookSecret).default([]),
});

const positiveDuration = duration.pipe(z.number().positive('must be longer than 0s'));

const base64Text = z.string().regex(/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/, 'expected base64, as the Firebase console shows it');

// Hashes imported from other systems that need project-wide parameters to be verified.
const importSettings = z.strictObject({
  // Firebase console → Authentication → Users → ⋮ → Password hash parameters. An empty signer
  // key: Firebase hashes are refused at import.
  firebase_scrypt: z.strictObject({
    signer_key: z.union([z.literal(''), base64Text]),
    salt_separator: z.union([z.literal(''), base64Text]),
    rounds: z.number().int().min(1).max(32),
    mem_cost: z.number().int().min(1).max(20),
  }),
});

// Lazy migration: the old system checks a password Parley has no usable hash for, once.
const legacyVerifySettings = z.strictObject({
  url: z.union([z.literal(''), httpUrl]),
  secret: z.union([z.literal(''), webhookSecret]),
  timeout: positiveDuration,
  allow_http_hosts: z.array(z.string().min(1)),
});

// The delivery worker: how webhooks are sent, retried and given up on.
const eventsSettings = z.strictObject({
  worker: z.boolean(),
  poll_interval: positiveDuration,
  batch_size: z.number().int().min(1).max(1000),
  parallel_batches: z.number().int().min(1).max(64),
  timeout: positiveDuration,
  retry_for: positiveDuration,
  backoff_base: positiveDuration,
  backoff_max: positiveDuration,
  allow_http_hosts: z.array(z.string().min(1)),
});

// How long Node's HTTP server waits for a slow client before answering 408 and closing.
const httpSettings = z.strictObject({
  headers_timeout: positiveDuration,
  request_timeout: positiveDuration,
}).superRefine((http, ctx) => {
  // Node refuses a headers timeout longer than the whole request's.
  if (http.headers_timeout > http.request_timeout) {
    ctx.addIssue({ code: 'custom', path: ['headers_timeout'], message: `must not be longer than http.request_timeout (${formatDuration(http.request_timeout)})` });
  }
});

// Secret material for an upstream identity provider: the value itself (fine in development), or
// where to read it at start — an environment variable or a file (a mounted secret). It is never
// logged; src/federation/settings.ts resolves it.
const secretSource = z.union([
  z.string().min(1),
  z.strictObject({ env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name') }),
  z.strictObject({ file: z.string().min(1) }),
], { message: 'expected the secret itself, { env: VARIABLE } or { file: path }' });

/** https, or plain http to this machine only (a development upstream such as Demo ID). */
const upstreamUrl = z.string().refine((text) => {
  try {
    return isSecureOrLoopback(new URL(text));
  } catch {
    return false;
  }
}, { message: 'expected an https URL (plain http only to localhost, 127.0.0.1 or ::1)' });

const claimNames = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);

// An upstream identity provider people can sign in with ("Continue with Google"). A preset fills
// in what is known about a big provider; see config/default.yaml for each kind.
const identityProvider = z.strictObject({
  // Names the provider in URLs and in the table of linked identities: never change it once used.
  id: z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/, 'use a lower-case letter, then letters, digits, _ or - (at most 32)'),
  type: z.enum(PROVIDER_TYPES).optional(),
  preset: z.enum(PRESET_NAMES).optional(),
  name: localizedText.optional(),
  client_id: z.string().min(1),
  client_secret: secretSource.optional(),
  // Sign in with Apple: Parley signs the client secret (an ES256 JWT) with the team's .p8 key.
  apple: z.strictObject({
    team_id: z.string().regex(/^[A-Z0-9]{10}$/, 'expected the 10-character Apple team ID'),
    key_id: z.string().regex(/^[A-Z0-9]{10}$/, 'expected the 10-character ID of the Sign in with Apple key'),
    private_key: secretSource,
  }).optional(),
  issuer: upstreamUrl.optional(),
  // Microsoft: common | organizations | consumers | a tenant ID or domain.
  tenant: z.string().regex(/^[A-Za-z0-9.-]+$/, 'expected common, organizations, consumers or a tenant ID').optional(),
  allowed_tenants: z.array(z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'expected a tenant ID (a GUID)')).optional(),
  authorization_endpoint: upstreamUrl.optional(),
  token_endpoint: upstreamUrl.optional(),
  userinfo_endpoint: upstreamUrl.optional(),
  emails_endpoint: upstreamUrl.optional(),
  scopes: z.array(z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, 'a scope is one word of printable ASCII')).min(1).optional(),
  claims: z.strictObject({
    subject: claimNames, email: claimNames, email_verified: claimNames, name: claimNames, locale: claimNames,
  }).partial().optional(),
  trust_email_verified: z.boolean().optional(),
  authorization_params: z.record(z.string().min(1), z.string()).optional(),
  sign_up: z.boolean().default(true),
  timeout: duration.pipe(z.number().positive('must be longer than 0s')).default(10),
});

// A document people accept to have an account: terms of service, privacy policy. A new version
// is accepted again at the next sign-in (src/consent/terms.ts).
const termsDocument = z.strictObject({
  // Names the document in the acceptance ledger: never change it once people accepted it.
  id: z.string().regex(/^[a-z][a-z0-9_-]{0,63}$/, 'use a lower-case letter, then letters, digits, _ or - (at most 64)'),
  // Bump it when the text changes materially: everyone accepts the new version at their next sign-in.
  version: z.number().int().positive(),
  title: localizedText,
  // One address, or one per language ({ en: …, ar: … }).
  url: z.union([httpUrl, z.record(z.string().min(2), httpUrl)]),
});

// Passkeys, TOTP with recovery codes, one-time email codes, and when a second factor is asked.
const mfaSettings = z.strictObject({
  policy: z.enum(MFA_POLICIES),
  passkeys: z.strictObject({
    enabled: z.boolean(),
    /** The WebAuthn relying party id; empty: the issuer's host. */
    rp_id: z.string().regex(/^$|^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/, 'expected a lower-case domain name such as example.com, or "" for the issuer\'s host'),
    rp_name: z.string().min(1),
    /** The pages passkeys are used on; empty: the issuer's origin. */
    origins: z.array(httpUrl.refine((text) => new URL(text).origin === text.replace(/\/$/, ''), { message: 'expected an origin: scheme, host and port, no path' })),
    challenge_ttl: positiveDuration,
    /** After a password sign-in, offer to add a passkey ("Sign in faster next time?"). */
    offer: z.boolean(),
  }),
  totp: z.strictObject({
    enabled: z.boolean(),
    /** The name authenticator apps show next to the account. */
    issuer: z.string().min(1),
  }),
  email_codes: z.strictObject({
    enabled: z.boolean(),
    ttl: positiveDuration,
    max_attempts: z.number().int().min(1).max(10),
    per_hour: z.number().int().min(1),
  }),
  throttle: z.strictObject({
    window: positiveDuration,
    free_attempts: z.number().int().min(1),
    base_delay: duration,
    max_delay: duration,
  }),
});

export const configSchema = z.strictObject({
  env: z.enum(['development', 'production', 'test']),
  issuer: httpUrl,
  port: z.number().int().min(0).max(65535),
  host: z.string().min(1),
  proxy: z.boolean(),
  // With proxy: true, which X-Forwarded-For entry is the client's (see config/default.yaml).
  forwarded_for: z.strictObject({
    hops: z.number().int().min(1).max(16),
    trusted_proxies: z.array(addressOrNetwork),
  }),
  database: z.strictObject({
    url: z.string(),
    data_dir: z.string().min(1),
    migrate_on_start: z.boolean(),
    pool_max: z.number().int().min(1),
    connection_timeout: duration,
    statement_timeout: duration,
  }),
  http: httpSettings,
  secrets: z.strictObject({
    cookie_keys: z.array(z.string().min(16, 'cookie keys must be at least 16 characters')).min(1),
    key_encryption: z.string().min(16, 'the key encryption secret must be at least 16 characters'),
  }),
  locales: z.strictObject({
    default: z.string().min(2),
    supported: z.array(z.string().min(2)).min(1),
  }),
  accounts: z.strictObject({
    require_verified_email: z.boolean(),
    password_min_length: z.number().int().min(8),
    password_max_length: z.number().int().min(64),
    argon2: z.strictObject({
      memory_kib: z.number().int().min(8192),
      iterations: z.number().int().min(1),
      parallelism: z.number().int().min(1),
    }),
    verification_ttl: duration,
    reset_ttl: duration,
  }),
  throttle: z.strictObject({
    window: duration,
    account: throttleRule,
    ip: throttleRule,
    // Password reset mails: requests per client network and per address in each window.
    password_reset: z.strictObject({
      per_email: z.number().int().min(1),
      per_ip: z.number().int().min(1),
      window: positiveDuration,
    }),
  }),
  mail: z.strictObject({
    from: z.string().min(3),
    smtp_url: z.string(),
    mailbox_dir: z.string().min(1),
  }),
  ttl: z.strictObject({
    access_token: duration,
    id_token: duration,
    refresh_token: duration,
    authorization_code: duration,
    interaction: duration,
    session: duration,
    grant: duration,
  }),
  logging: z.strictObject({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    // auto: human-readable lines in development when writing to a terminal, JSON otherwise.
    pretty: z.union([z.boolean(), z.literal('auto')]),
  }),
  metrics: z.strictObject({
    enabled: z.boolean(),
    // Scrapers are let in from these addresses, or with this bearer token.
    allow_ips: z.array(addressOrNetwork),
    bearer_token: z.string(),
  }),
  demo: z.strictObject({
    enabled: z.boolean(),
    client_id: z.string(),
    /** Development only: the port Demo ID runs on beside Parley; 0: off. */
    demo_id_port: z.number().int().min(0).max(65535),
  }),
  screensets: z.strictObject({
    dir: z.string().min(1),
    /** Reload changed files without a restart (default: in development). */
    watch: z.boolean().optional(),
    /** Serve /screensets/preview/:id outside development too (only behind an operator-only network). */
    preview: z.boolean().default(false),
  }),
  profiling: z.strictObject({
    max_questions_per_session: z.number().int().min(0),
    min_interval: duration,
    skip_cooldown: duration,
  }),
  purposes: z.record(z.string().regex(/^[a-z][a-z0-9_]*$/, 'purpose ids are lower_snake_case'), purpose),
  // The preference center's communication settings: each channel × topic is a toggle.
  communication: z.strictObject({
    channels: z.array(z.enum(['email', 'sms', 'push'])),
    topics: z.record(z.string().regex(/^[a-z][a-z0-9_]*$/, 'topic ids are lower_snake_case'), z.strictObject({ title: localizedText })),
  }),
  account: z.strictObject({
    /** Deleting the account or changing the email needs a sign-in at most this old. */
    recent_sign_in: duration,
  }),
  // The management API at /api/v1 and the statistics page at /stats.
  api: z.strictObject({
    /** The resource indicator (RFC 8707) and `aud` of the API's access tokens. */
    audience: httpUrl,
    /** Lifetime of a client_credentials access token (a JWT: it cannot be revoked before it expires). */
    access_token_ttl: duration,
    /** Email addresses of the accounts that may open the statistics page. */
    operators: z.array(z.string().regex(/^[^\s@]+@[^\s@]+$/, 'expected an email address')),
  }),
  clients: z.array(client),
  webhooks: z.array(webhook),
  events: eventsSettings,
  import: importSettings,
  legacy_verify: legacyVerifySettings,
  identity_providers: z.array(identityProvider),
  mfa: mfaSettings,
  terms: z.array(termsDocument),
  registration: z.strictObject({
    // 0: off. Otherwise registration asks for the date of birth and refuses anyone younger.
    minimum_age: z.number().int().min(0).max(120),
    // The purpose (legal_basis: legal_obligation) the date of birth is kept under.
    birthdate_purpose: z.string(),
  }),
}).superRefine((config, ctx) => {
  const seen = new Set<string>();
  config.clients.forEach((c, index) => {
    if (seen.has(c.client_id)) {
      ctx.addIssue({ code: 'custom', path: ['clients', index, 'client_id'], message: `duplicate client_id "${c.client_id}"` });
    }
    if (c.client_id === ACCOUNT_CLIENT_ID) {
      ctx.addIssue({ code: 'custom', path: ['clients', index, 'client_id'], message: `"${ACCOUNT_CLIENT_ID}" is the preference center's own client; choose another id` });
    }
    seen.add(c.client_id);
    if (c.grant_types.includes('authorization_code') && c.redirect_uris.length === 0) {
      ctx.addIssue({
        code: 'custom', path: ['clients', index, 'redirect_uris'],
        message: 'an app that signs users in (grant_types: authorization_code) needs at least one redirect URI',
      });
    }
    if (c.grant_types.includes('client_credentials')) {
      if (c.client_secret === undefined) {
        ctx.addIssue({ code: 'custom', path: ['clients', index, 'client_secret'], message: 'a client_credentials client authenticates with a client_secret' });
      }
      const apiScopes = (c.scope ?? '').split(' ').filter((s) => (API_SCOPES as readonly string[]).includes(s));
      if (apiScopes.length === 0) {
        ctx.addIssue({
          code: 'custom', path: ['clients', index, 'scope'],
          message: `a client_credentials client needs the API scopes it may ask for, e.g. scope: accounts:read segments:read (known: ${API_SCOPES.join(', ')})`,
        });
      }
    }
    (c.scope ?? '').split(' ').forEach((s) => {
      if (s.includes(':') && !(API_SCOPES as readonly string[]).includes(s)) {
        ctx.addIssue({ code: 'custom', path: ['clients', index, 'scope'], message: `unknown API scope "${s}" (known: ${API_SCOPES.join(', ')})` });
      }
    });
    c.purposes.forEach((p, j) => {
      if (!(p in config.purposes)) {
        ctx.addIssue({
          code: 'custom', path: ['clients', index, 'purposes', j],
          message: `unknown purpose "${p}"; declare it under purposes: (known: ${Object.keys(config.purposes).join(', ') || 'none'})`,
        });
      }
    });
  });
  if (!config.locales.supported.includes(config.locales.default)) {
    ctx.addIssue({ code: 'custom', path: ['locales', 'default'], message: `must be one of locales.supported (${config.locales.supported.join(', ')})` });
  }
  checkWebhooks(config, ctx);
  checkLegacyVerify(config.legacy_verify, ctx);
  checkIdentityProviders(config.identity_providers, ctx);
  checkRegistration(config, ctx);
  const termsIds = new Set<string>();
  config.terms.forEach((document, index) => {
    if (termsIds.has(document.id)) ctx.addIssue({ code: 'custom', path: ['terms', index, 'id'], message: `duplicate terms document id "${document.id}"` });
    termsIds.add(document.id);
  });
  checkPasskeyOrigins(config, ctx);
  // "required" sends users without a second factor to set one up: there must be one to set up.
  if (!config.mfa.totp.enabled && !config.mfa.passkeys.enabled) {
    const requiring = [
      ...(config.mfa.policy === 'required' ? [['mfa', 'policy']] : []),
      ...config.clients.flatMap((c, index) => (c.mfa === 'required' ? [['clients', index, 'mfa']] : [])),
    ];
    for (const path of requiring) {
      ctx.addIssue({ code: 'custom', path, message: 'a required second factor needs mfa.totp.enabled or mfa.passkeys.enabled' });
    }
  }
  if (config.demo.enabled && !seen.has(config.demo.client_id)) {
    ctx.addIssue({ code: 'custom', path: ['demo', 'client_id'], message: `the demo needs a client "${config.demo.client_id}" under clients:` });
  }
});

/**
 * A browser uses a passkey only on an origin whose host is the relying party id or a subdomain
 * of it (WebAuthn §5.1.3, "registrable domain suffix"); anything else would fail at the first
 * sign-in, so it stops the start instead.
 */
function checkPasskeyOrigins(config: { issuer: string; mfa: z.output<typeof mfaSettings> }, ctx: z.RefinementCtx): void {
  if (!config.mfa.passkeys.enabled) return;
  const { rp_id: rpId, origins } = config.mfa.passkeys;
  const relyingParty = rpId || new URL(config.issuer).hostname;
  const checked = origins.length > 0 ? origins : [config.issuer];
  checked.forEach((origin, index) => {
    const host = new URL(origin).hostname;
    if (host !== relyingParty && !host.endsWith(`.${relyingParty}`)) {
      ctx.addIssue({
        code: 'custom', path: origins.length > 0 ? ['mfa', 'passkeys', 'origins', index] : ['mfa', 'passkeys', 'rp_id'],
        message: `passkeys for "${relyingParty}" cannot be used on ${origin}: its host must be ${relyingParty} or a subdomain of it`,
      });
    }
  });
}

/** An age gate keeps the date of birth it asks for, under a purpose of the legal_obligation basis. */
function checkRegistration(config: { registration: { minimum_age: number; birthdate_purpose: string }; purposes: Record<string, { legal_basis: string }> }, ctx: z.RefinementCtx): void {
  const { minimum_age: minimumAge, birthdate_purpose: purposeId } = config.registration;
  if (minimumAge === 0) return;
  const purpose = config.purposes[purposeId];
  if (!purpose) {
    ctx.addIssue({
      code: 'custom', path: ['registration', 'birthdate_purpose'],
      message: `registration.minimum_age keeps the date of birth under a purpose: name one declared under purposes: with legal_basis: legal_obligation (known: ${Object.keys(config.purposes).join(', ') || 'none'})`,
    });
  } else if (purpose.legal_basis !== 'legal_obligation') {
    ctx.addIssue({
      code: 'custom', path: ['registration', 'birthdate_purpose'],
      message: `the date of birth is asked because the law requires it: purpose "${purposeId}" must have legal_basis: legal_obligation, not ${purpose.legal_basis}`,
    });
  }
}

interface WebhookSettings {
  webhooks: z.output<typeof webhook>[];
  events: z.output<typeof eventsSettings>;
  purposes: Record<string, unknown>;
}

/** https unless allowed, one endpoint per id, a secret exactly where the format needs one, known purposes. */
function checkWebhooks(config: WebhookSettings, ctx: z.RefinementCtx): void {
  const allowHttp = new Set(config.events.allow_http_hosts.map((h) => h.toLowerCase()));
  const names = new Set<string>();
  config.webhooks.forEach((w, index) => {
    const at = (...p: (string | number)[]) => ['webhooks', index, ...p];
    const { protocol } = new URL(w.url);
    const host = urlHost(w.url);
    if (protocol !== 'https:' && !allowHttp.has(host)) {
      ctx.addIssue({
        code: 'custom', path: at('url'),
        message: `webhooks must use https; plain http is allowed only to the hosts in events.allow_http_hosts (${[...allowHttp].join(', ') || 'none'}), not "${host}"`,
      });
    }
    const name = w.id ?? w.url;
    if (names.has(name)) {
      ctx.addIssue({ code: 'custom', path: at(w.id ? 'id' : 'url'), message: `duplicate webhook ${w.id ? 'id' : 'url'} "${name}"; give each endpoint its own id` });
    }
    names.add(name);
    if (w.format === 'standard' && w.secrets.length === 0) {
      // On the entry, not on the missing key: the entry is where the reader has to look.
      ctx.addIssue({ code: 'custom', path: at(), message: 'format standard signs with a shared secret: add secrets: ["whsec_..."]' });
    }
    if (w.format === 'set' && w.secrets.length > 0) {
      ctx.addIssue({ code: 'custom', path: at('secrets'), message: "format set is signed with the issuer's keys (receivers verify with the JWKS): remove secrets" });
    }
    w.purposes.forEach((p, j) => {
      if (!(p in config.purposes)) {
        ctx.addIssue({
          code: 'custom', path: at('purposes', j),
          message: `unknown purpose "${p}"; declare it under purposes: (known: ${Object.keys(config.purposes).join(', ') || 'none'})`,
        });
      }
    });
  });
}

/** The host of a URL as compared with an allow list: lower case, IPv6 without the brackets URL keeps ([::1]). */
export function urlHost(url: string): string {
  return new URL(url).hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
}

function checkLegacyVerify(settings: z.output<typeof legacyVerifySettings>, ctx: z.RefinementCtx): void {
  if (settings.url === '') return;
  const allowHttp = settings.allow_http_hosts.map((h) => h.toLowerCase());
  const host = urlHost(settings.url);
  // The request carries a password: it never travels in the clear beyond this machine.
  if (new URL(settings.url).protocol !== 'https:' && !allowHttp.includes(host)) {
    ctx.addIssue({
      code: 'custom', path: ['legacy_verify', 'url'],
      message: `must use https; plain http is allowed only to the hosts in legacy_verify.allow_http_hosts (${allowHttp.join(', ') || 'none'}), not "${host}"`,
    });
  }
  if (settings.secret === '') {
    ctx.addIssue({
      code: 'custom', path: ['legacy_verify', 'secret'],
      message: 'requests to legacy_verify.url are signed: set a secret "whsec_..." (environment PARLEY_LEGACY_VERIFY_SECRET)',
    });
  }
}

type IdentityProviderSettings = z.output<typeof identityProvider>;

/** What a preset fixes, what each type needs, and what may not be combined. */
function checkIdentityProviders(providers: IdentityProviderSettings[], ctx: z.RefinementCtx): void {
  const ids = new Set<string>();
  providers.forEach((p, index) => {
    const problem = (message: string, ...key: (string | number)[]) => ctx.addIssue({ code: 'custom', path: ['identity_providers', index, ...key], message });
    if (ids.has(p.id)) problem(`duplicate identity provider id "${p.id}"`, 'id');
    ids.add(p.id);
    const preset = p.preset ? PRESETS[p.preset] : undefined;
    if (preset && p.type && p.type !== preset.type) problem(`preset ${p.preset} is type ${preset.type}`, 'type');
    if (!preset && !p.type) problem('name the type (oidc or oauth2), or a preset (google, apple, microsoft, github)');
    if (!preset && p.name === undefined) problem('a provider without a preset needs a name to show on its button', 'name');
    const type = preset?.type ?? p.type;
    if (p.preset === 'apple') {
      if (!p.apple) problem('Sign in with Apple needs apple: { team_id, key_id, private_key } to sign its client secret');
      if (p.client_secret !== undefined) problem("Apple's client secret is a JWT Parley signs with apple.private_key: remove client_secret", 'client_secret');
    } else {
      if (p.apple) problem('apple: belongs to a provider with preset: apple', 'apple');
      if (preset && p.client_secret === undefined) problem(`${preset.name} needs the client_secret it issued for this app`, 'client_secret');
    }
    if (p.preset === 'microsoft') {
      if (p.issuer !== undefined) problem('the Microsoft issuer follows from tenant: set tenant instead', 'issuer');
      if (p.trust_email_verified === true) problem('Microsoft does not prove that an address belongs to the user (any tenant can set any email): it cannot be trusted', 'trust_email_verified');
    } else {
      if (p.tenant !== undefined) problem('tenant belongs to a provider with preset: microsoft', 'tenant');
      if (p.allowed_tenants !== undefined) problem('allowed_tenants belongs to a provider with preset: microsoft', 'allowed_tenants');
    }
    if (type === 'oidc') {
      if (!preset && p.issuer === undefined) problem('an OpenID provider needs its issuer (its discovery document is read from there)', 'issuer');
      for (const key of ['authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'emails_endpoint'] as const) {
        if (p[key] !== undefined) problem(`an OpenID provider's endpoints come from discovery: remove ${key}`, key);
      }
      if (p.scopes && !p.scopes.includes('openid')) problem('an OpenID provider needs the openid scope', 'scopes');
    }
    if (type === 'oauth2') {
      if (p.issuer !== undefined) problem('a plain OAuth 2.0 provider has no issuer to discover: give its endpoints', 'issuer');
      if (!preset) {
        for (const key of ['authorization_endpoint', 'token_endpoint', 'userinfo_endpoint'] as const) {
          if (p[key] === undefined) problem(`a plain OAuth 2.0 provider needs its ${key}`, key);
        }
        if (p.claims?.subject === undefined) problem("OAuth 2.0 has no standard user id: name the userinfo field that holds it, e.g. claims: { subject: id }", 'claims');
      }
    }
    Object.keys(p.authorization_params ?? {}).forEach((name) => {
      if (RESERVED_AUTHORIZATION_PARAMETERS.includes(name)) problem(`${name} is set by Parley itself`, 'authorization_params', name);
    });
  });
}

/** The configuration as the files and the environment give it, checked. */
export type ValidatedConfig = z.output<typeof configSchema>;

/** Read-only all the way down: the loaded configuration is frozen (src/config/derived.ts). */
export type DeepReadonly<T> =
  T extends ReadonlyMap<infer K, infer V> ? ReadonlyMap<K, DeepReadonly<V>>
    : T extends readonly (infer U)[] ? readonly DeepReadonly<U>[]
      : T extends object ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
        : T;

/** The configuration every part of Parley reads: checked, completed with what derives from it, frozen. */
export type Config = DeepReadonly<ValidatedConfig> & DerivedSettings;
export type ClientConfig = Config['clients'][number];
export type PurposeConfig = Config['purposes'][string];
export type LocalizedText = z.output<typeof localizedText>;
export type WebhookConfig = Config['webhooks'][number];
export type EventsConfig = Config['events'];
export type LegacyVerifyConfig = Config['legacy_verify'];
export type IdentityProviderConfig = Config['identity_providers'][number];
export type MfaConfig = Config['mfa'];
export type TermsDocumentConfig = Config['terms'][number];
export type RegistrationConfig = Config['registration'];
