// The second-factor step of a sign-in (the mfa prompt, src/oidc/mfa-prompt.ts): a code from an
// authenticator app or a recovery code, or, for someone who must have a second factor and has
// none, setting up an authenticator app first (its first code proves it). Each step records its
// proof with the sign-in, and the interaction policy decides what comes next.
import type { Context } from 'koa';
import type { Proof } from '../../accounts/authentication-methods.ts';
import { CredentialError } from '../../accounts/credential-errors.ts';
import type { RecoveryCodes } from '../../accounts/recovery-codes.ts';
import type { Accounts } from '../../accounts/service.ts';
import type { EmailCodes } from '../../accounts/email-codes.ts';
import type { PasskeyOffers } from '../../accounts/passkey-offers.ts';
import type { MailOutbox } from '../../mail/outbox.ts';
import type { Passkeys } from '../../accounts/passkeys.ts';
import type { Totp } from '../../accounts/totp.ts';
import type { Interactions, InteractionView } from '../../oidc/interactions.ts';
import type { MfaPromptDetails } from '../../oidc/mfa-prompt.ts';
import { type PageResponder } from '../context.ts';
import { errorStatus } from '../errors.ts';
import { passkeyForm } from './passkey.ts';
import { interactionUrls, seeOther, type Step } from './steps.ts';

/** What the second-factor steps use of the account services; the security mail and events go with each use. */
export interface SecondFactorServices {
  totp: Totp;
  recoveryCodes: RecoveryCodes;
  passkeys: Passkeys;
  /** Runs alongside a recovery code's use (security mail, event), in its transaction. */
  onRecoveryCodeUsed?: (accountId: string) => Parameters<RecoveryCodes['verify']>[2];
  /** Runs alongside a confirmed enrolment (security mail, event), in its transaction. */
  onTotpEnrolled?: (accountId: string) => Parameters<Totp['confirm']>[2];
  /** "Email me a code" on the sign-in page, and the outbox its mail goes through. */
  emailCodes: EmailCodes;
  mail: Pick<MailOutbox, 'queue' | 'queued'>;
  /** "Sign in faster next time?" after a password sign-in. */
  passkeyOffers: PasskeyOffers;
  /** Runs alongside a passkey added during a sign-in (security mail, event), in its transaction. */
  onPasskeyAdded?: (accountId: string) => Parameters<Passkeys['register']>[1];
}

export interface SecondFactorStepDeps {
  accounts: Pick<Accounts, 'findById'>;
  interactions: Interactions;
  pages: PageResponder;
  credentials: SecondFactorServices;
  clock: () => Date;
}

