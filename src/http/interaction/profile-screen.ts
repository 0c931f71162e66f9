// The question screen of a sign-in (the "profile" prompt) and the authors' preview of it.
import { Router } from '@koa/router';
import type { Context } from 'koa';
import type { Config } from '../../config/schema.ts';
import type { Interactions, InteractionView } from '../../oidc/interactions.ts';
import type { AnswerErrorCode } from '../../screensets/engine.ts';
import type { FieldErrors } from '../../errors.ts';
import type { Profiling, PendingScreen } from '../../screensets/profiling.ts';
import type { ScreenSetLibrary } from '../../screensets/library.ts';
import { localize } from '../../screensets/loader.ts';
import { consentText } from '../../consent/ledger.ts';
import type { ConsentRequestView } from '../../views/pages.ts';
import { pickLocale } from '../../views/i18n.ts';
import { state, type PageResponder } from '../context.ts';
import type { Metrics } from '../metrics.ts';
import { fieldMessages } from '../errors.ts';
import { answerFieldName, questionViews } from '../question-view.ts';
import { interactionUrls, seeOther, type Step } from './steps.ts';

export interface ProfileScreenDeps {
  config: Config;
  profiling: Profiling;
  interactions: Interactions;
  pages: PageResponder;
  metrics: Metrics;
  clock: () => Date;
}

/** The steps of the question screen that the sign-in routes (routes.ts) list for the profile prompt. */
export function createProfileScreen(deps: ProfileScreenDeps) {
  const { config, profiling, interactions, pages, metrics, clock } = deps;

  /** Who is asked which questions, in which session: the prompt's details, for a signed-in account. */
  function signedIn(interaction: InteractionView) {
    const { profile, accountId } = interaction;
    if (!profile || !accountId) return undefined;
    return { accountId, clientId: interaction.clientId, sessionKey: profile.sessionKey, pending: profile.screen };
  }

  /** Profiling never blocks a sign-in: a failure to store is logged and counted, and the user goes on. */
  async function continueDespite(ctx: Context, interaction: InteractionView, error: unknown) {
    state(ctx).log.error({ err: error }, 'storing the profiling screen failed; continuing the sign-in without it');
    metrics.profilingFailures.inc();
    return finish(ctx, interaction);
  }

  /** Leaves the screen: the sign-in goes on to the app. */
  async function finish(ctx: Context, interaction: InteractionView) {
    seeOther(ctx, await interactions.finishProfile(interaction));
  }

  interface Resubmission {
    submitted?: ReadonlyMap<string, string[]>;
    errors?: FieldErrors<AnswerErrorCode>;
    declined?: ReadonlySet<string>;
    /** Purposes whose box the user ticked, and those an answer needed but did not get. */
    consents?: ReadonlySet<string>;
    consentMissing?: readonly string[];
    formError?: boolean;
  }

  function consentViews(ctx: Context, purposes: readonly string[], extra: Resubmission): ConsentRequestView[] {
    const { locale } = state(ctx);
    return purposes.map((purpose) => {
      const text = consentText(config.purposes[purpose]!, locale, config.locales.default);
      return {
        purpose, title: text.title, description: text.description,
        checked: extra.consents?.has(purpose) ?? false,
        ...(extra.consentMissing?.includes(purpose) ? { error: pages.t(ctx, 'profile.consent_required') } : {}),
      };
    });
  }

  async function render(ctx: Context, interaction: InteractionView, extra: Resubmission, status = 200): Promise<boolean> {
    const current = signedIn(interaction)!;
    const screen = await profiling.screen(current.accountId, current.pending);
    if (!screen) return false;
    const { locale } = state(ctx);
    const urls = interactionUrls(interaction.uid);
    const common = {
      csrfToken: pages.csrf(ctx),
      action: urls.profile,
      skipAction: urls.profileSkip,
      clientName: interaction.clientName,
      ...(extra.formError ? { error: pages.t(ctx, 'profile.form_error') } : {}),
    };
    if (screen.kind === 'reconsent') {
      pages.page(ctx, 'profile', {
        ...common, title: pages.t(ctx, 'profile.reconsent_title'), reconsent: true, questions: [],
        consents: consentViews(ctx, screen.purposes, extra),
      }, status);
      return true;
    }
    pages.page(ctx, 'profile', {
      ...common,
      title: localize(screen.set.title, locale, config.locales.default),
      questions: questionViews(screen.questions, {
        locale, defaultLocale: config.locales.default, now: clock(), t: (key, vars) => pages.t(ctx, key, vars),
        ...(extra.submitted ? { submitted: extra.submitted } : {}),
        ...(extra.errors ? { errors: fieldMessages(pages, ctx, 'answer', extra.errors) } : {}),
        ...(extra.declined ? { declined: extra.declined } : {}),
      }),
      consents: consentViews(ctx, screen.consentNeeded, extra),
    }, status);
    return true;
  }

  /** Shows the questions chosen for this sign-in; with none to show, the sign-in goes on. */
  const show: Step = async (ctx, { interaction }) => {
    const current = signedIn(interaction);
    if (!current) return finish(ctx, interaction);
    try {
      await profiling.markShown(current, current.pending);
      if (await render(ctx, interaction, {})) {
        metrics.profilingScreens.inc({ outcome: 'shown' });
        return;
      }
    } catch (error) {
      // Profiling never blocks a sign-in: on any failure the user goes on to the app.
      state(ctx).log.error({ err: error }, 'profiling screen failed; continuing the sign-in without it');
      metrics.profilingFailures.inc();
    }
    return finish(ctx, interaction);
  };

  /** Stores the answers and the consents they need, or shows the screen again with what is wrong. */
  const save: Step = async (ctx, { interaction, form }) => {
    const current = signedIn(interaction);
    if (!current) return finish(ctx, interaction);
    const values = new Map(current.pending.questionIds.map((id) => [id, form.getAll(answerFieldName(id))]));
    const declined = new Set(form.getAll('decline'));
    const consents = new Set(form.getAll('consent'));
    let result: Awaited<ReturnType<Profiling['submit']>>;
    try {
      result = await profiling.submit({ ...current, locale: state(ctx).locale, values, declined, consents });
    } catch (error) {
      return continueDespite(ctx, interaction, error);
    }
    if (!result.ok) {
      metrics.profilingScreens.inc({ outcome: 'invalid' });
      await render(ctx, interaction, {
        submitted: values, errors: result.errors, declined, consents, consentMissing: result.consentMissing, formError: true,
      }, 400);
      return;
    }
    metrics.profilingScreens.inc({ outcome: result.answered.length > 0 ? 'answered' : result.declined.length > 0 ? 'declined' : 'skipped' });
    return finish(ctx, interaction);
  };

  /** "Not now": the questions are hidden for the skip cooldown, and the sign-in goes on. */
  const skip: Step = async (ctx, { interaction }) => {
    const current = signedIn(interaction);
    if (current) {
      try {
        await profiling.skip({ ...current, locale: state(ctx).locale });
        metrics.profilingScreens.inc({ outcome: 'skipped' });
      } catch (error) {
        return continueDespite(ctx, interaction, error);
      }
    }
    return finish(ctx, interaction);
  };

  return { show, save, skip };
}

