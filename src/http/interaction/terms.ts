// The terms prompt: the documents whose new version the signed-in person has not accepted yet.
// Accepting records it and the sign-in goes on; declining signs out, with a page that says what
// to do now. There is no "not now".
import type { Context } from 'koa';
import { TermsError, type ShownDocument, type Terms } from '../../consent/terms.ts';
import type { Interactions, InteractionView } from '../../oidc/interactions.ts';
import { state, type PageResponder } from '../context.ts';
import { errorStatus } from '../errors.ts';
import { interactionUrls, seeOther, type Step } from './steps.ts';

/** The boxes of a terms form, ticked as they were posted (none on a fresh page). */
export function termsBoxes(documents: readonly ShownDocument[], ticked: ReadonlySet<string> = new Set()) {
  return documents.map((d) => ({ id: d.id, title: d.title, url: d.url, checked: ticked.has(d.id) }));
}

/** The ids ticked in a posted form. */
export function tickedTerms(form: URLSearchParams): Set<string> {
  return new Set(form.getAll('terms'));
}

export function termsSteps(deps: { terms: Terms; interactions: Interactions; pages: PageResponder }) {
  const { terms, interactions, pages } = deps;

  async function termsPage(ctx: Context, interaction: InteractionView, extra: { ticked?: Set<string>; error?: TermsError } = {}) {
    const urls = interactionUrls(interaction.uid);
    const documents = await terms.pendingShown(accountOf(interaction), state(ctx).locale);
    pages.page(ctx, 'terms', {
      csrfToken: pages.csrf(ctx), action: urls.terms, declineAction: urls.termsDecline, clientName: interaction.clientName,
      documents: termsBoxes(documents, extra.ticked),
      errors: extra.error ? { terms: pages.errorMessage(ctx, extra.error) } : {},
    }, extra.error ? errorStatus(extra.error) : 200);
  }

  /** The page of someone who declined: the sign-in only leads back to the app now. */
  function declinedPage(ctx: Context, interaction: InteractionView, returnUrl: string) {
    pages.page(ctx, 'terms_declined', { clientName: interaction.clientName, returnUrl, accountUrl: '/account' });
  }

  const show: Step = async (ctx, { interaction }) => {
    if (interaction.declined) return declinedPage(ctx, interaction, interactions.returnTo(interaction));
    await termsPage(ctx, interaction);
  };

  /** Records the acceptance of every document shown; one left unticked shows the page again. */
  const accept: Step = async (ctx, { interaction, form }) => {
    // Declined (signed out) in this sign-in: accepting now, from an old page, signs nobody back in.
    if (interaction.declined) return declinedPage(ctx, interaction, interactions.returnTo(interaction));
    const ticked = tickedTerms(form);
    try {
      await terms.accept(accountOf(interaction), ticked, { locale: state(ctx).locale, clientId: interaction.clientId });
    } catch (error) {
      if (error instanceof TermsError && error.code === 'not_accepted') return termsPage(ctx, interaction, { ticked, error });
      throw error;
    }
    seeOther(ctx, await interactions.finishTerms(interaction));
  };

  /** Signs out and says what to do now; the way back tells the app the user declined. */
  const decline: Step = async (ctx, { interaction }) => {
    const returnUrl = interaction.declined ? interactions.returnTo(interaction) : await interactions.declineTerms(interaction);
    state(ctx).log.info({ client_id: interaction.clientId }, 'terms declined: signed out');
    declinedPage(ctx, interaction, returnUrl);
  };

  return { show, accept, decline };
}

/** The terms prompt comes after login: its interaction always has an account. */
function accountOf(interaction: InteractionView): string {
  if (!interaction.accountId) throw new Error('the terms prompt has no account');
  return interaction.accountId;
}
