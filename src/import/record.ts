// The import line format: one account per line of a JSON Lines file (and per element of a batch
// in the API). The Keycloak and Auth0 readers turn their users into this same shape, so that
// every source is checked by one schema and fails with the same messages. The README section
// "Moving to Parley" documents it field by field.
import { z } from 'zod';
import { isValidEmail, normalizeEmail } from '../accounts/email.ts';
import {
  encodeForeignHash, ForeignHashError, parseArgon2, parseBcrypt, parseDjango, parseFirebaseScrypt, parseKeycloakCredential,
  parsePbkdf2Phc, parseSaltedSha, parseSelfDescribing, type ForeignHash,
} from '../accounts/foreign-hashes.ts';
import { formatPath } from '../config/load.ts';

export type AnswerValue = string | number | boolean | string[];

export interface Identity { provider: string; subject: string }
export interface ImportedAnswer { questionId: string; value: AnswerValue; answeredAt: Date; purpose: string }
export interface ImportedConsent { purpose: string; version: number; action: 'granted' | 'withdrawn'; at: Date }
export interface ImportedCommunication { channel: string; topic: string; enabled: boolean; at: Date }

/** One account to import, checked and normalized. Absent fields leave an existing account's value alone. */
export interface ImportRecord {
  externalId?: string | undefined;
  /** Normalized as Parley stores addresses (NFKC, trimmed, lower case). */
  email: string;
  emailVerified: boolean;
  name?: string | undefined;
  locale?: string | undefined;
  createdAt?: Date | undefined;
  /** The value for accounts.password_hash: "$foreign$…" (or "$argon2id$…" for format parley). */
  passwordHash?: string | undefined;
  identities: Identity[];
  /** Several entries for one question are its history; the latest is the current answer. */
  answers: ImportedAnswer[];
  consents: ImportedConsent[];
  communication: ImportedCommunication[];
}

export interface RecordOptions {
  /** Times after this (plus a few minutes of clock skew) are refused: they have not happened yet. */
  now: Date;
  /** Whether import.firebase_scrypt holds the project's parameters; without them Firebase hashes are refused. */
  firebaseScrypt: boolean;
}

/** The most one record may carry: a line is held in memory whole. */
export const RECORD_LIMITS = { identities: 100, answers: 1000, consents: 1000, communication: 1000 } as const;
const CLOCK_SKEW_MS = 5 * 60_000;
// Built once: making the schema compiles its pattern, which would cost more than the check.
const ISO_DATE_TIME = z.iso.datetime({ offset: true });

const jsonText = z.union([z.string(), z.record(z.string(), z.unknown())]);

const passwordObject = z.discriminatedUnion('format', [
  z.strictObject({ format: z.enum(['bcrypt', 'argon2', 'pbkdf2', 'django', 'parley']), hash: z.string().min(1) }),
  z.strictObject({ format: z.literal('keycloak'), secret_data: jsonText, credential_data: jsonText }),
  z.strictObject({ format: z.literal('firebase-scrypt'), hash: z.string().min(1), salt: z.string() }),
  z.strictObject({
    format: z.enum(['sha256', 'sha512']),
    hash: z.string().min(1),
    hash_encoding: z.enum(['hex', 'base64']),
    salt: z.string().default(''),
    salt_encoding: z.enum(['utf8', 'hex', 'base64']).default('utf8'),
    salt_position: z.enum(['prefix', 'suffix']).optional(),
    password_encoding: z.enum(['utf8', 'utf16le', 'latin1']).default('utf8'),
  }),
]);

export type PasswordObject = z.input<typeof passwordObject>;
export const PASSWORD_FORMATS = ['bcrypt', 'argon2', 'pbkdf2', 'django', 'keycloak', 'firebase-scrypt', 'sha256', 'sha512', 'parley'] as const;

function foreignHashOf(input: z.output<typeof passwordObject>): ForeignHash {
  switch (input.format) {
    case 'bcrypt': return parseBcrypt(input.hash);
    case 'argon2': return parseArgon2(input.hash);
    case 'pbkdf2': return parsePbkdf2Phc(input.hash);
    case 'django': return parseDjango(input.hash);
    case 'parley': return parseArgon2(input.hash);
    case 'keycloak': return parseKeycloakCredential(input.secret_data, input.credential_data);
    case 'firebase-scrypt': return parseFirebaseScrypt(input.hash, input.salt);
    case 'sha256':
    case 'sha512':
      return parseSaltedSha({
        digest: input.format, hash: input.hash, hashEncoding: input.hash_encoding, salt: input.salt,
        saltEncoding: input.salt_encoding, saltPosition: input.salt_position, passwordEncoding: input.password_encoding,
      });
  }
}

/** The password field as it will be stored, or the reason it cannot be. */
function storedPasswordHash(value: unknown, options: RecordOptions, ctx: z.RefinementCtx): string | undefined {
  if (value === undefined || value === null) return undefined;
  let hash: ForeignHash;
  let parley = false;
  try {
    if (typeof value === 'string') {
      hash = parseSelfDescribing(value);
    } else {
      const parsed = passwordObject.safeParse(value);
      if (!parsed.success) {
        for (const issue of parsed.error.issues) ctx.addIssue({ code: 'custom', message: describeIssue(issue), path: issue.path as PropertyKey[] });
        return undefined;
      }
      const input = parsed.data;
      if (input.format === 'parley' && !input.hash.startsWith('$argon2id$')) {
        throw new ForeignHashError('format parley is an argon2id hash from another Parley\'s password_hash column');
      }
      hash = foreignHashOf(input);
      parley = input.format === 'parley';
    }
  } catch (error) {
    if (!(error instanceof ForeignHashError)) throw error;
    ctx.addIssue({ code: 'custom', message: error.message });
    return undefined;
  }
  if (hash.kind === 'firebase-scrypt' && !options.firebaseScrypt) {
    ctx.addIssue({ code: 'custom', message: 'Firebase hashes need the project\'s password hash parameters in import.firebase_scrypt' });
    return undefined;
  }
  // A Parley hash was made over the NFKC form of the password, exactly as this one's will be.
  return parley && hash.kind === 'argon2' ? hash.encoded : encodeForeignHash(hash);
}