export type ProfileScreen = ReturnType<typeof createProfileScreen>;

/**
 * `/screensets/preview/:id?locale=ar`: every screen of a screen-set as users see it, for its
 * authors. Enabled in development, or with `screensets.preview: true` in trusted deployments.
 */
export function previewRoutes(deps: { config: Config; library: ScreenSetLibrary; pages: PageResponder; clock: () => Date }): Router {
  const { config, library, pages, clock } = deps;
  const router = new Router();
  router.get('/screensets/preview/:id', (ctx) => {
    const set = library.find(ctx.params.id!);
    if (!set) return ctx.throw(404);
    const requested = typeof ctx.query.locale === 'string' ? ctx.query.locale : undefined;
    if (requested) {
      state(ctx).locale = pickLocale({ uiLocales: requested, acceptLanguage: undefined, supported: config.locales.supported, fallback: config.locales.default });
    }
    const { locale } = state(ctx);
    // One screen shows at most max_questions of the set (and the session ceiling): preview each page of it.
    const perScreen = Math.max(1, Math.min(set.max_questions ?? Infinity, config.profiling.max_questions_per_session || Infinity));
    const screen = Math.max(0, Number(ctx.query.screen ?? 0) || 0);
    const questions = set.questions.slice(screen * perScreen, (screen + 1) * perScreen);
    if (questions.length === 0) return ctx.throw(404);
    pages.page(ctx, 'profile', {
      csrfToken: '', action: '#', skipAction: '#', preview: true,
      title: localize(set.title, locale, config.locales.default),
      clientName: config.clients[0]?.name ?? 'Parley',
      questions: questionViews(questions.map((question) => ({ question })), {
        locale, defaultLocale: config.locales.default, now: clock(), t: (key, vars) => pages.t(ctx, key, vars),
      }),
    });
  });
  return router;
}
