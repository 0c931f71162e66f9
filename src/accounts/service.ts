import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { recordEvent } from '../events/outbox.ts';
import type { LegacyVerifier } from '../import/legacy-verify.ts';
import type { MailOutbox } from '../mail/outbox.ts';
import { clientNetwork } from '../ip-addresses.ts';
import type { DB } from '../storage/database.ts';
import type { Account, Database, EmailTokenPurpose } from '../storage/schema.ts';
import { emailProblem, isValidEmail, normalizeEmail, type EmailProblem } from './email.ts';
import { AccountError, AccountValidationError, type AccountErrorCode, type AccountField } from './errors.ts';
import { nameProblem } from './names.ts';
import type { Alongside } from './authentication-methods.ts';
import { createPasswordVerifier, parseStoredHash, type PasswordVerifier } from './password-verifier.ts';
import { checkPasswordPolicy, type PasswordHasher, type PasswordPolicy } from './passwords.ts';
import { createRequestLimits } from './request-limits.ts';
import type { Throttle } from './throttle.ts';

export type { Account };

export interface AccountsDeps {
  db: DB;
  config: Config;
  clock: () => Date;
  /** Mail is queued in the transaction of its token or change; the delivery worker sends it. */
  mail: MailOutbox;
  hasher: PasswordHasher;
  /**
   * Checks a stored hash, Parley's or one imported from another system ("$foreign$…"); without
   * it only Parley's own hashes match.
   */
  verifier?: PasswordVerifier;
  /**
   * legacy_verify: the old system, asked whether the password is right for an imported account
   * that has no password here yet. Absent when legacy_verify is not configured.
   */
  legacyVerifier?: LegacyVerifier | undefined;
  throttle: Throttle;
  logger: Logger;
  /**
   * Ends every session and revokes every grant and token of an account, inside the caller's
   * transaction. A password reset calls it (whoever knew the old password is signed out too), and
   * so does an email change (whoever was signed in under the old address is signed out too).
   */
  revokeSessions?: (trx: Transaction<Database>, accountId: string) => Promise<void>;
}

export interface RegisterInput {
  email: string;
  /** null: an account without a password, made with a passkey (stored by one of the `extras`). */
  password: string | null;
  /** The id the account must get: a passkey's user handle, chosen by the server before the account exists. */
  id?: string | undefined;
  name?: string | undefined;
  locale: string;
  /** The sign-in waiting for this registration; the verification link leads back to it. */
  interactionUid?: string | undefined;
  /**
   * What registering asks besides the account itself (the terms, a date of birth), each checked
   * by its owner: a problem is shown beside its field with the account's own and nothing is
   * stored; without any, each is recorded in the transaction that creates the account.
   */
  extras?: readonly RegistrationExtra[] | undefined;
}

export interface RegistrationExtra {
  problem?: { field: AccountField; code: AccountErrorCode } | undefined;
  record(trx: Transaction<Database>, accountId: string, now: Date): Promise<void>;
}

export type RegisterResult =
  | { outcome: 'signed_in'; account: Account }
  /** accountId is undefined when the address was already taken: the answer must look the same. */
  | { outcome: 'verification_required'; accountId: string | undefined };

