// "Email me a code" on the sign-in page: the main form's second button posts the address here
// (no password needed, no JavaScript), a six-digit code goes out through the outbox to the
// account with that address, and the page asks for it. The page and the work are the same
// whether or not the address has an account: the code is issued either way, and the mail is
// queued by the one statement that finds the owner (recipient ownerOf).
import type { Context } from 'koa';
import { CredentialError } from '../../accounts/credential-errors.ts';
import type { EmailCodes } from '../../accounts/email-codes.ts';
import type { InteractionView } from '../../oidc/interactions.ts';
import type { MailOutbox } from '../../mail/outbox.ts';
import { state, type PageResponder } from '../context.ts';
import { errorStatus } from '../errors.ts';
import { interactionUrls, type Step } from './steps.ts';

export interface EmailCodeStepDeps {
  emailCodes: EmailCodes;
  mail: Pick<MailOutbox, 'queue' | 'queued'>;
  pages: PageResponder;
  clock: () => Date;
  /** The sign-in page again with a message (an address that can be no one's, too many codes). */
  showLoginFailure: (ctx: Context, interaction: InteractionView, error: CredentialError) => void;
}

export function emailCodeSteps(deps: EmailCodeStepDeps) {
  const { emailCodes, mail, pages, clock, showLoginFailure } = deps;

  function codePage(ctx: Context, interaction: InteractionView, email: string, error?: CredentialError) {
    const urls = interactionUrls(interaction.uid);
    pages.page(ctx, 'email_code', {
      csrfToken: pages.csrf(ctx), action: urls.emailCodeVerify, resendAction: urls.emailCode, email, loginUrl: urls.page,
      error: error ? pages.errorMessage(ctx, error) : undefined,
    }, error ? errorStatus(error) : 200);
  }

  /** Issues a code and mails it to the address's account, if there is one; the page is the same either way. */
  const send: Step = async (ctx, { interaction, form }) => {
    const email = form.get('email') ?? '';
    try {
      const issued = await emailCodes.issue(email, async (trx, code) => {
        // One statement whether or not the address has an account: it queues a mail only for one.
        // In the language of the page that asked for it.
        await mail.queue(trx, { ownerOf: code.email }, { kind: 'email_code', locale: state(ctx).locale, code: code.code }, clock());
      });
      mail.queued();
      codePage(ctx, interaction, issued.email);
    } catch (error) {
      if (!(error instanceof CredentialError)) throw error;
      showLoginFailure(ctx, interaction, error);
    }
  };

  /** The code signs in the account of the address; a wrong, spent or expired code shows the page again. */
  const verify: Step = async (ctx, signIn, next) => {
    const { interaction, form } = signIn;
    const email = form.get('email') ?? '';
    try {
      const verified = await emailCodes.verify(email, form.get('code') ?? '');
      // No account has the address: no mail went out, so no right code can have come back.
      if (!verified.accountId) throw new CredentialError('code_invalid');
      signIn.authenticated = { accountId: verified.accountId, outcome: 'success', proofs: [{ method: 'email_code', at: clock() }] };
    } catch (error) {
      if (!(error instanceof CredentialError)) throw error;
      return codePage(ctx, interaction, email, error);
    }
    await next();
  };

  return { send, verify };
}
