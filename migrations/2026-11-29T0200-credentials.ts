import { sql, type Kysely } from 'kysely';

// Ways to sign in besides the password, and second factors: passkeys (WebAuthn), TOTP with its
// recovery codes, one-time email codes, and a throttle for wrong second-factor codes.
export async function up(db: Kysely<unknown>): Promise<void> {
  // An account registered with a passkey alone, or through an upstream provider, has no password.
  await db.schema.alterTable('accounts').alterColumn('password_hash', (c) => c.dropNotNull()).execute();

  await db.schema.createTable('webauthn_credentials')
    // The credential id the authenticator chose, base64url: the browser sends it back with each assertion.
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id').onDelete('cascade'))
    // The COSE public key as the authenticator encoded it.
    .addColumn('public_key', 'bytea', (c) => c.notNull())
    // The signature counter is an unsigned 32-bit number: more than an integer holds.
    .addColumn('counter', 'bigint', (c) => c.notNull().check(sql`counter >= 0`))
    .addColumn('transports', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    // Backup eligibility is fixed for the life of a credential and is what WebAuthn calls a
    // multi-device (synced) credential; the backup state may change and is refreshed at each use.
    .addColumn('backup_eligible', 'boolean', (c) => c.notNull())
    .addColumn('backed_up', 'boolean', (c) => c.notNull())
    .addColumn('aaguid', 'text')
    .addColumn('name', 'text')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('last_used_at', 'timestamptz')
    .execute();
  await db.schema.createIndex('webauthn_credentials_account').on('webauthn_credentials').column('account_id').execute();

  await db.schema.createTable('webauthn_challenges')
    .addColumn('challenge', 'text', (c) => c.primaryKey())
    .addColumn('purpose', 'text', (c) => c.notNull().check(sql`purpose in ('registration', 'authentication')`))
    // The sign-in or session the challenge was handed to: only it may answer it.
    .addColumn('binding', 'text', (c) => c.notNull())
    // Registration: the account the passkey will belong to, which for a registration with a
    // passkey alone does not exist yet (hence no foreign key). Authentication: the account when
    // the sign-in already knows it (a second factor, a step-up); null for a passkey sign-in.
    .addColumn('account_id', 'text')
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('webauthn_challenges_expires').on('webauthn_challenges').column('expires_at').execute();

  await db.schema.createTable('totp_secrets')
    .addColumn('account_id', 'text', (c) => c.primaryKey().references('accounts.id').onDelete('cascade'))
    // AES-256-GCM under secrets.key_encryption, as the signing keys are.
    .addColumn('secret_encrypted', 'text', (c) => c.notNull())
    // Null while enrolment waits for its first code.
    .addColumn('confirmed_at', 'timestamptz')
    // The time-step of the last accepted code: that code and every earlier one are refused (RFC 6238 §5.2).
    .addColumn('last_used_step', 'bigint')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema.createTable('recovery_codes')
    .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id').onDelete('cascade'))
    .addColumn('code_hash', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('used_at', 'timestamptz')
    .addPrimaryKeyConstraint('recovery_codes_pk', ['account_id', 'code_hash'])
    .execute();

  await db.schema.createTable('email_codes')
    .addColumn('id', 'text', (c) => c.primaryKey())
    // Codes are issued to an address whether or not an account has it, so the table is keyed by
    // the address; the account is looked up when the code is used.
    .addColumn('email', 'text', (c) => c.notNull())
    .addColumn('purpose', 'text', (c) => c.notNull().check(sql`purpose in ('sign_in')`))
    .addColumn('code_hash', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('used_at', 'timestamptz')
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    // Issue order: "the newest code" even when two were issued within the same millisecond.
    .addColumn('seq', 'bigint', (c) => c.notNull().generatedAlwaysAsIdentity())
    .execute();
  // Only the newest code of an address counts; issuing counts the codes of the last hour.
  await db.schema.createIndex('email_codes_email').on('email_codes').columns(['email', 'purpose', 'seq']).execute();
  await db.schema.createIndex('email_codes_recent').on('email_codes').columns(['email', 'purpose', 'created_at']).execute();
  await db.schema.createIndex('email_codes_expires').on('email_codes').column('expires_at').execute();

  // Wrong second-factor codes per account. Apart from the sign-in throttle on purpose: a correct
  // password must not clear the count of someone guessing the second factor behind it.
  await db.schema.createTable('second_factor_throttle')
    .addColumn('account_id', 'text', (c) => c.primaryKey().references('accounts.id').onDelete('cascade'))
    .addColumn('attempts', 'integer', (c) => c.notNull())
    .addColumn('last_attempt_at', 'timestamptz', (c) => c.notNull())
    .addColumn('blocked_until', 'timestamptz')
    .execute();
}
