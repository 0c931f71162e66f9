// The consent prompt: what the app asks for, in plain words, and the user's answer.
import type { Context } from 'koa';
import type { Config } from '../../config/schema.ts';
import type { Interactions, InteractionView } from '../../oidc/interactions.ts';
import { localize } from '../../screensets/loader.ts';
import { state, type PageResponder } from '../context.ts';
import { interactionUrls, seeOther, type Step } from './steps.ts';

// How the consent screen names a claim asked for by name: related claims share one line.
const CLAIM_LABELS: Record<string, string> = {
  email: 'scope.email', email_verified: 'scope.email',
  name: 'claim.name', given_name: 'claim.name', family_name: 'claim.name', middle_name: 'claim.name', nickname: 'claim.name', preferred_username: 'claim.name',
  locale: 'claim.locale', zoneinfo: 'claim.locale',
  birthdate: 'claim.birthdate',
  gender: 'claim.gender',
};

export function consentSteps(deps: { config: Config; interactions: Interactions; pages: PageResponder }) {
  const { config, interactions, pages } = deps;

  /**
   * What the app will receive, in plain words: scopes, then claims asked for by name; the
   * preferences are spelled out per purpose, since the app receives only those of its purposes.
   */
  function consentItems(ctx: Context, interaction: InteractionView): string[] {
    const { locale } = state(ctx);
    const purposes = config.clientsById.get(interaction.clientId)?.purposes ?? [];
    const preferences = () => purposes.map((p) => pages.t(ctx, 'scope.preferences_for', { purpose: localize(config.purposes[p]!.title, locale, config.locales.default) }));
    const items = [
      ...interaction.missingScopes.filter((s) => s !== 'openid').flatMap((scope) => scope === 'preferences' ? preferences() : [pages.t(ctx, `scope.${scope}`)]),
      ...interaction.missingClaims.flatMap((claim) => claim === 'preferences' ? preferences() : [CLAIM_LABELS[claim] ? pages.t(ctx, CLAIM_LABELS[claim]) : claim]),
    ];
    return [...new Set(items)];
  }

  /** Grants what the app asked for; the sign-in goes on. */
  const grantConsent: Step = async (ctx, { interaction }) => seeOther(ctx, await interactions.grantConsent(interaction));

  /** The brand's own apps never show a consent screen, even when asked with prompt=consent. */
  const grantFirstParty: Step = async (ctx, signIn, next) => {
    if (signIn.interaction.firstParty) return grantConsent(ctx, signIn, next);
    await next();
  };

  const showConsent: Step = async (ctx, { interaction }) => {
    const urls = interactionUrls(interaction.uid);
    pages.page(ctx, 'consent', {
      csrfToken: pages.csrf(ctx), action: urls.consent, cancelAction: urls.abort,
      clientName: interaction.clientName,
      items: consentItems(ctx, interaction),
    });
  };

  return { grantFirstParty, showConsent, grantConsent };
}
