// How screen-sets perform, for the product teams who write them: per screen-set, question and
// day, how often a question was shown, answered, skipped ("Not now") and declined ("Don't ask me
// again"), and how the current answers are distributed. Read from the prompt log and the answers;
// knows nothing of HTTP.
//
// Distributions follow the release rule: only answers whose purpose the reader may see and whose
// consent is current are counted (a withdrawn user's answer is not theirs to analyse), and only
// for questions with a small set of values (choices, yes/no, scales, numbers). Free text and dates
// are never aggregated: their values identify people.
import { expressionBuilder, sql } from 'kysely';
import type { Config } from '../config/schema.ts';
import { RECONSENT_SET } from '../screensets/profiling.ts';
import { isCalendarDate, type LocalizedText, type QuestionType, type ScreenSet } from '../screensets/format.ts';
import { answerReleasable } from '../segments/query.ts';
import type { DB } from '../storage/database.ts';
import type { Database } from '../storage/schema.ts';
import { DomainError } from '../errors.ts';

export interface OutcomeCounts {
  shown: number;
  answered: number;
  skipped: number;
  declined: number;
  /** answered / shown; null when the question was not shown. */
  answer_rate: number | null;
}

export interface DayStats extends OutcomeCounts {
  /** YYYY-MM-DD, UTC. */
  date: string;
}

export interface QuestionStats {
  question_id: string;
  /** From the screen-set now in use; null for a question no screen-set asks any more. */
  type: QuestionType | null;
  purpose: string | null;
  label: LocalizedText | null;
  totals: OutcomeCounts;
  /** Every day of the range, in order, days without events included. */
  days: DayStats[];
  /** Current answers: value → accounts; null when not aggregated (text, dates, another purpose). */
  distribution: Record<string, number> | null;
}

export interface ScreenSetStats {
  set_id: string;
  /** Null for a screen-set no longer in use. */
  title: LocalizedText | null;
  questions: QuestionStats[];
}

export interface StatsReport {
  from: string;
  to: string;
  screensets: ScreenSetStats[];
}

/** invalid_range: a day that is not a date, a start after the end, or more than MAX_RANGE_DAYS. */
export const STATS_ERROR_CODES = ['invalid_range'] as const;
declare module '../errors.ts' {
  interface ErrorCodes { stats: (typeof STATS_ERROR_CODES)[number] }
}

/** The message says what is wrong with the range, for the API's caller. */
export class StatsRangeError extends DomainError<'stats'> {
  constructor(message: string) {
    super('stats', 'invalid_range', { message, params: { max: MAX_RANGE_DAYS } });
  }
}

export const MAX_RANGE_DAYS = 366;
const DAY_MS = 86_400_000;
const AGGREGATED_TYPES: readonly QuestionType[] = ['single_choice', 'multi_choice', 'boolean', 'scale', 'number'];

export interface StatsDeps {
  db: DB;
  config: Pick<Config, 'purposes'>;
  screenSets: () => readonly ScreenSet[];
  clock: () => Date;
}

export interface StatsRequest {
  /** YYYY-MM-DD (UTC), inclusive; defaults: the 30 days up to today. */
  from?: string | undefined;
  to?: string | undefined;
  /** Whose answers the distributions may count: a client's purposes, or every purpose (an operator). */
  purposes: readonly string[] | 'all';
}

const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const dayMs = (day: string) => Date.parse(`${day}T00:00:00Z`);

/** The validated range, inclusive, in UTC days. Throws StatsRangeError. */
export function statsRange(request: { from?: string | undefined; to?: string | undefined }, now: Date): { from: string; to: string; days: string[] } {
  for (const [name, value] of [['from', request.from], ['to', request.to]] as const) {
    if (value !== undefined && !isCalendarDate(value)) throw new StatsRangeError(`${name} must be a date such as 2026-01-31`);
  }
  const to = request.to ?? isoDay(now.getTime());
  const from = request.from ?? isoDay(dayMs(to) - 29 * DAY_MS);
  const span = (dayMs(to) - dayMs(from)) / DAY_MS + 1;
  if (span < 1) throw new StatsRangeError('from must not be after to');
  if (span > MAX_RANGE_DAYS) throw new StatsRangeError(`the range may cover at most ${MAX_RANGE_DAYS} days`);
  const days = Array.from({ length: span }, (_, i) => isoDay(dayMs(from) + i * DAY_MS));
  return { from, to, days };
}

function counts(shown: number, answered: number, skipped: number, declined: number): OutcomeCounts {
  return { shown, answered, skipped, declined, answer_rate: shown === 0 ? null : Math.round((answered / shown) * 10_000) / 10_000 };
}

