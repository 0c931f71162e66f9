// The screen-set file format: one YAML file per screen-set, as the README describes it
// ("Screen-sets"). This module is the one description of that format: the zod schema the
// loader validates with, the types the engine works on, and the source of the JSON Schema that
// ships as screensets/screenset.schema.json for editors.
//
// The schema checks each file on its own. With `FormatRules` it also checks the references a file
// makes into the configuration (purposes, client ids, locales), so that those problems are
// reported field by field together with every other problem. References between files (duplicate
// ids, conditions on other files' questions) are the loader's job.
import { z } from 'zod';
import { parseDuration } from '../config/duration.ts';

/** The configuration a screen-set file refers to. Without it, only the file's own shape is checked. */
export interface FormatRules {
  purposes: readonly string[];
  clientIds: readonly string[];
  defaultLocale: string;
  supportedLocales: readonly string[];
}

export const TRIGGERS = ['after_registration', 'after_login'] as const;
export type Trigger = (typeof TRIGGERS)[number];

export const QUESTION_TYPES = ['single_choice', 'multi_choice', 'boolean', 'date', 'number', 'scale', 'text'] as const;
export type QuestionType = (typeof QUESTION_TYPES)[number];

/**
 * Standard claims (OpenID Connect Core 1.0 §5.1) that an answer may also fill, with the question
 * types whose answers have that claim's format. Verified claims (email, phone_number) and
 * structured ones (address) are not something a preference question should set.
 */
export const CLAIM_QUESTION_TYPES = {
  birthdate: ['date'],
  gender: ['single_choice', 'text'],
  locale: ['single_choice', 'text'],
  zoneinfo: ['single_choice', 'text'],
  name: ['text'],
  given_name: ['text'],
  family_name: ['text'],
  middle_name: ['text'],
  nickname: ['text'],
  preferred_username: ['text'],
} as const satisfies Record<string, readonly QuestionType[]>;
export type StandardClaim = keyof typeof CLAIM_QUESTION_TYPES;

/**
 * The answer the age gate of registration (registration.minimum_age) keeps the date of birth as
 * (src/accounts/age.ts). With the gate on, no screen-set may use its id or its claim.
 */
export const DATE_OF_BIRTH_QUESTION = { id: 'date_of_birth', claim: 'birthdate' } as const satisfies { id: string; claim: StandardClaim };
const STANDARD_CLAIMS = Object.keys(CLAIM_QUESTION_TYPES) as [StandardClaim, ...StandardClaim[]];

/** Text areas beyond this are not a preference question any more. */
const TEXT_MAX_LENGTH_LIMIT = 2000;
const DEFAULT_TEXT_MAX_LENGTH = 200;
/** A scale has at most 11 points (0..10, as in a net promoter score). */
const SCALE_MAX_SPAN = 10;

const SET_ID = /^[a-z][a-z0-9_-]*$/;
const QUESTION_ID = /^[a-z][a-z0-9_]*$/;
const OPTION_VALUE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const LOCALE = /^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/;
const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
// Relative date bounds: "today", or an offset from today in days, weeks, months or years.
const DATE_OFFSET = /^([+-])(\d{1,3})([dwmy])$/;

/**
 * A mapping whose only allowed keys are the shape's; an unknown key is reported with the keys that
 * are allowed there, which is what an author who misspelt one needs to see.
 */
function strictObject<Shape extends z.core.$ZodLooseShape>(shape: Shape) {
  const allowed = Object.keys(shape).join(', ');
  return z.strictObject(shape, {
    error: (issue) => issue.code === 'unrecognized_keys' ? `unknown key; expected one of ${allowed}` : undefined,
  });
}

