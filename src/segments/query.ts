// What a segment condition means for one client, as SQL.
//
// The release rule (src/consent/release.ts) holds here too: a client filters only on answers it
// could receive. An answer condition matches an answer only when its purpose is one the client is
// registered for AND the account's current consent allows that purpose; a user who withdrew
// consent is, for the client, a user who never answered. Conditions naming a question or a consent
// outside the client's purposes are refused rather than silently matching nothing, so a typo and a
// missing registration are told apart (403, see SegmentQueryError).
//
// How it runs fast (figures in bench/segments.ts, indexes in migrations/2026-11-23T0400-segments.ts):
//   - Conditions are EXISTS / NOT EXISTS subqueries correlated on the account id.
//   - Answer conditions on the same question in a top-level `all` are merged into one (an account
//     has one current answer per question), so `in` and `answered_within` narrow one index range
//     of answers (question_id, value, updated_at) INCLUDE (account_id, purpose): an index-only scan.
//   - When the top level requires an answer, the query is driven from the answers that match it
//     rather than from all accounts (each account has at most one answer row per question, so the
//     rows are the accounts); a top-level `any` of such conjunctions is the union of their sets.
//     The candidates are sorted by account before the other conditions are checked, so that the
//     per-account probes walk the other indexes in order (the same pages, visited in order:
//     20-50 % faster at 1M accounts).
//   - The current consent is a row of consent_current (the latest ledger row per account and
//     purpose, written with the ledger): a semi-join on its primary key, which carries the state
//     and version, so each check is one index-only probe. A top-level `consent P granted` makes
//     the release check of answers under P redundant, so it is left out there: one probe per
//     candidate instead of two. (PostgreSQL could join a broad match with the consents as one hash
//     join, about twice as fast at 200,000 candidates, but it underestimates how many answers a
//     `?|` or a JSON value matches by 100-1000x and so always chooses the probes.)
//   - Values are compared as JSON (value IN ($1::jsonb, ...)), which serves every question type from
//     one plain column index; multiple-choice answers use a GIN index (`?|`: any of the values).
import { sql, type Expression, type ExpressionBuilder, type SelectQueryBuilder, type SqlBool } from 'kysely';
import type { Config } from '../config/schema.ts';
import { parseDuration } from '../config/duration.ts';
import { isCalendarDate, type Question } from '../screensets/format.ts';
import type { DB } from '../storage/database.ts';
import type { Database } from '../storage/schema.ts';
import { DomainError } from '../errors.ts';
import { conditionBoundsProblem, type AnswerScalar, type Condition, type ConsentStateName } from './conditions.ts';

export const SEGMENT_ERROR_CODES = [
  /** The condition names an unknown question or purpose, or a value the question cannot have. */
  'invalid_condition',
  /** The condition names a question or purpose outside the calling client's purposes. */
  'purpose_not_allowed',
  /** The cursor is malformed or belongs to another query. */
  'invalid_cursor',
] as const;

export type SegmentErrorCode = (typeof SEGMENT_ERROR_CODES)[number];

declare module '../errors.ts' {
  interface ErrorCodes { segment: SegmentErrorCode }
}

/** A condition or cursor the client must fix; the message says what, for the API's caller. */
export class SegmentQueryError extends DomainError<'segment'> {
  /** Where in the condition the problem is, e.g. ['all', 0, 'in', 1]. */
  readonly path: (string | number)[];
  constructor(code: SegmentErrorCode, path: (string | number)[], message: string) {
    super('segment', code, { message });
    this.path = path;
  }
}

export interface SegmentPolicy {
  /** The purposes the calling client is registered for. */
  clientPurposes: readonly string[];
  purposes: Config['purposes'];
  /** The question with this id in the screen-sets now in use. */
  question: (questionId: string) => Question | undefined;
  now: Date;
}

/**
 * Answers longer than this (as JSON text) are left out of the value index: a B-tree entry must
 * fit in a third of a page, and a long free-text answer would not. Filter values are at most 200
 * characters, so a match is never among them. The same literal appears in the index predicate
 * and in every query that should use the index.
 */
export const INDEXED_VALUE_BYTES = 1000;