export function createStats(deps: StatsDeps) {
  const { db, config } = deps;

  return {
    /** Throws StatsRangeError for a bad range. */
    async screenSets(request: StatsRequest): Promise<StatsReport> {
      const { from, to, days } = statsRange(request, deps.clock());
      const sets = deps.screenSets();
      const rows = await db.selectFrom('prompt_log')
        .select([
          'set_id', 'question_id', 'outcome',
          sql<string>`to_char(at at time zone 'UTC', 'YYYY-MM-DD')`.as('day'),
          sql<number>`count(*)::int`.as('count'),
        ])
        .where('at', '>=', new Date(dayMs(from)))
        .where('at', '<', new Date(dayMs(to) + DAY_MS))
        .where('set_id', '<>', RECONSENT_SET)
        .groupBy(['set_id', 'question_id', 'outcome', sql`to_char(at at time zone 'UTC', 'YYYY-MM-DD')`])
        .execute();

      // Every question of the screen-sets in use, then whatever else the log mentions.
      const bySet = new Map<string, { title: LocalizedText | null; questions: Map<string, QuestionStats> }>();
      const question = (setId: string, questionId: string): QuestionStats => {
        let set = bySet.get(setId);
        if (!set) bySet.set(setId, set = { title: null, questions: new Map() });
        let stats = set.questions.get(questionId);
        if (!stats) {
          set.questions.set(questionId, stats = {
            question_id: questionId, type: null, purpose: null, label: null, totals: counts(0, 0, 0, 0),
            days: days.map((date) => ({ date, ...counts(0, 0, 0, 0) })), distribution: null,
          });
        }
        return stats;
      };
      for (const set of sets) {
        bySet.set(set.id, { title: set.title, questions: new Map() });
        for (const q of set.questions) Object.assign(question(set.id, q.id), { type: q.type, purpose: q.purpose, label: q.label });
      }
      const dayIndex = new Map(days.map((d, i) => [d, i]));
      for (const row of rows) {
        const stats = question(row.set_id, row.question_id);
        const day = stats.days[dayIndex.get(row.day)!];
        if (day) day[row.outcome] += Number(row.count);
      }

      const readable = (purpose: string | null) => purpose !== null && (request.purposes === 'all' || request.purposes.includes(purpose));
      const aggregated = [...bySet.values()].flatMap((s) => [...s.questions.values()])
        .filter((q) => q.type !== null && AGGREGATED_TYPES.includes(q.type) && readable(q.purpose));
      const distributions = await distribution(db, config, aggregated.map((q) => q.question_id),
        request.purposes === 'all' ? Object.keys(config.purposes) : request.purposes);

      const screensets: ScreenSetStats[] = [];
      for (const [setId, set] of bySet) {
        const questions = [...set.questions.values()];
        for (const q of questions) {
          for (const day of q.days) Object.assign(day, counts(day.shown, day.answered, day.skipped, day.declined));
          const sum = (key: 'shown' | 'answered' | 'skipped' | 'declined') => q.days.reduce((n, d) => n + d[key], 0);
          q.totals = counts(sum('shown'), sum('answered'), sum('skipped'), sum('declined'));
          if (aggregated.includes(q)) q.distribution = distributions.get(q.question_id) ?? {};
        }
        screensets.push({ set_id: setId, title: set.title, questions });
      }
      return { from, to, screensets };
    },
  };
}

/** question id → (value → accounts), counting only answers released under `purposes` now. */
async function distribution(db: DB, config: Pick<Config, 'purposes'>, questionIds: string[], purposes: readonly string[]) {
  const result = new Map<string, Record<string, number>>();
  if (questionIds.length === 0) return result;
  const releasable = answerReleasable(new Set(purposes.filter((p) => config.purposes[p])), config.purposes);
  const eb = expressionBuilder<Database, never>();
  // A multiple-choice answer counts once for each option selected; a single value is a one-element list.
  const { rows } = await sql<{ question_id: string; value: string; count: number }>`
    select a.question_id, v.value, count(*)::int as count
    from answers a
    cross join lateral jsonb_array_elements_text(
      case when jsonb_typeof(a.value) = 'array' then a.value else jsonb_build_array(a.value) end) as v(value)
    where a.question_id in (${sql.join(questionIds)}) and ${releasable(eb, 'a')}
    group by a.question_id, v.value`.execute(db);
  for (const row of rows) {
    const values = result.get(row.question_id) ?? {};
    values[row.value] = Number(row.count);
    result.set(row.question_id, values);
  }
  return result;
}

export type Stats = ReturnType<typeof createStats>;
