import { Secret, TOTP } from 'otpauth';
import encodeQR from 'qr';
import type { Config } from '../config/schema.ts';
import type { DB } from '../storage/database.ts';
import { seal as sealValue, unseal as unsealValue } from '../storage/sealed.ts';
import type { Alongside } from './authentication-methods.ts';
import { CredentialError } from './credential-errors.ts';
import type { SecondFactorThrottle } from './second-factor-throttle.ts';

// Authenticator-app codes (RFC 6238). The parameters are the ones every app understands: SHA-1,
// 6 digits, 30-second steps, a 160-bit secret (RFC 4226 §4 recommends 160 bits). A code of the
// step before or after the current one is accepted, for clocks that drift (RFC 6238 §5.2), and a
// step once accepted is never accepted again, nor any earlier one.

const DIGITS = 6;
const PERIOD = 30;
const ALGORITHM = 'SHA1';
const WINDOW = 1;
const SECRET_BYTES = 20;
const CODE_FORMAT = /^\d{6}$/;

export interface TotpEnrolment {
  /** Base32, for typing into an app by hand. */
  secret: string;
  /** The otpauth:// URI the QR code carries. */
  uri: string;
  /** The QR code as an SVG document, rendered here: the page needs no remote image or script. */
  qrSvg: string;
}

export interface Totp {
  /**
   * Starts (or restarts) an enrolment with a new secret. The account has a second factor only
   * once confirm() has accepted a first code. Refused when one is confirmed already: remove it first.
   */
  begin(accountId: string, accountLabel: string): Promise<TotpEnrolment>;
  /** Accepts the first code of a pending enrolment; throttled like any second-factor code. */
  confirm(accountId: string, code: string, alongside?: Alongside): Promise<void>;
  /** Checks a code of a confirmed enrolment: right, within one step, and of a step not used before. */
  verify(accountId: string, code: string, alongside?: Alongside): Promise<void>;
  isEnrolled(accountId: string): Promise<boolean>;
  /** Removes the enrolment (confirmed or pending). False when there was none. */
  remove(accountId: string, alongside?: Alongside): Promise<boolean>;
}

export interface TotpDeps {
  db: DB;
  config: Config;
  clock: () => Date;
  throttle: SecondFactorThrottle;
}

/**
 * The QR code as a standalone SVG: dark modules on its own white ground with the four-module
 * quiet zone (ISO/IEC 18004 §6.3.8), so it scans on a dark page too. Medium error correction
 * survives a smudged screen.
 */
export function qrCodeSvg(text: string): string {
  const svg = encodeQR(text, 'svg', { ecc: 'medium', border: 4 });
  return svg.replace(/^<svg ([^>]*)>/, '<svg $1 role="img"><rect width="100%" height="100%" fill="#fff"/>');
}

const totpOf = (secret: Secret, issuer = '', label = '') =>
  new TOTP({ issuer, label, secret, algorithm: ALGORITHM, digits: DIGITS, period: PERIOD });