// ---- Resolving: the condition checked against screen-sets, configuration and client ------------

type Node =
  | { kind: 'and'; items: Node[] }
  | { kind: 'or'; items: Node[] }
  | { kind: 'not'; item: Node }
  | AnswerNode
  | { kind: 'consent'; purpose: string; state: ConsentStateName; version: number };

interface AnswerNode {
  kind: 'answer';
  questionId: string;
  multi: boolean;
  /** JSON encodings of the values the answer may have; undefined: any value. */
  values?: string[] | undefined;
  /** Answered (or last confirmed) at or after this. */
  since?: Date | undefined;
}

interface ResolveContext extends SegmentPolicy {
  allowed: ReadonlySet<string>;
}

function resolve(condition: Condition, path: (string | number)[], context: ResolveContext): Node {
  if ('all' in condition) return { kind: 'and', items: condition.all.map((c, i) => resolve(c, [...path, 'all', i], context)) };
  if ('any' in condition) return { kind: 'or', items: condition.any.map((c, i) => resolve(c, [...path, 'any', i], context)) };
  if ('not' in condition) return { kind: 'not', item: resolve(condition.not, [...path, 'not'], context) };
  if ('consent' in condition) return resolveConsent(condition.consent, condition.state, path, context);
  if ('answered' in condition) return answerNode(condition.answered, {}, [...path, 'answered'], path, context);
  if ('not_answered' in condition) {
    return { kind: 'not', item: answerNode(condition.not_answered, {}, [...path, 'not_answered'], path, context) };
  }
  return answerNode(condition.answer, { in: condition.in, within: condition.answered_within }, [...path, 'answer'], path, context);
}

function answerNode(
  questionId: string, match: { in?: AnswerScalar[] | undefined; within?: string | undefined },
  keyPath: (string | number)[], path: (string | number)[], context: ResolveContext,
): AnswerNode {
  const question = context.question(questionId);
  if (!question) throw new SegmentQueryError('invalid_condition', keyPath, `unknown question "${questionId}": no screen-set asks it`);
  if (!context.allowed.has(question.purpose)) {
    throw new SegmentQueryError('purpose_not_allowed', keyPath,
      `question "${questionId}" is asked for the purpose "${question.purpose}", which this client is not registered for`);
  }
  const values = match.in?.map((value, i) => {
    checkValue(question, value, [...path, 'in', i]);
    // A multiple-choice filter names options; an answer is the JSON value itself.
    return question.type === 'multi_choice' ? String(value) : JSON.stringify(value);
  });
  const since = match.within === undefined ? undefined : new Date(context.now.getTime() - parseDuration(match.within)! * 1000);
  return { kind: 'answer', questionId, multi: question.type === 'multi_choice', values, since };
}

function checkValue(question: Question, value: AnswerScalar, path: (string | number)[]): void {
  const fail = (expected: string) => {
    throw new SegmentQueryError('invalid_condition', path, `${JSON.stringify(value)} is not a possible answer to "${question.id}": expected ${expected}`);
  };
  switch (question.type) {
    case 'single_choice':
    case 'multi_choice': {
      const options = question.options.map((o) => o.value);
      if (typeof value !== 'string' || !options.includes(value)) fail(`one of its options (${options.join(', ')})`);
      return;
    }
    case 'boolean':
      if (typeof value !== 'boolean') fail('true or false');
      return;
    case 'number':
    case 'scale':
      if (typeof value !== 'number' || !Number.isFinite(value)) fail('a number');
      return;
    case 'date':
      if (typeof value !== 'string' || !isCalendarDate(value)) fail('a date such as 1990-04-01');
      return;
    case 'text':
      if (typeof value !== 'string') fail('text');
      return;
  }
}

function resolveConsent(purpose: string, state: ConsentStateName, path: (string | number)[], context: ResolveContext): Node {
  const definition = context.purposes[purpose];
  const at = [...path, 'consent'];
  if (!definition) throw new SegmentQueryError('invalid_condition', at, `unknown purpose "${purpose}"`);
  if (!context.allowed.has(purpose)) throw new SegmentQueryError('purpose_not_allowed', at, `this client is not registered for the purpose "${purpose}"`);
  if (definition.legal_basis !== 'consent') {
    throw new SegmentQueryError('invalid_condition', at,
      `the purpose "${purpose}" rests on ${definition.legal_basis}, not on consent: there is no consent to filter on`);
  }
  return { kind: 'consent', purpose, state, version: definition.version };
}