/** The message for a list that is missing or is something else. */
function listExpected(what: string) {
  return (issue: { input?: unknown }) =>
    issue.input === undefined ? `missing; expected ${what}` : `expected ${what}, got ${describeValue(issue.input)}`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// ---------------------------------------------------------------------------------------------
// Localized text

/** A plain string is the same in every locale; a map gives one text per locale. */
export type LocalizedText = string | Record<string, string>;

function localizedTextProblem(input: unknown): string {
  if (isPlainObject(input)) {
    for (const [locale, text] of Object.entries(input)) {
      if (!LOCALE.test(locale)) return `"${locale}" is not a locale code; expected codes such as en, ar, ja or pt-BR`;
      if (typeof text !== 'string' || text.trim() === '') return `the "${locale}" text must be non-empty text`;
    }
  }
  if (typeof input === 'string') return 'expected non-empty text';
  if (input === undefined) return 'missing; expected text, or a map of locale to text such as { en: Hello, ar: مرحبا }';
  return 'expected text, or a map of locale to text such as { en: Hello, ar: مرحبا }';
}

const anyLocalizedText = z.union([
  z.string().trim().min(1),
  z.record(z.string().regex(LOCALE), z.string().trim().min(1)),
], { error: (issue) => localizedTextProblem(issue.input) })
  .meta({ id: 'localized_text', description: 'Text, or a map of locale to text such as { en: Hello, ar: مرحبا }' });

function localizedText(rules: FormatRules | undefined) {
  if (!rules) return anyLocalizedText;
  const { defaultLocale } = rules;
  return anyLocalizedText.refine(
    (value) => typeof value === 'string' || Object.hasOwn(value, defaultLocale),
    `the default locale "${defaultLocale}" is missing; every text needs it, since other locales fall back to it`,
  );
}

// ---------------------------------------------------------------------------------------------
// Scalars

const durationMessage = (input: unknown) =>
  `expected a duration such as 12h, 7d or 26w, got ${describeValue(input)}`;

/** Written the way people say it ("180d"), parsed to whole seconds like every duration in Parley. */
const duration = z.string({ error: (issue) => durationMessage(issue.input) }).transform((text, ctx) => {
  const seconds = parseDuration(text);
  if (seconds === undefined || seconds === 0) {
    ctx.addIssue({ code: 'custom', message: durationMessage(text) });
    return z.NEVER;
  }
  return seconds;
}).meta({ id: 'duration', description: 'A whole number and a unit: s, m (minutes), h, d or w, such as 180d, 20h or 26w' });

/** A date bound: a calendar date, or an offset from the day of the answer ("today", "-100y"). */
export type DateBound =
  | { kind: 'date'; date: string }
  | { kind: 'offset'; years: number; months: number; days: number };

export function isCalendarDate(text: string): boolean {
  const match = ISO_DATE.exec(text);
  if (!match) return false;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

const dateBoundMessage = 'expected a date such as 1990-01-31, "today", or an offset from today such as -18y, -6m, +30d';

const dateBound = z.string({ error: dateBoundMessage }).transform((text, ctx): DateBound => {
  if (text === 'today') return { kind: 'offset', years: 0, months: 0, days: 0 };
  if (isCalendarDate(text)) return { kind: 'date', date: text };
  const offset = DATE_OFFSET.exec(text);
  if (!offset) {
    ctx.addIssue({ code: 'custom', message: `${dateBoundMessage}, got "${text}"` });
    return z.NEVER;
  }
  const amount = (offset[1] === '-' ? -1 : 1) * Number(offset[2]);
  switch (offset[3]) {
    case 'y': return { kind: 'offset', years: amount, months: 0, days: 0 };
    case 'm': return { kind: 'offset', years: 0, months: amount, days: 0 };
    case 'w': return { kind: 'offset', years: 0, months: 0, days: 7 * amount };
    default: return { kind: 'offset', years: 0, months: 0, days: amount };
  }
}).meta({
  id: 'date_bound',
  description: 'A calendar date (1990-01-31), today, or an offset from today in d, w, m (months) or y (-18y, +30d)',
});

/**
 * The calendar date `bound` means when counted from `today` (YYYY-MM-DD). Month and year offsets
 * that land past the end of a month stay in it: 29 February minus one year is 28 February.
 */
export function resolveDateBound(bound: DateBound, today: string): string {
  if (bound.kind === 'date') return bound.date;
  const [year, month, day] = today.split('-').map(Number) as [number, number, number];
  const targetMonth = new Date(Date.UTC(year + bound.years, month - 1 + bound.months, 1));
  const lastDay = new Date(Date.UTC(targetMonth.getUTCFullYear(), targetMonth.getUTCMonth() + 1, 0)).getUTCDate();
  targetMonth.setUTCDate(Math.min(day, lastDay) + bound.days);
  return targetMonth.toISOString().slice(0, 10);
}

// ---------------------------------------------------------------------------------------------
// Questions

const questionId = z.string().max(64).regex(QUESTION_ID, 'question ids are profile keys: lower_snake_case starting with a letter, such as brew_method');

function purposeId(rules: FormatRules | undefined) {
  const id = z.string().min(1).meta({ description: 'Why the answer is collected: a purpose from the configuration, e.g. personalization' });
  if (!rules) return id;
  const known = rules.purposes.join(', ') || 'none';
  return id.refine((value) => rules.purposes.includes(value), {
    error: (issue) => `unknown purpose ${describeValue(issue.input)}; expected one of the purposes in the configuration (${known})`,
  });
}

function choiceOptions(rules: FormatRules | undefined) {
  const item = strictObject({
    value: z.string({ error: 'expected text such as espresso (write numbers in quotes: "5")' })
      .max(64)
      .regex(OPTION_VALUE, 'option values are short codes of letters, digits and _ . - (the label is what people see)'),
    label: localizedText(rules),
  });
  return z.array(item, { error: listExpected('a list of at least two options, each { value, label }') })
    .min(2, 'a choice question needs at least two options, each { value, label }')
    .superRefine((options, ctx) => {
      const seen = new Set<string>();
      options.forEach((o, index) => {
        if (seen.has(o.value)) {
          ctx.addIssue({ code: 'custom', path: [index, 'value'], message: `duplicate option value "${o.value}"; each option needs its own value` });
        }
        seen.add(o.value);
      });
    });
}

function questionSchema(rules: FormatRules | undefined) {
  const text = localizedText(rules);
  const common = {
    label: text,
    help: text.optional(),
    purpose: purposeId(rules),
    claim: z.enum(STANDARD_CLAIMS).optional()
      .meta({ description: 'A standard OIDC claim the answer also fills, such as birthdate' }),
    reward: strictObject({
      points: z.number().int().min(1).optional(),
      label: text,
    }).optional().meta({ description: 'What the user gets for answering, shown beside the question' }),
    reask_after: duration.optional()
      .meta({ description: 'Ask again when the answer is this old (the old answer is the default), e.g. 180d' }),
    required: z.boolean().default(false)
      .meta({ description: 'A blank answer is an error instead of counting as skipped' }),
  };

  const singleChoice = strictObject({ id: questionId, type: z.literal('single_choice'), ...common, options: choiceOptions(rules) });

  const multiChoice = strictObject({
    id: questionId, type: z.literal('multi_choice'),
    ...common,
    options: choiceOptions(rules),
    min_selections: z.number().int().min(0).optional(),
    max_selections: z.number().int().min(1).optional(),
  }).superRefine((q, ctx) => {
    const { min_selections: min, max_selections: max } = q;
    if (min !== undefined && max !== undefined && min > max) {
      ctx.addIssue({ code: 'custom', path: ['min_selections'], message: `must not exceed max_selections (${max})` });
    }
    for (const [key, bound] of [['min_selections', min], ['max_selections', max]] as const) {
      if (bound !== undefined && bound > q.options.length) {
        ctx.addIssue({ code: 'custom', path: [key], message: `must not exceed the number of options (${q.options.length})` });
      }
    }
  });

  const booleanQuestion = strictObject({ id: questionId, type: z.literal('boolean'), ...common });

  const dateQuestion = strictObject({
    id: questionId, type: z.literal('date'),
    ...common,
    min: dateBound.optional().meta({ description: 'Earliest date: 1900-01-01, today, or an offset such as -100y' }),
    max: dateBound.optional().meta({ description: 'Latest date: 2030-12-31, today (not in the future), or an offset such as -18y' }),
  }).superRefine((q, ctx) => {
    // Both bounds of one kind can be compared now; a calendar date against an offset only later.
    if (!q.min || !q.max || q.min.kind !== q.max.kind) return;
    const reference = '2000-01-01';
    if (resolveDateBound(q.min, reference) > resolveDateBound(q.max, reference)) {
      ctx.addIssue({ code: 'custom', path: ['min'], message: 'must not be later than max' });
    }
  });

  const numberQuestion = strictObject({
    id: questionId, type: z.literal('number'),
    ...common,
    min: z.number().optional(),
    max: z.number().optional(),
    step: z.number().positive().optional()
      .meta({ description: 'Allowed increments counted from min (or 0), e.g. 1 for whole numbers' }),
  }).superRefine((q, ctx) => {
    if (q.min !== undefined && q.max !== undefined && q.min > q.max) {
      ctx.addIssue({ code: 'custom', path: ['min'], message: `must not exceed max (${q.max})` });
    }
  });

  const scaleQuestion = strictObject({
    id: questionId, type: z.literal('scale'),
    ...common,
    min: z.number().int(),
    max: z.number().int(),
    min_label: text.meta({ description: 'What the lowest point means, e.g. "Not at all"' }),
    max_label: text.meta({ description: 'What the highest point means, e.g. "Very much"' }),
  }).superRefine((q, ctx) => {
    const span = q.max - q.min;
    if (span < 1 || span > SCALE_MAX_SPAN) {
      ctx.addIssue({ code: 'custom', path: ['max'], message: `a scale runs from min to a larger max with at most ${SCALE_MAX_SPAN + 1} points, got ${q.min}..${q.max}` });
    }
  });

  const textQuestion = strictObject({
    id: questionId, type: z.literal('text'),
    ...common,
    max_length: z.number().int().min(1).max(TEXT_MAX_LENGTH_LIMIT).default(DEFAULT_TEXT_MAX_LENGTH),
    pattern: z.string().min(1).optional()
      .meta({ description: 'A regular expression the whole answer must match, as in the HTML pattern attribute' }),
  }).superRefine((q, ctx) => {
    if (q.pattern === undefined) return;
    try {
      compileAnswerPattern(q.pattern);
    } catch (error) {
      ctx.addIssue({ code: 'custom', path: ['pattern'], message: `not a valid pattern (${(error as Error).message}); patterns follow the HTML pattern attribute, so escape ( ) [ ] { } / | and - inside [...]` });
    }
  });

  return z.discriminatedUnion('type', [
    singleChoice, multiChoice, booleanQuestion, dateQuestion, numberQuestion, scaleQuestion, textQuestion,
  ], {
    error: (issue) => issue.code === 'invalid_union'
      ? `expected a question type: one of ${QUESTION_TYPES.join(', ')}`
      : undefined,
  }).superRefine((q, ctx) => {
    if (q.claim === undefined) return;
    const types: readonly QuestionType[] = CLAIM_QUESTION_TYPES[q.claim];
    if (!types.includes(q.type)) {
      ctx.addIssue({ code: 'custom', path: ['claim'], message: `the ${q.claim} claim needs a question of type ${types.join(' or ')}, not ${q.type}` });
    }
  });
}

/**
 * How an answer's text must match a `pattern`: whole, with the `v` flag, exactly as a browser
 * applies the HTML pattern attribute (HTML § "The pattern attribute"), so that the browser and the
 * server accept the same answers.
 */
export function compileAnswerPattern(pattern: string): RegExp {
  return new RegExp(`^(?:${pattern})$`, 'v');
}

// ---------------------------------------------------------------------------------------------
// Audience conditions

/** A value a condition compares an answer with. */
export type ConditionValue = string | number | boolean;

/**
 * A condition on the user's existing answers, normalized from the file's forms. For a
 * multi_choice answer, `in` holds when any selected option is one of the values.
 */
export type Condition =
  | { op: 'all'; conditions: Condition[] }
  | { op: 'any'; conditions: Condition[] }
  | { op: 'answered'; questionId: string }
  | { op: 'not_answered'; questionId: string }
  | { op: 'in'; questionId: string; values: ConditionValue[] };

const conditionValue = z.union([z.string(), z.number(), z.boolean()], { error: 'expected text, a number, or true/false' });

/** The condition forms as written in a file; several keys in one mapping must all hold. */
export interface ConditionInput {
  answered?: string[] | Record<string, ConditionValue[]>;
  not_answered?: string[];
  equals?: Record<string, ConditionValue>;
  in?: Record<string, ConditionValue[]>;
  all?: ConditionInput[];
  any?: ConditionInput[];
}

const CONDITION_KEYS = ['answered', 'not_answered', 'equals', 'in', 'all', 'any'] as const;

/** The schema of `audience.when`, as written; the loader also checks references in files with other problems. */
export const conditionInput: z.ZodType<ConditionInput> = strictObject({
  // `answered: { brew_method: [espresso] }` ("answered espresso", as authors tend to write it) is `in` by another name.
  answered: z.union([z.array(questionId).min(1), z.record(questionId, z.array(conditionValue).min(1))], {
    error: 'expected a list of question ids, or a map of question id to the answers that count',
  }).optional(),
  not_answered: z.array(questionId).min(1).optional(),
  equals: z.record(questionId, conditionValue).optional(),
  in: z.record(questionId, z.array(conditionValue).min(1)).optional(),
  get all() { return z.array(conditionInput).min(1).optional(); },
  get any() { return z.array(conditionInput).min(1).optional(); },
}).refine((c) => CONDITION_KEYS.some((key) => c[key] !== undefined), {
  message: `expected at least one of ${CONDITION_KEYS.join(', ')}`,
}).meta({ id: 'condition', description: 'Keys in one mapping must all hold: answered, not_answered, equals, in, all, any' });

function conjunction(conditions: Condition[]): Condition {
  return conditions.length === 1 ? conditions[0]! : { op: 'all', conditions };
}

function normalizeCondition(input: ConditionInput): Condition {
  const parts: Condition[] = [];
  if (Array.isArray(input.answered)) {
    for (const questionId of input.answered) parts.push({ op: 'answered', questionId });
  } else if (input.answered) {
    for (const [questionId, values] of Object.entries(input.answered)) parts.push({ op: 'in', questionId, values });
  }
  for (const questionId of input.not_answered ?? []) parts.push({ op: 'not_answered', questionId });
  for (const [questionId, value] of Object.entries(input.equals ?? {})) parts.push({ op: 'in', questionId, values: [value] });
  for (const [questionId, values] of Object.entries(input.in ?? {})) parts.push({ op: 'in', questionId, values });
  if (input.all) parts.push(conjunction(input.all.map(normalizeCondition)));
  if (input.any) parts.push({ op: 'any', conditions: input.any.map(normalizeCondition) });
  return conjunction(parts);
}

// ---------------------------------------------------------------------------------------------
// The screen-set file

function audienceSchema(rules: FormatRules | undefined) {
  const clientId = rules
    ? z.string().refine((id) => rules.clientIds.includes(id), {
      error: (issue) => `unknown client ${describeValue(issue.input)}; expected one of the configured clients (${rules.clientIds.join(', ') || 'none'})`,
    })
    : z.string().min(1);
  const locale = rules
    ? z.string().refine((l) => rules.supportedLocales.includes(l), {
      error: (issue) => `${describeValue(issue.input)} is not a supported locale; expected one of locales.supported (${rules.supportedLocales.join(', ')})`,
    })
    : z.string().regex(LOCALE, 'expected a locale code such as en, ar, ja or pt-BR');
  return strictObject({
    clients: z.array(clientId).min(1).optional()
      .meta({ description: 'Only sign-ins to these client ids' }),
    locales: z.array(locale).min(1).optional()
      .meta({ description: 'Only sign-ins in these locales' }),
    min_account_age: duration.optional()
      .meta({ description: 'Only accounts at least this old, e.g. 7d' }),
    when: conditionInput.transform(normalizeCondition).optional()
      .meta({ description: 'Only users whose answers match: answered, not_answered, equals, in, all, any' }),
  });
}

export function createScreenSetSchema(rules?: FormatRules) {
  return strictObject({
    id: z.string().max(64).regex(SET_ID, 'screen-set ids are lowercase letters, digits, - and _, starting with a letter')
      .meta({ description: 'Unique across all screen-sets; used in the preview URL' }),
    title: localizedText(rules),
    version: z.number().int().min(1).default(1)
      .meta({ description: 'Bump it when the wording changes materially: questions declined with "Don\'t ask me again" may then be asked again' }),
    trigger: z.array(z.enum(TRIGGERS), { error: listExpected(`a list of triggers: ${TRIGGERS.join(', ')}`) }).min(1)
      .refine((triggers) => new Set(triggers).size === triggers.length, 'each trigger once')
      .meta({ description: 'after_registration: the first sign-in of a new account; after_login: any other sign-in' }),
    audience: audienceSchema(rules).optional(),
    priority: z.number().int().default(0)
      .meta({ description: 'Higher first; ties in order of id' }),
    max_questions: z.number().int().min(1).optional()
      .meta({ description: 'At most this many of its questions on one screen (the global per-session ceiling still applies)' }),
    questions: z.array(questionSchema(rules), { error: listExpected('a list of questions') })
      .min(1, 'a screen-set needs at least one question'),
  });
}

/** The schema without configuration: the file's own shape, and the source of the JSON Schema. */
export const screenSetSchema = createScreenSetSchema();

export type ScreenSet = z.output<typeof screenSetSchema>;
export type Audience = NonNullable<ScreenSet['audience']>;
export type Question = ScreenSet['questions'][number];
export type ChoiceQuestion = Extract<Question, { type: 'single_choice' | 'multi_choice' }>;
export type ChoiceOption = ChoiceQuestion['options'][number];
export type Reward = NonNullable<Question['reward']>;

/** The JSON Schema (draft 2020-12) of a screen-set file, as committed in screensets/screenset.schema.json. */
export function screenSetJsonSchema(): Record<string, unknown> {
  const generated = z.toJSONSchema(screenSetSchema, {
    io: 'input',
    target: 'draft-2020-12',
    // zod bounds every integer to the safe range; in a file format that is noise.
    override: ({ jsonSchema }) => {
      if (jsonSchema.maximum === Number.MAX_SAFE_INTEGER) delete jsonSchema.maximum;
      if (jsonSchema.minimum === Number.MIN_SAFE_INTEGER) delete jsonSchema.minimum;
    },
  });
  const { $schema, ...rest } = generated;
  return {
    $schema,
    title: 'Parley screen-set',
    description: 'One screen-set: questions Parley may ask after sign-in. Generated from src/screensets/format.ts.',
    ...rest,
  };
}

// ---------------------------------------------------------------------------------------------
// Messages

/** A short, quoted description of what a file contained, for "expected X, got Y" messages. */
function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  return String(value);
}

const EXPECTED_NAMES: Record<string, string> = {
  string: 'text', number: 'a number', int: 'a whole number', boolean: 'true or false',
  array: 'a list', object: 'a mapping', record: 'a mapping',
};

/**
 * zod's issues, said the way the rest of Parley says them ("expected X, got Y"). Messages set on
 * a schema itself take precedence over these.
 */
export const formatIssueMessages: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type': {
      const expected = EXPECTED_NAMES[issue.expected] ?? issue.expected;
      return issue.input === undefined ? `missing; expected ${expected}` : `expected ${expected}, got ${describeValue(issue.input)}`;
    }
    case 'invalid_value':
      return `expected ${issue.values.length === 1 ? '' : 'one of '}${issue.values.map((v) => String(v)).join(', ')}, got ${describeValue(issue.input)}`;
    case 'too_small':
      if (issue.origin === 'array') return `expected at least ${String(issue.minimum)} item${issue.minimum === 1 ? '' : 's'}`;
      if (issue.origin === 'string') return issue.minimum === 1 ? 'expected non-empty text' : `expected at least ${String(issue.minimum)} characters`;
      return `expected ${issue.inclusive ? 'at least' : 'more than'} ${String(issue.minimum)}, got ${describeValue(issue.input)}`;
    case 'too_big':
      if (issue.origin === 'string') return `expected at most ${String(issue.maximum)} characters`;
      if (issue.origin === 'array') return `expected at most ${String(issue.maximum)} items`;
      return `expected ${issue.inclusive ? 'at most' : 'less than'} ${String(issue.maximum)}, got ${describeValue(issue.input)}`;
    case 'invalid_key':
      return `${describeValue(issue.input)} is not a valid key here: ${issue.issues[0]?.message ?? 'unexpected key'}`;
    default:
      return undefined;
  }
};