export function createTotp(deps: TotpDeps): Totp {
  const { db, config, clock, throttle } = deps;
  const encryptionSecret = config.secrets.key_encryption;

  function ensureEnabled(): void {
    if (!config.mfa.totp.enabled) throw new CredentialError('method_disabled');
  }

  // The secret is sealed as a symmetric JWK (RFC 7517 §6.4, kty "oct"), the shape the first
  // enrolments were stored in.
  const seal = (secret: Secret) => sealValue({ kty: 'oct', k: Buffer.from(secret.bytes).toString('base64url') }, encryptionSecret);
  const unseal = (accountId: string, sealed: string) => {
    const { k } = unsealValue<{ k?: string }>(`the authenticator-app secret of account ${accountId}`, sealed, encryptionSecret);
    return new Secret({ buffer: new Uint8Array(Buffer.from(k ?? '', 'base64url')).buffer });
  };

  /** The time-step the code belongs to, when it is right within the window. */
  function matchingStep(secret: Secret, code: string, now: Date): number | undefined {
    const token = code.replace(/\s+/g, '');
    if (!CODE_FORMAT.test(token)) return undefined;
    const totp = totpOf(secret);
    const delta = totp.validate({ token, timestamp: now.getTime(), window: WINDOW });
    return delta === null ? undefined : totp.counter({ timestamp: now.getTime() }) + delta;
  }

  /**
   * Counts the attempt, then finds the time-step a code belongs to under the account's pending or
   * confirmed secret. The step's use is the caller's conditional update.
   */
  async function checkCode(accountId: string, code: string, state: 'pending' | 'confirmed') {
    ensureEnabled();
    await throttle.reserve(accountId);
    const row = await db.selectFrom('totp_secrets').select('secret_encrypted')
      .where('account_id', '=', accountId).where('confirmed_at', state === 'pending' ? 'is' : 'is not', null).executeTakeFirst();
    if (!row) throw new CredentialError('totp_not_enrolled');
    const now = clock();
    const step = matchingStep(unseal(accountId, row.secret_encrypted), code, now);
    if (step === undefined) throw new CredentialError('code_invalid');
    return { step, sealed: row.secret_encrypted, now };
  }

  return {
    async begin(accountId, accountLabel) {
      ensureEnabled();
      const secret = new Secret({ size: SECRET_BYTES });
      const sealed = seal(secret);
      const now = clock();
      // One statement: a pending enrolment is replaced, a confirmed one never.
      const stored = await db.insertInto('totp_secrets')
        .values({ account_id: accountId, secret_encrypted: sealed, confirmed_at: null, last_used_step: null, created_at: now })
        .onConflict((oc) => oc.column('account_id')
          .doUpdateSet({ secret_encrypted: sealed, last_used_step: null })
          .where('totp_secrets.confirmed_at', 'is', null))
        .returning('account_id')
        .executeTakeFirst();
      if (!stored) throw new CredentialError('totp_already_enrolled');
      const uri = totpOf(secret, config.mfa.totp.issuer, accountLabel).toString();
      return { secret: secret.base32, uri, qrSvg: qrCodeSvg(uri) };
    },

    async confirm(accountId, code, alongside) {
      const { step, sealed, now } = await checkCode(accountId, code, 'pending');
      await db.transaction().execute(async (trx) => {
        // Only the secret the code was checked against: a restarted enrolment in between wins.
        const confirmed = await trx.updateTable('totp_secrets')
          .set({ confirmed_at: now, last_used_step: step })
          .where('account_id', '=', accountId)
          .where('confirmed_at', 'is', null)
          .where('secret_encrypted', '=', sealed)
          .returning('account_id')
          .executeTakeFirst();
        if (!confirmed) throw new CredentialError('totp_not_enrolled');
        await throttle.clear(trx, accountId);
        await alongside?.(trx);
      });
    },

    async verify(accountId, code, alongside) {
      const { step } = await checkCode(accountId, code, 'confirmed');
      await db.transaction().execute(async (trx) => {
        // The check of the step and its use are one statement: of two requests with the same
        // code, one wins (RFC 6238 §5.2: a code is accepted once).
        const accepted = await trx.updateTable('totp_secrets')
          .set({ last_used_step: step })
          .where('account_id', '=', accountId)
          .where('confirmed_at', 'is not', null)
          .where((eb) => eb.or([eb('last_used_step', 'is', null), eb('last_used_step', '<', step)]))
          .returning('account_id')
          .executeTakeFirst();
        if (!accepted) throw new CredentialError('code_replayed');
        await throttle.clear(trx, accountId);
        await alongside?.(trx);
      });
    },

    async isEnrolled(accountId) {
      const row = await db.selectFrom('totp_secrets').select('account_id')
        .where('account_id', '=', accountId).where('confirmed_at', 'is not', null).executeTakeFirst();
      return row !== undefined;
    },

    async remove(accountId, alongside) {
      return db.transaction().execute(async (trx) => {
        const removed = await trx.deleteFrom('totp_secrets').where('account_id', '=', accountId).returning('account_id').executeTakeFirst();
        if (removed) await alongside?.(trx);
        return removed !== undefined;
      });
    },
  };
}