// ---- Planning: merging, the driving answer, redundant consent checks ---------------------------

/** The top-level conjuncts, nested `all`s flattened. */
function conjuncts(node: Node): Node[] {
  return node.kind === 'and' ? node.items.flatMap(conjuncts) : [node];
}

/**
 * Answer conditions on one question ANDed together are one condition: the values both allow,
 * the later of the recency bounds. (Not for two value lists of a multiple choice: "any of A" and
 * "any of B" is not "any of A ∩ B"; those stay apart.)
 */
function mergeAnswers(nodes: Node[]): Node[] {
  const merged: Node[] = [];
  const byQuestion = new Map<string, AnswerNode>();
  for (const node of nodes) {
    if (node.kind !== 'answer') {
      merged.push(node);
      continue;
    }
    const previous = byQuestion.get(node.questionId);
    if (!previous || (previous.multi && previous.values && node.values)) {
      const copy = { ...node };
      if (!previous) byQuestion.set(node.questionId, copy);
      merged.push(copy);
      continue;
    }
    if (node.values) previous.values = previous.values ? previous.values.filter((v) => node.values!.includes(v)) : node.values;
    if (node.since && (!previous.since || node.since > previous.since)) previous.since = node.since;
  }
  return merged;
}

interface Plan {
  /** The answer condition the query is driven from, if the top level requires one. */
  driver: AnswerNode | undefined;
  /** Everything else, ANDed. */
  rest: Node[];
  /** Purposes whose consent the top level requires to be granted: their answers need no second check. */
  granted: ReadonlySet<string>;
}

function plan(node: Node): Plan {
  const parts = mergeAnswers(conjuncts(node));
  const granted = new Set(parts.flatMap((p) => (p.kind === 'consent' && p.state === 'granted' ? [p.purpose] : [])));
  const answers = parts.filter((p): p is AnswerNode => p.kind === 'answer');
  // Values on a single-valued question use the B-tree range; then any values; then any answer.
  const driver = answers.find((a) => a.values && !a.multi) ?? answers.find((a) => a.values) ?? answers[0];
  return { driver, rest: parts.filter((p) => p !== driver), granted };
}

// ---- SQL ----------------------------------------------------------------------------------------

type AnyBuilder = ExpressionBuilder<Database, never>;
/** An answers row in the query: `a` in a subquery, `d` for the row the query is driven from. */
type AnswerAlias = 'a' | 'd';
type Releasable = (eb: AnyBuilder, alias: AnswerAlias) => Expression<SqlBool>;
const col = <T>(alias: AnswerAlias, column: string) => sql.ref<T>(`${alias}.${column}`);

/** The answer row matches: one of the JSON values, or for a multiple choice, any of the options. */
function matchValues(eb: AnyBuilder, node: AnswerNode, alias: AnswerAlias): Expression<SqlBool>[] {
  const value = col<unknown>(alias, 'value');
  if (node.values && node.values.length === 0) return [sql<SqlBool>`false`];
  const conditions: Expression<SqlBool>[] = [];
  if (node.values && node.multi) {
    // The partial GIN index covers array values only; its predicate must appear here.
    conditions.push(sql<SqlBool>`jsonb_typeof(${value}) = 'array'`, sql<SqlBool>`${value} ?| ${sql.val(node.values)}::text[]`);
  } else if (node.values) {
    // The value index is partial (INDEXED_VALUE_BYTES); repeating its predicate lets the planner use it.
    conditions.push(
      sql<SqlBool>`octet_length(${value}::text) <= ${sql.lit(INDEXED_VALUE_BYTES)}`,
      eb(value, 'in', node.values.map((v) => sql<unknown>`${v}::jsonb`)),
    );
  }
  if (node.since) conditions.push(eb(col<Date>(alias, 'updated_at'), '>=', node.since));
  return conditions;
}