export interface Accounts {
  normalizeEmail(email: string): string;
  validEmail(email: string): boolean;
  /**
   * What is wrong with an address as typed, if anything: for the pages to refuse it before it
   * reaches a sign-in, a reset or a throttle (an address that is none can have no account).
   */
  emailProblem(email: string): EmailProblem | undefined;
  register(input: RegisterInput): Promise<RegisterResult>;
  authenticate(input: { email: string; password: string; ip: string; interactionUid?: string | undefined }): Promise<Account>;
  findById(id: string): Promise<Account | undefined>;
  /** The language the person chose: their `locale` claim and the language of their mail. */
  setLocale(accountId: string, locale: string): Promise<void>;
  sendVerification(accountId: string, options: { locale: string; interactionUid?: string | undefined }): Promise<void>;
  verifyEmail(token: string): Promise<{ account: Account; interactionUid: string | null }>;
  /**
   * Mails a reset link to the address if it has an account and neither it nor the client is over
   * its limit. Answers alike in every case, after the same database work: the mail is queued in
   * the statements that look for the account, and sent later by the delivery worker.
   */
  requestPasswordReset(email: string, locale: string, ip: string): Promise<void>;
  checkResetToken(token: string): Promise<void>;
  resetPassword(token: string, newPassword: string): Promise<Account>;
  /**
   * Sends a confirmation link to a new address. Answers the same whether or not the address
   * belongs to another account (then no link is sent), so it reveals nothing.
   */
  requestEmailChange(accountId: string, newEmail: string, locale: string): Promise<void>;
  /**
   * Switches the account to the address the link confirms, spends every other pending link of
   * the account, signs it out everywhere, and tells the old address.
   */
  confirmEmailChange(token: string): Promise<Account>;
  /**
   * Sets the password of a signed-in account (the pages ask for a recent sign-in first), whether
   * it had one or not; `alongside` runs in its transaction with whether there was one before.
   */
  setPassword(accountId: string, newPassword: string, alongside?: Alongside<{ hadPassword: boolean }>): Promise<void>;
}

// Emailed tokens are 32 random bytes in base64url; only their SHA-256 is stored, so a copy of
// the table opens nothing.
const TOKEN_FORMAT = /^[A-Za-z0-9_-]{43}$/;
const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');

/** Email-change requests an account may make in an hour. */
const EMAIL_CHANGES_PER_HOUR = 5;

