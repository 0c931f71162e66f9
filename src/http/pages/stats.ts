// /stats: the management API's screen-set statistics as a page, for operators: accounts whose
// email is listed in api.operators, signed in with the provider's session like the preference
// center. Everything is computed here (numbers formatted for the locale, chart geometry mirrored
// for right-to-left scripts); the template only places it.
import { Router } from '@koa/router';
import type { Context } from 'koa';
import type { Config } from '../../config/schema.ts';
import type { SessionReader } from '../../oidc/sessions.ts';
import { localize } from '../../screensets/loader.ts';
import type { Question, QuestionType, ScreenSet } from '../../screensets/format.ts';
import type { Account } from '../../storage/schema.ts';
import type { QuestionStats, Stats } from '../../stats/screensets.ts';
import { direction } from '../../views/i18n.ts';
import type { PageData, StatsQuestionView } from '../../views/pages.ts';
import { state, type PageResponder } from '../context.ts';
import { settleLocale } from '../locale.ts';
import { formatAnswer } from '../question-view.ts';

export interface StatsPageDeps {
  config: Config;
  stats: Stats;
  sessions: SessionReader;
  findAccount(accountId: string): Promise<Account | undefined>;
  screenSets: () => readonly ScreenSet[];
  pages: PageResponder;
  clock: () => Date;
}

const CHART = { width: 600, height: 120, top: 4 };
const RANGES = [7, 30, 90];
const DAY_MS = 86_400_000;

/** Emails compare as accounts store them: NFKC, lower case. */
const normalizeEmail = (email: string) => email.normalize('NFKC').trim().toLowerCase();

export function statsPageRoutes(deps: StatsPageDeps): Router {
  const { config, pages } = deps;
  const operators = new Set(config.api.operators.map(normalizeEmail));
  const router = new Router();

  router.get('/stats', async (ctx) => {
    const signedIn = await deps.sessions.current(ctx.req, ctx.res, ctx.secure);
    if (!signedIn) {
      // /account/login only returns to /account paths; the operator lands there and follows the link back.
      ctx.status = 303;
      return ctx.redirect(`/account/login?return=${encodeURIComponent('/stats')}`);
    }
    const account = await deps.findAccount(signedIn.accountId);
    await settleLocale(ctx, config, { accountLocale: async () => account?.locale });
    // The address must be proven: otherwise whoever registers an operator's address first is one.
    if (!account || account.email_verified_at === null || !operators.has(normalizeEmail(account.email))) {
      return pages.page(ctx, 'message', { title: pages.t(ctx, 'title.error'), message: pages.t(ctx, 'stats.forbidden') }, 403);
    }
    const query = { from: stringParam(ctx.query.from), to: stringParam(ctx.query.to) };
    // A range that cannot be shown (StatsRangeError) is answered by the error page, with its message.
    const report = await deps.stats.screenSets({ ...query, purposes: 'all' });
    pages.page(ctx, 'stats', view(ctx, report));
  });

  function view(ctx: Context, report: Awaited<ReturnType<Stats['screenSets']>>): PageData['stats'] {
    const { locale } = state(ctx);
    const defaultLocale = config.locales.default;
    const t = (key: string, vars?: Record<string, string | number>) => pages.t(ctx, key, vars);
    const number = new Intl.NumberFormat(locale);
    const percent = new Intl.NumberFormat(locale, { style: 'percent', maximumFractionDigits: 1 });
    const dayFormat = new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeZone: 'UTC' });
    const formatDay = (day: string) => dayFormat.format(new Date(`${day}T00:00:00Z`));
    const rate = (value: number | null) => (value === null ? t('stats.no_rate') : percent.format(value));
    const rtl = direction(locale) === 'rtl';
    const today = isoDay(deps.clock().getTime());
    const rangeStart = (days: number) => isoDay(Date.parse(`${today}T00:00:00Z`) - (days - 1) * DAY_MS);
    const questionsById = new Map<string, Question>(deps.screenSets().flatMap((s) => s.questions.map((q) => [q.id, q] as const)));
    const liveSets = new Set(deps.screenSets().map((s) => s.id));

    const questionView = (q: QuestionStats): StatsQuestionView => {
      const question = questionsById.get(q.question_id);
      const label = q.label ? localize(q.label, locale, defaultLocale) : q.question_id;
      const max = Math.max(1, ...q.days.map((d) => d.shown), ...q.days.map((d) => d.answered));
      const slot = CHART.width / q.days.length;
      const barWidth = Math.max(1, Math.round(slot * 0.7 * 100) / 100);
      const scale = (n: number) => Math.round(((CHART.height - CHART.top) * n) / max * 100) / 100;
      const entries = q.distribution ? Object.entries(q.distribution).sort(([, a], [, b]) => b - a) : undefined;
      return {
        id: q.question_id,
        label,
        totals: {
          shown: number.format(q.totals.shown), answered: number.format(q.totals.answered), skipped: number.format(q.totals.skipped),
          declined: number.format(q.totals.declined), answerRate: rate(q.totals.answer_rate),
        },
        chart: {
          width: CHART.width, height: CHART.height, baseline: CHART.height,
          description: t('stats.chart', { from: formatDay(report.from), to: formatDay(report.to) }),
          days: q.days.map((d, i) => {
            const start = Math.round((slot * i + (slot - barWidth) / 2) * 100) / 100;
            const shownHeight = scale(d.shown);
            const answeredHeight = scale(d.answered);
            return {
              // The first day sits at the start of the reading direction.
              x: rtl ? Math.round((CHART.width - start - barWidth) * 100) / 100 : start,
              width: barWidth,
              shownY: CHART.height - shownHeight, shownHeight,
              answeredY: CHART.height - answeredHeight, answeredHeight,
              title: t('stats.bar', { date: formatDay(d.date), shown: d.shown, answered: d.answered }),
            };
          }),
        },
        ...(entries ? {
          distribution: entries.map(([value, count]) => ({
            label: formatAnswer(question, typedValue(question?.type, value), { locale, defaultLocale, t }),
            count, countText: t('stats.accounts', { count }),
          })),
          distributionMax: Math.max(1, ...entries.map(([, count]) => count)),
        } : q.type === 'text' || q.type === 'date' ? { distributionNote: t('stats.not_aggregated') } : {}),
        days: q.days.map((d) => ({
          date: formatDay(d.date), shown: number.format(d.shown), answered: number.format(d.answered),
          skipped: number.format(d.skipped), declined: number.format(d.declined), answerRate: rate(d.answer_rate),
        })),
      };
    };

    return {
      rangeLabel: t('stats.range', { from: formatDay(report.from), to: formatDay(report.to) }),
      ranges: RANGES.map((days) => ({
        label: t('stats.last_days', { count: days }),
        url: `/stats?from=${rangeStart(days)}`,
        current: report.from === rangeStart(days) && report.to === today,
      })),
      screensets: report.screensets.map((set) => ({
        id: set.set_id,
        title: set.title ? localize(set.title, locale, defaultLocale) : set.set_id,
        retired: !liveSets.has(set.set_id),
        questions: set.questions.map(questionView),
      })),
    };
  }

  return router;
}

function isoDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

function stringParam(value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** A distribution key (text from SQL) as the answer value it stands for, to format it like one. */
function typedValue(type: QuestionType | undefined, value: string): string | number | boolean {
  if (type === 'boolean') return value === 'true';
  if (type === 'number' || type === 'scale') return Number(value);
  return value;
}