/**
 * Whether an answer row may be used for this client now: its purpose is one of the client's,
 * and either that purpose does not rest on consent (or the query already requires its consent:
 * `granted`), or the account's current consent to it (consent_current) is a grant of the purpose's
 * current version: the rule of purposeAllows in src/consent/ledger.ts.
 */
export function answerReleasable(allowed: ReadonlySet<string>, purposes: Config['purposes'], granted: ReadonlySet<string> = new Set()): Releasable {
  const without = [...allowed].filter((p) => purposes[p]!.legal_basis !== 'consent' || granted.has(p));
  const withConsent = [...allowed].filter((p) => purposes[p]!.legal_basis === 'consent' && !granted.has(p));
  return (eb, alias) => {
    const purpose = col<string>(alias, 'purpose');
    const branches: Expression<SqlBool>[] = [];
    if (without.length > 0) branches.push(eb(purpose, 'in', without));
    if (withConsent.length > 0) {
      // The current version of the row's purpose: one probe per answer, whatever its purpose.
      const currentVersion = sql<number>`case ${purpose} ${sql.join(withConsent.map((p) => sql`when ${sql.lit(p)} then ${sql.lit(purposes[p]!.version)}`), sql` `)} end`;
      branches.push(eb.and([
        eb(purpose, 'in', withConsent),
        eb.exists(eb.selectFrom('consent_current as c').select(sql<number>`1`.as('one'))
          .where('c.subject', '=', col<string>(alias, 'account_id')).where('c.purpose', '=', purpose)
          .where('c.action', '=', 'granted').where('c.purpose_version', '=', currentVersion)),
      ]));
    }
    return branches.length === 0 ? sql<SqlBool>`false` : eb.or(branches);
  };
}

interface Emit {
  release: Releasable;
  /** The release check for answers in the top-level conjunction, where `granted` consents are already required. */
  releaseTop: Releasable;
}

function answerExists(eb: AnyBuilder, node: AnswerNode, account: Expression<string>, release: Releasable): Expression<SqlBool> {
  return eb.exists(eb.selectFrom('answers as a').select(sql<number>`1`.as('one'))
    .where('a.account_id', '=', account)
    .where('a.question_id', '=', node.questionId)
    .where((inner) => inner.and([...matchValues(inner as unknown as AnyBuilder, node, 'a'), release(inner as unknown as AnyBuilder, 'a')])));
}

function consentIs(eb: AnyBuilder, node: Extract<Node, { kind: 'consent' }>, account: Expression<string>): Expression<SqlBool> {
  const current = eb.selectFrom('consent_current as c').select(sql<number>`1`.as('one'))
    .where('c.subject', '=', account).where('c.purpose', '=', node.purpose);
  if (node.state === 'none') return eb.not(eb.exists(current));
  if (node.state === 'withdrawn') return eb.exists(current.where('c.action', '=', 'withdrawn'));
  return eb.exists(current.where('c.action', '=', 'granted').where('c.purpose_version', node.state === 'granted' ? '=' : '<', node.version));
}

function emit(eb: AnyBuilder, node: Node, account: Expression<string>, release: Releasable): Expression<SqlBool> {
  switch (node.kind) {
    case 'and': return eb.and(node.items.map((n) => emit(eb, n, account, release)));
    case 'or': return eb.or(node.items.map((n) => emit(eb, n, account, release)));
    case 'not': return eb.not(emit(eb, node.item, account, release));
    case 'consent': return consentIs(eb, node, account);
    case 'answer': return answerExists(eb, node, account, release);
  }
}

function emitRest(eb: AnyBuilder, p: Plan, account: Expression<string>, context: Emit): Expression<SqlBool> {
  if (p.rest.length === 0) return sql<SqlBool>`true`;
  // Top-level answer conditions may use the shortened release check; nested ones may not.
  return eb.and(p.rest.map((n) => (n.kind === 'answer' ? answerExists(eb, n, account, context.releaseTop) : emit(eb, n, account, context.release))));
}

export interface SegmentQueries {
  /** `select count(*)::int as count …` */
  count(): SelectQueryBuilder<Database, never, { count: number }>;
  /** `select <account id> as id … order by id limit n` after the given id. */
  page(after: string | undefined, limit: number): SelectQueryBuilder<Database, never, { id: string }>;
}