export function createAccounts(deps: AccountsDeps): Accounts {
  const { db, config, clock, mail, hasher, throttle, logger } = deps;
  const verifier = deps.verifier ?? createPasswordVerifier(hasher, {});
  const requestLimits = createRequestLimits(db, clock);

  const passwordPolicy = (email: string): PasswordPolicy => ({
    min: config.accounts.password_min_length,
    max: config.accounts.password_max_length,
    disallowed: [email, email.split('@')[0] ?? ''],
  });

  const findByEmail = (email: string) =>
    db.selectFrom('accounts').selectAll().where('email', '=', email).executeTakeFirst();
  const findById = (id: string) =>
    db.selectFrom('accounts').selectAll().where('id', '=', id).executeTakeFirst();

  /** A fresh emailed token: what goes in the link, its hash for the table, and when it expires. */
  function mintToken(purpose: EmailTokenPurpose, now: Date) {
    const token = randomBytes(32).toString('base64url');
    const ttl = purpose === 'reset_password' ? config.accounts.reset_ttl : config.accounts.verification_ttl;
    return { token, tokenHash: hashToken(token), expiresAt: new Date(now.getTime() + ttl * 1000) };
  }

  function newToken(accountId: string, purpose: EmailTokenPurpose, interactionUid: string | null, now: Date) {
    const { token, tokenHash, expiresAt } = mintToken(purpose, now);
    return {
      token,
      row: {
        token_hash: tokenHash,
        account_id: accountId,
        purpose,
        interaction_uid: interactionUid,
        expires_at: expiresAt,
        created_at: now,
      },
    };
  }

  /** Why a token cannot be used: it is past its time, or it is unknown, of another kind or spent. */
  async function tokenProblem(executor: Kysely<Database>, tokenHash: string, purpose: EmailTokenPurpose, now: Date): Promise<AccountError> {
    const row = await executor.selectFrom('email_tokens').select(['used_at', 'expires_at'])
      .where('token_hash', '=', tokenHash).where('purpose', '=', purpose).executeTakeFirst();
    if (row && row.used_at === null && row.expires_at <= now) return new AccountError('token_expired');
    return new AccountError('token_invalid');
  }

  /** Marks a token used, once: of two requests racing with the same token, one wins. */
  async function consumeToken(trx: Transaction<Database>, token: string, purpose: EmailTokenPurpose, now: Date) {
    if (!TOKEN_FORMAT.test(token)) throw new AccountError('token_invalid');
    const tokenHash = hashToken(token);
    const consumed = await trx.updateTable('email_tokens').set({ used_at: now })
      .where('token_hash', '=', tokenHash)
      .where('purpose', '=', purpose)
      .where('used_at', 'is', null)
      .where('expires_at', '>', now)
      .returning(['account_id', 'interaction_uid'])
      .executeTakeFirst();
    if (!consumed) throw await tokenProblem(trx, tokenHash, purpose, now);
    return consumed;
  }

  /** The account a usable token belongs to, without using the token up. */
  async function accountOfToken(token: string, purpose: EmailTokenPurpose): Promise<Account> {
    if (!TOKEN_FORMAT.test(token)) throw new AccountError('token_invalid');
    const now = clock();
    const tokenHash = hashToken(token);
    const account = await db.selectFrom('email_tokens')
      .innerJoin('accounts', 'accounts.id', 'email_tokens.account_id')
      .selectAll('accounts')
      .where('email_tokens.token_hash', '=', tokenHash)
      .where('email_tokens.purpose', '=', purpose)
      .where('email_tokens.used_at', 'is', null)
      .where('email_tokens.expires_at', '>', now)
      .executeTakeFirst();
    if (!account) throw await tokenProblem(db, tokenHash, purpose, now);
    return account;
  }

  /**
   * Runs a transaction that queues mail, then tells the delivery worker, which sends it at once
   * (it would find it at its next poll anyway).
   */
  async function withMail<T>(work: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    const result = await db.transaction().execute(work);
    mail.queued();
    return result;
  }

  /** A new verification link for the account, and its mail, in the caller's transaction. */
  async function queueVerification(trx: Transaction<Database>, account: Account, locale: string | null, interactionUid: string | null): Promise<void> {
    const now = clock();
    const { token, row } = newToken(account.id, 'verify_email', interactionUid, now);
    await trx.insertInto('email_tokens').values(row).execute();
    await mail.queue(trx, { accountId: account.id, address: account.email }, { kind: 'verify_email', locale, token }, now);
  }

  /**
   * Reset mails are limited per client network and per address, counted for unknown addresses
   * alike. The client network is counted first and its refusal stops there, so an address's
   * allowance is spent only by requests that would mail it: a client over its limit cannot use up
   * someone else's.
   */
  async function resetMailAllowed(email: string, ip: string): Promise<boolean> {
    const rule = config.throttle.password_reset;
    const allowed = await requestLimits.admit(`reset:ip:${clientNetwork(ip)}`, rule.per_ip, rule.window)
      && await requestLimits.admit(`reset:email:${email}`, rule.per_email, rule.window);
    if (!allowed) logger.info('password reset request over its limit: no mail sent');
    return allowed;
  }

  async function addressTaken(email: string, locale: string): Promise<RegisterResult> {
    // Usability over enumeration resistance: the person registering learns the address is taken.
    if (!config.accounts.require_verified_email) throw new AccountError('email_taken', { field: 'email' });
    // Otherwise the answer is the one a new address gets, and only the owner hears about it.
    const owner = await findByEmail(email);
    if (owner) {
      await withMail((trx) => mail.queue(trx, { accountId: owner.id, address: owner.email }, { kind: 'registration_attempt', locale: owner.locale ?? locale }, clock()));
    }
    return { outcome: 'verification_required', accountId: undefined };
  }

  return {
    normalizeEmail,

    validEmail: (email) => isValidEmail(normalizeEmail(email)),

    emailProblem: (email) => emailProblem(normalizeEmail(email)),

    async register(input) {
      const email = normalizeEmail(input.email);
      const name = input.name?.trim() || null;
      const problems: Partial<Record<AccountField, AccountErrorCode>> = {};
      const nameIssue = name === null ? undefined : nameProblem(name);
      if (nameIssue) problems.name = nameIssue;
      const addressIssue = emailProblem(email);
      if (addressIssue) problems.email = addressIssue;
      const passwordProblem = input.password === null ? undefined : checkPasswordPolicy(input.password, passwordPolicy(email));
      if (passwordProblem) problems.password = passwordProblem;
      for (const { problem } of input.extras ?? []) if (problem) problems[problem.field] ??= problem.code;
      if (Object.keys(problems).length > 0) throw new AccountValidationError(problems);

      // Hashed before knowing whether the address is taken, so both answers cost the same.
      const passwordHash = input.password === null ? null : await hasher.hash(input.password);
      const now = clock();
      const id = input.id ?? randomUUID();
      const verification = newToken(id, 'verify_email', input.interactionUid ?? null, now);
      const account = await withMail(async (trx) => {
        // ON CONFLICT makes a concurrent registration of the same address wait for the first
        // and then insert nothing, so a race ends as "taken" rather than as a unique violation.
        const created = await trx.insertInto('accounts').values({
          id,
          email,
          name,
          locale: input.locale,
          password_hash: passwordHash,
          email_verified_at: null,
          created_at: now,
          updated_at: now,
        }).onConflict((oc) => oc.column('email').doNothing()).returningAll().executeTakeFirst();
        if (!created) return undefined;
        await recordEvent(trx, { type: 'account.created', accountId: id, payload: { account_id: id, email_verified: false } }, now);
        for (const extra of input.extras ?? []) await extra.record(trx, id, now);
        await trx.insertInto('email_tokens').values(verification.row).execute();
        await mail.queue(trx, { accountId: id, address: email }, { kind: 'verify_email', locale: input.locale, token: verification.token }, now);
        return created;
      });
      if (!account) return addressTaken(email, input.locale);

      logger.info({ account_id: account.id }, 'account created');
      return config.accounts.require_verified_email
        ? { outcome: 'verification_required', accountId: account.id }
        : { outcome: 'signed_in', account };
    },

    async authenticate({ email: rawEmail, password, ip, interactionUid }) {
      const email = normalizeEmail(rawEmail);
      const attempt = { email, ip };
      // Reserved before the check, so a burst of attempts cannot all be checked at once.
      const reservation = await throttle.reserve(attempt);
      if (!reservation.granted) throw new AccountError('throttled', { retryAfterSeconds: reservation.retryAfterSeconds });

      // An unknown address, an account without a password (a passkey or an upstream provider
      // only) and a wrong password take the same time and get the same answer. An imported
      // account without a password asks the old system instead (legacy_verify), once: its
      // "no", its silence and its errors are all a wrong password here.
      let account: Account | undefined;
      let passwordHash: string | null = null;
      let check = { ok: false, needsRehash: false };
      try {
        account = isValidEmail(email) ? await findByEmail(email) : undefined;
        passwordHash = account?.password_hash ?? null;
        const kind = parseStoredHash(passwordHash).kind;
        if (kind === 'parley' || kind === 'foreign') {
          check = await verifier.verifyAny(passwordHash, password);
        } else if (account && passwordHash === null && account.external_id !== null && deps.legacyVerifier) {
          const verdict = await deps.legacyVerifier.verify(email, password);
          check = { ok: verdict.outcome === 'verified', needsRehash: verdict.outcome === 'verified' };
        } else {
          await hasher.verifyDummy(password);
        }
      } catch (error) {
        await throttle.release(attempt).catch(() => {}); // otherwise it lapses on its own
        throw error;
      }
      if (!account || !check.ok) {
        await throttle.recordFailure(attempt);
        throw new AccountError('invalid_credentials');
      }
      await throttle.recordSuccess(attempt);

      if (check.needsRehash) {
        // An imported hash (or the old system's yes) becomes Parley's own argon2id hash now, in
        // this request, so the old format is never checked again. Only if the stored value is
        // still the one just checked: a password reset in between wins.
        const rehashed = await db.updateTable('accounts')
          .set({ password_hash: await hasher.hash(password), updated_at: clock() })
          .where('id', '=', account.id)
          .where((eb) => (passwordHash === null ? eb('password_hash', 'is', null) : eb('password_hash', '=', passwordHash)))
          .returningAll()
          .executeTakeFirst();
        if (rehashed) {
          const was = passwordHash === null ? 'legacy_verify' : parseStoredHash(passwordHash).kind;
          logger.info({ account_id: account.id, was }, 'password rehashed with argon2id and the current parameters');
          account = rehashed;
        }
      }

      // Said only to someone who knows the password, so it reveals nothing to anyone else.
      if (config.accounts.require_verified_email && account.email_verified_at === null) {
        const unverified = account;
        await withMail((trx) => queueVerification(trx, unverified, unverified.locale ?? config.locales.default, interactionUid ?? null));
        throw new AccountError('email_not_verified');
      }
      return account;
    },

    findById,

    async setLocale(accountId, locale) {
      // Callers offer only supported locales; anything else would be a claim no page can honour.
      if (!config.locales.supported.includes(locale)) throw new Error(`locale ${locale} is not in locales.supported`);
      await db.updateTable('accounts').set({ locale, updated_at: clock() })
        .where('id', '=', accountId).where((eb) => eb('locale', 'is', null).or('locale', '<>', locale))
        .execute();
    },

    async sendVerification(accountId, { locale, interactionUid }) {
      const account = await findById(accountId);
      if (!account || account.email_verified_at !== null) return;
      await withMail((trx) => queueVerification(trx, account, locale, interactionUid ?? null));
    },

    async verifyEmail(token) {
      return db.transaction().execute(async (trx) => {
        const now = clock();
        const consumed = await consumeToken(trx, token, 'verify_email', now);
        const account = await trx.updateTable('accounts')
          .set((eb) => ({ email_verified_at: eb.fn.coalesce('email_verified_at', eb.val(now)), updated_at: now }))
          .where('id', '=', consumed.account_id)
          .returningAll()
          .executeTakeFirstOrThrow();
        logger.info({ account_id: account.id }, 'email verified');
        return { account, interactionUid: consumed.interaction_uid };
      });
    },

    async requestPasswordReset(rawEmail, locale, ip) {
      const email = normalizeEmail(rawEmail);
      if (!isValidEmail(email) || !await resetMailAllowed(email, ip)) return;
      // A token and a mail for the owner of the address, if there is one: the same two statements
      // run either way and write a row each or none, so the answer's timing tells nothing, and no
      // mail server is waited for.
      const now = clock();
      const { token, tokenHash, expiresAt } = mintToken('reset_password', now);
      await withMail(async (trx) => {
        await sql`
          insert into email_tokens (token_hash, account_id, purpose, expires_at, created_at)
          select ${tokenHash}::text, id, 'reset_password', ${expiresAt}::timestamptz, ${now}::timestamptz
          from accounts where email = ${email}
        `.execute(trx);
        await mail.queue(trx, { ownerOf: email }, { kind: 'reset_password', locale, token }, now);
      });
    },

    async checkResetToken(token) {
      await accountOfToken(token, 'reset_password');
    },

    async resetPassword(token, newPassword) {
      // The link first: with a dead link, a better password would not help.
      const owner = await accountOfToken(token, 'reset_password');
      const problem = checkPasswordPolicy(newPassword, passwordPolicy(owner.email));
      if (problem) throw new AccountValidationError({ password: problem });
      const passwordHash = await hasher.hash(newPassword);

      return db.transaction().execute(async (trx) => {
        const now = clock();
        const { account_id: accountId } = await consumeToken(trx, token, 'reset_password', now);
        // Any other reset link still in a mailbox stops working with this one.
        await trx.updateTable('email_tokens').set({ used_at: now })
          .where('account_id', '=', accountId)
          .where('purpose', '=', 'reset_password')
          .where('used_at', 'is', null)
          .execute();
        // Following the emailed link proved the address.
        const account = await trx.updateTable('accounts')
          .set((eb) => ({
            password_hash: passwordHash,
            email_verified_at: eb.fn.coalesce('email_verified_at', eb.val(now)),
            updated_at: now,
          }))
          .where('id', '=', accountId)
          .returningAll()
          .executeTakeFirstOrThrow();
        await throttle.clear(account.email, trx);
        await deps.revokeSessions?.(trx, account.id);
        logger.info({ account_id: account.id }, 'password reset');
        return account;
      });
    },

    async setPassword(accountId, newPassword, alongside) {
      const account = await findById(accountId);
      if (!account) throw new AccountError('invalid_credentials');
      const problem = checkPasswordPolicy(newPassword, passwordPolicy(account.email));
      if (problem) throw new AccountValidationError({ password: problem });
      const passwordHash = await hasher.hash(newPassword);
      await db.transaction().execute(async (trx) => {
        const before = await trx.selectFrom('accounts').select('password_hash').where('id', '=', accountId).forUpdate().executeTakeFirstOrThrow();
        await trx.updateTable('accounts').set({ password_hash: passwordHash, updated_at: clock() }).where('id', '=', accountId).execute();
        await alongside?.(trx, { hadPassword: before.password_hash !== null });
      });
      logger.info({ account_id: accountId }, 'password set');
    },

    async requestEmailChange(accountId, newEmail, locale) {
      const email = normalizeEmail(newEmail);
      const problem = emailProblem(email);
      if (problem) throw new AccountValidationError({ email: problem });
      const account = await findById(accountId);
      if (!account || account.email === email) return;
      // A few requests an hour: enough for typos, too few to probe which addresses are registered.
      // Counted and decided in one statement, so requests sent together cannot all slip past.
      if (!await requestLimits.admit(`email_change:${accountId}`, EMAIL_CHANGES_PER_HOUR, 3600)) {
        throw new AccountError('too_many_requests', { retryAfterSeconds: 3600 });
      }
      // Every request stores a token, so taken and free addresses cost the same and count the same;
      // only a free address is sent the link (the owner of a taken one did not ask for anything),
      // decided in the statement that queues it.
      const now = clock();
      const { token, row } = newToken(accountId, 'change_email', null, now);
      const sent = await withMail(async (trx) => {
        await trx.insertInto('email_tokens').values({ ...row, new_email: email }).execute();
        return mail.queue(trx, { accountId, address: email, unlessTaken: true }, { kind: 'change_email', locale, token }, now);
      });
      if (!sent) logger.info({ account_id: accountId }, 'email change to an address in use: no link sent');
    },

    async confirmEmailChange(token) {
      const account = await withMail(async (trx) => {
        const now = clock();
        const consumed = await consumeToken(trx, token, 'change_email', now);
        const { new_email: newEmail } = await trx.selectFrom('email_tokens').select('new_email')
          .where('token_hash', '=', hashToken(token)).executeTakeFirstOrThrow();
        const before = await trx.selectFrom('accounts').select('email').where('id', '=', consumed.account_id).forUpdate().executeTakeFirst();
        if (!newEmail || !before) throw new AccountError('token_invalid');
        // Taken since the link was sent: the unique index would refuse it anyway; say so plainly.
        if (await trx.selectFrom('accounts').select('id').where('email', '=', newEmail).executeTakeFirst()) {
          throw new AccountError('email_taken', { field: 'email' });
        }
        const updated = await trx.updateTable('accounts')
          .set({ email: newEmail, email_verified_at: now, updated_at: now })
          .where('id', '=', consumed.account_id).returningAll().executeTakeFirstOrThrow();
        // Every other pending link of this account is spent: older changes, verifications, and
        // above all password resets, which went to the old address and would otherwise still
        // set a password for the new one.
        await trx.updateTable('email_tokens').set({ used_at: now })
          .where('account_id', '=', updated.id).where('used_at', 'is', null)
          .where('purpose', 'in', ['change_email', 'verify_email', 'reset_password']).execute();
        // As after a password reset, every session, grant and token of the account ends, this
        // browser's too: whoever was signed in under the old address (or still reads its mailbox)
        // is out, and the owner signs in again with the address just proven. Keeping only the
        // confirming browser's session would not be simpler or safer: the link is often opened
        // in another browser (a phone's mail app), which has no session of the account to keep.
        await deps.revokeSessions?.(trx, updated.id);
        // The old address hears of it, in case its owner did not do this.
        await mail.queue(trx, { accountId: updated.id, address: before.email }, { kind: 'email_changed', locale: updated.locale }, now);
        return updated;
      });
      logger.info({ account_id: account.id }, 'email address changed');
      return account;
    },
  };
}