export function secondFactorSteps(deps: SecondFactorStepDeps) {
  const { accounts, interactions, pages, credentials, clock } = deps;
  const { totp, recoveryCodes } = credentials;

  function codePage(ctx: Context, interaction: InteractionView, mfa: MfaPromptDetails, error?: { form: 'totp' | 'recovery' | 'passkey'; problem: CredentialError }) {
    const urls = interactionUrls(interaction.uid);
    const message = error ? pages.errorMessage(ctx, error.problem) : undefined;
    pages.page(ctx, 'second_factor', {
      csrfToken: pages.csrf(ctx), clientName: interaction.clientName,
      totp: mfa.methods.includes('totp') ? { action: urls.mfaTotp, error: error?.form === 'totp' ? message : undefined } : undefined,
      recovery: mfa.methods.includes('recovery_code')
        ? { action: urls.mfaRecovery, open: error?.form === 'recovery' || !mfa.methods.includes('totp'), error: error?.form === 'recovery' ? message : undefined }
        : undefined,
      passkey: mfa.methods.includes('passkey')
        ? { ...passkeyForm(interaction.uid), error: error?.form === 'passkey' ? message : undefined } : undefined,
      abortAction: urls.abort,
    }, error ? errorStatus(error.problem) : 200);
  }

  function enrolPage(ctx: Context, interaction: InteractionView, mfa: MfaPromptDetails, error?: CredentialError) {
    const urls = interactionUrls(interaction.uid);
    pages.page(ctx, 'second_factor_enrol', {
      csrfToken: pages.csrf(ctx), clientName: interaction.clientName,
      totpAction: mfa.methods.includes('totp') ? urls.mfaEnrol : undefined, abortAction: urls.abort,
      passkey: mfa.methods.includes('passkey') ? { action: urls.passkeyRegister, optionsAction: urls.passkeyRegisterOptions } : undefined,
      error: error ? pages.errorMessage(ctx, error) : undefined,
    }, error ? errorStatus(error) : 200);
  }

  async function qrPage(ctx: Context, interaction: InteractionView, error?: CredentialError) {
    const urls = interactionUrls(interaction.uid);
    const account = await accounts.findById(accountOf(interaction));
    // A fresh secret each time the page is made: the one shown is the one confirmed.
    const enrolment = error ? undefined : await totp.begin(accountOf(interaction), account?.email ?? accountOf(interaction));
    pages.page(ctx, 'second_factor_qr', {
      csrfToken: pages.csrf(ctx), action: urls.mfaEnrolConfirm, restartAction: urls.mfaEnrol,
      qrImage: enrolment ? svgDataUrl(enrolment.qrSvg) : undefined, secret: enrolment?.secret, error: error ? pages.errorMessage(ctx, error) : undefined,
    }, error ? errorStatus(error) : 200);
  }

  const show: Step = async (ctx, { interaction }) => {
    const mfa = detailsOf(interaction);
    if (mfa.outcome === 'enrol') return enrolPage(ctx, interaction, mfa);
    codePage(ctx, interaction, mfa);
  };

  /** A failed code shows its form again with the reason; anything else is not this step's. */
  const answerFailure = (form: 'totp' | 'recovery'): Step => async (ctx, { interaction }, next) => {
    try {
      await next();
    } catch (error) {
      if (!(error instanceof CredentialError)) throw error;
      codePage(ctx, interaction, detailsOf(interaction), { form, problem: error });
    }
  };

  const finish = async (ctx: Context, interaction: InteractionView, proof: Proof) =>
    seeOther(ctx, await interactions.finishSecondFactor(interaction, proof));

  const checkTotp: Step = async (ctx, { interaction, form }) => {
    const accountId = accountOf(interaction);
    if (!detailsOf(interaction).methods.includes('totp')) throw new CredentialError('totp_not_enrolled');
    await totp.verify(accountId, form.get('code') ?? '');
    await finish(ctx, interaction, { method: 'totp', at: clock() });
  };

  const checkRecoveryCode: Step = async (ctx, { interaction, form }) => {
    const accountId = accountOf(interaction);
    if (!detailsOf(interaction).methods.includes('recovery_code')) throw new CredentialError('code_invalid');
    await recoveryCodes.verify(accountId, form.get('recovery_code') ?? '', credentials.onRecoveryCodeUsed?.(accountId));
    await finish(ctx, interaction, { method: 'recovery_code', at: clock() });
  };

  /** Starts setting up an authenticator app: the QR code and the field for its first code. */
  const beginEnrolment: Step = async (ctx, { interaction }) => {
    if (!detailsOf(interaction).methods.includes('totp')) throw new CredentialError('method_disabled');
    await qrPage(ctx, interaction);
  };

  /**
   * The first code completes the set-up and proves the second factor; the recovery codes are
   * made and shown now, once, with the way on.
   */
  const confirmEnrolment: Step = async (ctx, { interaction, form }) => {
    const accountId = accountOf(interaction);
    try {
      await totp.confirm(accountId, form.get('code') ?? '', credentials.onTotpEnrolled?.(accountId));
    } catch (error) {
      if (error instanceof CredentialError) return qrPage(ctx, interaction, error);
      throw error;
    }
    const codes = await recoveryCodes.generate(accountId);
    const returnTo = await interactions.finishSecondFactor(interaction, { method: 'totp', at: clock() });
    pages.page(ctx, 'recovery_codes', { codes, continueUrl: returnTo });
  };

  /** A refused passkey at the second factor (used, or being set up): the page again, with the reason. */
  const showFailure = (ctx: Context, interaction: InteractionView, problem: CredentialError) => {
    const mfa = detailsOf(interaction);
    return mfa.outcome === 'enrol' ? enrolPage(ctx, interaction, mfa, problem) : codePage(ctx, interaction, mfa, { form: 'passkey', problem });
  };

  return { show, answerFailure, checkTotp, checkRecoveryCode, beginEnrolment, confirmEnrolment, showFailure };
}

/** Our own SVG as an image address: the page inserts no markup it did not write itself. */
export const svgDataUrl = (svg: string) => `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}`;

function detailsOf(interaction: InteractionView): MfaPromptDetails {
  if (!interaction.mfa) throw new Error('the mfa prompt has no details');
  return interaction.mfa;
}

/** The mfa prompt comes after login: its interaction always has an account. */
function accountOf(interaction: InteractionView): string {
  if (!interaction.accountId) throw new Error('the mfa prompt has no account');
  return interaction.accountId;
}
