// The segment condition language: JSON that says which accounts belong to a segment, e.g.
//
//   { "all": [
//       { "answer": "brew_method", "in": ["espresso"], "answered_within": "180d" },
//       { "consent": "personalization", "state": "granted" } ] }
//
// The schemas here check shapes only (and give the OpenAPI document its JSON Schema); what a
// condition means for a given client (which questions exist, which purposes it may see) is
// decided in query.ts, against the screen-sets and the configuration.
import { z } from 'zod';
import { parseDuration } from '../config/duration.ts';

export const CONSENT_STATES = ['granted', 'withdrawn', 'none', 'outdated'] as const;
export type ConsentStateName = (typeof CONSENT_STATES)[number];

export type AnswerScalar = string | number | boolean;

export type Condition =
  | { all: Condition[] }
  | { any: Condition[] }
  | { not: Condition }
  | { answer: string; in?: AnswerScalar[]; answered_within?: string }
  | { answered: string }
  | { not_answered: string }
  | { consent: string; state: ConsentStateName };

/** Bounds that keep one query cheap to plan and to run. */
export const LIMITS = { depth: 6, conditions: 32, values: 100, groupSize: 32 } as const;

const QUESTION_ID = /^[a-z][a-z0-9_]*$/;
/** Ten years: anything longer is "ever", which `answered` says. */
const MAX_WITHIN_SECONDS = 3660 * 86400;

const questionId = z.string().max(64).regex(QUESTION_ID, 'expected a question id such as brew_method')
  .meta({ description: 'A question id (the profile key) from the screen-sets' });

const withinDuration = z.string().refine((text) => {
  const seconds = parseDuration(text);
  return seconds !== undefined && seconds > 0 && seconds <= MAX_WITHIN_SECONDS;
}, { message: 'expected a duration such as 180d, 26w or 12h, at most 3660d' })
  .meta({ description: 'A whole number and a unit: s, m (minutes), h, d or w, such as 180d' });

const scalar = z.union([
  // Nor is half of a surrogate pair, which JSON can escape ("\ud800") and jsonb refuses.
  z.string().min(1).max(200).regex(/^[^\p{Cc}\p{Cs}]*$/u, 'control characters and unpaired surrogates are never part of an answer'),
  z.number(), z.boolean(),
], { error: 'expected text, a number, or true/false' });

// Each branch is told apart by its first key, so a mistake inside one is reported for that one
// (see explainUnion in the API's error handling).
export const answerCondition = z.strictObject({
  answer: questionId,
  in: z.array(scalar).min(1).max(LIMITS.values).optional()
    .meta({ description: 'The answer is one of these values; for a multiple-choice question: any of them is selected' }),
  answered_within: withinDuration.optional()
    .meta({ description: 'The answer was given or last confirmed within this time' }),
}).meta({ description: 'An answer the calling client may see: any answer, or one of some values, optionally recent' });

export const answeredCondition = z.strictObject({ answered: questionId })
  .meta({ description: 'The account has an answer to this question that the calling client may see' });

export const notAnsweredCondition = z.strictObject({ not_answered: questionId })
  .meta({ description: 'The account has no answer to this question that the calling client may see' });

export const consentCondition = z.strictObject({
  consent: z.string().min(1).max(64).meta({ description: 'A purpose with the consent legal basis' }),
  state: z.enum(CONSENT_STATES).meta({
    description: 'granted: at the current version of the purpose; outdated: granted to an earlier version; withdrawn; none: never asked',
  }),
}).meta({ description: 'The account\'s current consent to a purpose' });

export const conditionSchema: z.ZodType<Condition> = z.lazy(() => z.union([
  z.strictObject({ all: z.array(conditionSchema).min(1).max(LIMITS.groupSize) }).meta({ description: 'Every condition holds' }),
  z.strictObject({ any: z.array(conditionSchema).min(1).max(LIMITS.groupSize) }).meta({ description: 'At least one condition holds' }),
  z.strictObject({ not: conditionSchema }).meta({ description: 'The condition does not hold' }),
  answerCondition,
  answeredCondition,
  notAnsweredCondition,
  consentCondition,
])).meta({ id: 'Condition', description: 'A segment condition; groups nest up to 6 levels and hold at most 32 conditions in all' });

/** Depth and size limits, checked once over the whole parsed tree. */
export function conditionBoundsProblem(condition: Condition): { path: (string | number)[]; message: string } | undefined {
  let count = 0;
  // `groups`: the groups (all, any, not) around the condition, itself included.
  const visit = (c: Condition, groups: number, path: (string | number)[]): { path: (string | number)[]; message: string } | undefined => {
    count += 1;
    if (count > LIMITS.conditions) return { path, message: `too many conditions: at most ${LIMITS.conditions} in one query` };
    const isGroup = 'all' in c || 'any' in c || 'not' in c;
    if (isGroup && groups + 1 > LIMITS.depth) return { path, message: `groups nest too deep: at most ${LIMITS.depth} levels` };
    if ('all' in c || 'any' in c) {
      const key = 'all' in c ? 'all' : 'any';
      const items = 'all' in c ? c.all : c.any;
      for (const [i, item] of items.entries()) {
        const problem = visit(item, groups + 1, [...path, key, i]);
        if (problem) return problem;
      }
    } else if ('not' in c) {
      return visit(c.not, groups + 1, [...path, 'not']);
    }
    return undefined;
  };
  return visit(condition, 0, []);
}