function createSchema(options: RecordOptions) {
  const latest = options.now.getTime() + CLOCK_SKEW_MS;
  const timestamp = z.string()
    .refine((text) => ISO_DATE_TIME.safeParse(text).success,
      { message: 'expected an ISO 8601 date-time with a time zone, such as 2024-05-01T09:30:00Z' })
    .transform((text) => new Date(text))
    .refine((date) => date.getTime() <= latest, { message: 'is in the future' });
  const id = (max: number) => z.string().trim().min(1, 'must not be empty').max(max, `at most ${max} characters`);
  const list = <T extends z.ZodType>(item: T, max: number) => z.array(item).max(max, `at most ${max} entries`).default([]);

  return z.strictObject({
    external_id: id(255).optional(),
    email: z.string().transform((text, ctx) => {
      const email = normalizeEmail(text);
      if (!isValidEmail(email)) {
        ctx.addIssue({ code: 'custom', message: 'not a valid email address' });
        return z.NEVER;
      }
      return email;
    }),
    email_verified: z.boolean().default(false),
    name: id(200).nullish(),
    // BCP 47 language tags ("de", "pt-BR", "zh-Hant-TW"); "_" as some systems write it is accepted.
    locale: z.string().regex(/^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*$/, 'expected a language tag such as en, de or pt-BR')
      .transform((tag) => tag.replaceAll('_', '-')).nullish(),
    created_at: timestamp.optional(),
    password: z.unknown().optional().transform((value, ctx) => storedPasswordHash(value, options, ctx)),
    identities: list(z.strictObject({ provider: id(100), subject: id(255) }), RECORD_LIMITS.identities),
    answers: list(z.strictObject({
      question_id: id(100),
      value: z.union([z.string(), z.number().finite(), z.boolean(), z.array(z.string())],
        { error: 'expected a string, a number, true/false or a list of strings' }),
      answered_at: timestamp,
      purpose: id(100),
    }), RECORD_LIMITS.answers),
    consents: list(z.strictObject({
      purpose: id(100),
      version: z.number().int().positive(),
      action: z.enum(['granted', 'withdrawn']),
      at: timestamp,
    }), RECORD_LIMITS.consents),
    communication: list(z.strictObject({
      channel: id(100),
      topic: id(100),
      enabled: z.boolean(),
      at: timestamp,
    }), RECORD_LIMITS.communication),
  });
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return `unknown ${issue.keys.length === 1 ? 'key' : 'keys'} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  if (issue.code === 'invalid_type' && / received undefined$/.test(issue.message)) return `is required (${issue.expected})`;
  // The only discriminated union here is the password's format.
  if (issue.code === 'invalid_union' && 'discriminator' in issue) return `expected one of ${PASSWORD_FORMATS.map((o) => `"${o}"`).join(', ')}`;
  return issue.message;
}

/**
 * Where a reader took each line-format key from in its own format ({password: "credentials[0]"}),
 * so that a problem is named where the user can find it.
 */
export type SourceKeys = Readonly<Record<string, string>>;

/** "answers[0].answered_at: expected …; password: …": every problem of the record, with its key path. */
export function describeIssues(issues: readonly z.core.$ZodIssue[], sourceKeys: SourceKeys = {}): string {
  const where = (path: readonly PropertyKey[]) => {
    const [first, ...rest] = path;
    return formatPath(typeof first === 'string' && first in sourceKeys ? [sourceKeys[first]!, ...rest] : path);
  };
  return issues.flatMap((issue) => (issue.code === 'unrecognized_keys'
    ? issue.keys.map((key) => `${where([...issue.path, key])}: unknown key`)
    : [`${where(issue.path)}: ${describeIssue(issue)}`])).join('; ');
}

export type RecordResult = { ok: true; record: ImportRecord } | { ok: false; error: string };

export function createRecordParser(options: RecordOptions): (value: unknown, sourceKeys?: SourceKeys) => RecordResult {
  const schema = createSchema(options);
  return (value, sourceKeys) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, error: 'expected a JSON object (one account)' };
    const result = schema.safeParse(value);
    if (!result.success) return { ok: false, error: describeIssues(result.error.issues, sourceKeys) };
    const line = result.data;
    const identities = new Map(line.identities.map((i) => [`${i.provider}\u0000${i.subject}`, { provider: i.provider, subject: i.subject }]));
    return {
      ok: true,
      record: {
        externalId: line.external_id,
        email: line.email,
        emailVerified: line.email_verified,
        name: line.name ?? undefined,
        locale: line.locale ?? undefined,
        createdAt: line.created_at,
        passwordHash: line.password,
        identities: [...identities.values()],
        answers: line.answers.map((a) => ({ questionId: a.question_id, value: a.value, answeredAt: a.answered_at, purpose: a.purpose })),
        consents: line.consents.map((c) => ({ purpose: c.purpose, version: c.version, action: c.action, at: c.at })),
        communication: line.communication.map((c) => ({ channel: c.channel, topic: c.topic, enabled: c.enabled, at: c.at })),
      },
    };
  };
}
