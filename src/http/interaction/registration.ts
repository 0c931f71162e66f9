// What registering asks besides the account itself, whatever proves who the person is (a
// password today, an upstream provider next): every current terms document ticked, and with the
// age gate (registration.minimum_age) a date of birth. Each is checked here and kept with the
// account in the transaction that creates it, or nothing is stored.
import type { Context } from 'koa';
import { checkBirthdate, recordDateOfBirth } from '../../accounts/age.ts';
import type { RegistrationExtra } from '../../accounts/service.ts';
import type { Config } from '../../config/schema.ts';
import type { Terms } from '../../consent/terms.ts';
import type { InteractionView } from '../../oidc/interactions.ts';
import { state, type PageResponder } from '../context.ts';
import { interactionUrls, type Step } from './steps.ts';
import { tickedTerms } from './terms.ts';

// After the age gate turned someone away, the browser keeps that for this one sign-in (the
// interaction's id, nothing about the person), so going back and typing another date changes
// nothing: a neutral age screen, as the FTC's COPPA guidance asks.
const AGE_COOKIE = 'parley.age_gate';

export function registrationRequirements(deps: { config: Config; terms: Terms; pages: PageResponder; clock: () => Date }) {
  const { config, terms, pages, clock } = deps;
  const minimumAge = config.registration.minimum_age;

  /** The terms acceptance and the date of birth of a registration form, for accounts.register's `extras`. */
  function extras(ctx: Context, interaction: InteractionView, form: URLSearchParams): RegistrationExtra[] {
    const { locale } = state(ctx);
    const found: RegistrationExtra[] = [];
    if (terms.any) found.push(terms.registrationAgreement(tickedTerms(form), { locale, clientId: interaction.clientId }));
    if (minimumAge > 0) {
      const check = checkBirthdate(form.get('birthdate') ?? '', minimumAge, clock());
      // Under the minimum never gets here (refuseUnderAge); what is left is a date that is none.
      if (!check.ok) found.push({ problem: { field: 'birthdate', code: 'birthdate_invalid' }, record: async () => {} });
      else {
        const dateOfBirth = { value: check.value, locale, clientId: interaction.clientId, label: pages.t(ctx, 'form.birthdate') };
        found.push({ record: (trx, accountId, now) => recordDateOfBirth(trx, config, { ...dateOfBirth, accountId }, now) });
      }
    }
    return found;
  }

  /**
   * What a registration form lacks before a passkey is made for it (the passkey way asks for the
   * options first): a terms document not ticked, a date of birth that is no date. A passkey made
   * for a form that is then refused would stay on the person's device, unusable. Being younger
   * than the minimum is not among them: the form's post answers that with its own page.
   */
  function missingBeforeCredential(ctx: Context, interaction: InteractionView, form: URLSearchParams): ('terms' | 'birthdate')[] {
    const missing: ('terms' | 'birthdate')[] = [];
    if (terms.any && terms.registrationAgreement(tickedTerms(form), { locale: state(ctx).locale, clientId: interaction.clientId }).problem) missing.push('terms');
    if (minimumAge > 0) {
      const check = checkBirthdate(form.get('birthdate') ?? '', minimumAge, clock());
      if (!check.ok && check.reason === 'birthdate_invalid') missing.push('birthdate');
    }
    return missing;
  }

  /**
   * The age gate: someone younger than registration.minimum_age is told so kindly, and nothing
   * about them is stored; this sign-in then shows the same page, whatever date is typed next.
   */
  const refuseUnderAge: Step = async (ctx, signIn, next) => {
    if (minimumAge === 0) return next();
    const { interaction } = signIn;
    const refusedBefore = ctx.cookies.get(AGE_COOKIE, { signed: true }) === interaction.uid;
    const check = ctx.method === 'POST' ? checkBirthdate(signIn.form.get('birthdate') ?? '', minimumAge, clock()) : undefined;
    const tooYoung = check?.ok === false && check.reason === 'under_minimum_age';
    if (!refusedBefore && !tooYoung) return next();
    ctx.cookies.set(AGE_COOKIE, interaction.uid, {
      signed: true, httpOnly: true, sameSite: 'lax', secure: config.secureCookies,
      path: interactionUrls(interaction.uid).page, maxAge: config.ttl.interaction * 1000,
    });
    pages.page(ctx, 'too_young', { minimumAge, clientName: interaction.clientName }, 403);
  };

  return { extras, missingBeforeCredential, refuseUnderAge };
}

export type RegistrationRequirements = ReturnType<typeof registrationRequirements>;
