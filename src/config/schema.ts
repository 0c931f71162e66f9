import { z } from 'zod';
import { parseDuration } from './duration.ts';

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

const localizedText = z.union([z.string().min(1), z.record(z.string().min(2), z.string().min(1))]);

export const LEGAL_BASES = [
  'consent', 'contract', 'legitimate_interest', 'legal_obligation', 'public_interest', 'vital_interest',
] as const;

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
  redirect_uris: z.array(httpUrl).min(1),
  post_logout_redirect_uris: z.array(httpUrl).default([]),
  // First-party apps (the brand's own) are not shown the OIDC consent screen.
  first_party: z.boolean().default(false),
  // PKCE (S256) is required unless an app that cannot do it is explicitly relaxed.
  pkce_required: z.boolean().default(true),
  grant_types: z.array(z.enum(['authorization_code', 'refresh_token', 'client_credentials']))
    .default(['authorization_code', 'refresh_token']),
  scope: z.string().optional(),
  purposes: z.array(z.string()).default([]),
  profiling: z.boolean().default(true),
});

const throttleRule = z.strictObject({
  free_attempts: z.number().int().min(1),
  base_delay: duration,
  max_delay: duration,
});

const webhook = z.strictObject({
  url: httpUrl,
  events: z.array(z.string()).min(1),
  purposes: z.array(z.string()).default([]),
  format: z.enum(['standard', 'set']).default('standard'),
  secret: z.string().optional(),
});

export const configSchema = z.strictObject({
  env: z.enum(['development', 'production', 'test']),
  issuer: httpUrl,
  port: z.number().int().min(0).max(65535),
  host: z.string().min(1),
  proxy: z.boolean(),
  database: z.strictObject({
    url: z.string(),
    data_dir: z.string().min(1),
    migrate_on_start: z.boolean(),
    pool_max: z.number().int().min(1),
    connection_timeout: duration,
    statement_timeout: duration,
  }),
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
    allow_ips: z.array(z.string()),
    bearer_token: z.string(),
  }),
  demo: z.strictObject({
    enabled: z.boolean(),
    client_id: z.string(),
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
  clients: z.array(client),
  webhooks: z.array(webhook),
}).superRefine((config, ctx) => {
  const seen = new Set<string>();
  config.clients.forEach((c, index) => {
    if (seen.has(c.client_id)) {
      ctx.addIssue({ code: 'custom', path: ['clients', index, 'client_id'], message: `duplicate client_id "${c.client_id}"` });
    }
    seen.add(c.client_id);
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
  if (config.demo.enabled && !seen.has(config.demo.client_id)) {
    ctx.addIssue({ code: 'custom', path: ['demo', 'client_id'], message: `the demo needs a client "${config.demo.client_id}" under clients:` });
  }
});

export type Config = z.output<typeof configSchema>;
export type ClientConfig = Config['clients'][number];
export type PurposeConfig = Config['purposes'][string];
export type LocalizedText = z.output<typeof localizedText>;