/**
 * Checks the condition against the screen-sets, the configuration and the client's purposes,
 * and returns its count and page queries. Throws SegmentQueryError.
 */
export function segmentQueries(db: DB, condition: Condition, policy: SegmentPolicy): SegmentQueries {
  const bounds = conditionBoundsProblem(condition);
  if (bounds) throw new SegmentQueryError('invalid_condition', bounds.path, bounds.message);
  const allowed = new Set(policy.clientPurposes.filter((p) => policy.purposes[p]));
  const root = resolve(condition, [], { ...policy, allowed });
  const count = sql<number>`count(*)::int`.as('count');
  type Count = SelectQueryBuilder<Database, never, { count: number }>;
  type Page = SelectQueryBuilder<Database, never, { id: string }>;

  /**
   * The account ids of one conjunction driven from its answer. The matching answers are read from
   * the index first and sorted by account, and only then checked for consent and the other
   * conditions: probes in account order visit the index pages in order, which measured 20-50 %
   * faster than probing in the order of the value index (bench/segments.ts). The ORDER BY
   * also keeps PostgreSQL from folding the subquery back into one scan. `d` is the driving row.
   */
  const driven = (p: Plan & { driver: AnswerNode }, after: string | undefined) => {
    const context: Emit = { release: answerReleasable(allowed, policy.purposes), releaseTop: answerReleasable(allowed, policy.purposes, p.granted) };
    const match = (eb: AnyBuilder) => matchValues(eb, p.driver, 'd');
    let candidates = db.selectFrom('answers as d').select(['d.account_id', 'd.purpose'])
      .where('d.question_id', '=', p.driver.questionId);
    if (p.driver.values || p.driver.since) candidates = candidates.where((eb) => eb.and(match(eb as unknown as AnyBuilder)));
    if (after !== undefined) candidates = candidates.where('d.account_id', '>', after);
    return db.selectFrom(candidates.orderBy('d.account_id').as('d')).select('d.account_id as id')
      .where((eb) => context.releaseTop(eb as unknown as AnyBuilder, 'd'))
      .where((eb) => emitRest(eb as unknown as AnyBuilder, p, sql.ref<string>('d.account_id'), context));
  };
  const hasDriver = (p: Plan): p is Plan & { driver: AnswerNode } => p.driver !== undefined;

  // A conjunction that requires an answer: driven from the matching answers. Each account has at
  // most one answer row per question, so the rows are the accounts.
  const top = plan(root);
  if (hasDriver(top)) {
    return {
      count: () => db.selectFrom(driven(top, undefined).as('s')).select(count) as unknown as Count,
      page: (after, limit) => driven(top, after).orderBy('d.account_id').limit(limit) as unknown as Page,
    };
  }

  // `any` of conjunctions that each require an answer: the union of their driven sets, rather than
  // every account tested against every branch.
  const branches = root.kind === 'or' ? root.items.map(plan) : [];
  if (branches.length > 0 && branches.every(hasDriver)) {
    const union = (after: string | undefined) => {
      const [first, ...others] = branches.map((b) => driven(b, after));
      return others.reduce((u, q) => u.union(q), first!);
    };
    return {
      count: () => db.selectFrom(union(undefined).as('s')).select(count) as unknown as Count,
      page: (after, limit) => db.selectFrom(union(after).as('s')).select('s.id').orderBy('s.id').limit(limit) as unknown as Page,
    };
  }

  // Anything else is tested account by account.
  const context: Emit = { release: answerReleasable(allowed, policy.purposes), releaseTop: answerReleasable(allowed, policy.purposes, top.granted) };
  const base = (after: string | undefined) => {
    let q = db.selectFrom('accounts as acc').select('acc.id')
      .where((eb) => emitRest(eb as unknown as AnyBuilder, top, sql.ref<string>('acc.id'), context));
    if (after !== undefined) q = q.where('acc.id', '>', after);
    return q;
  };
  return {
    count: () => db.selectFrom(base(undefined).as('s')).select(count) as unknown as Count,
    page: (after, limit) => base(after).orderBy('acc.id').limit(limit) as unknown as Page,
  };
}
