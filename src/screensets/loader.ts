// Loads every screen-set file in a directory and reports every problem at once, each as
// "file:line: key.path: what is wrong and what is expected", so that an author can fix a file in
// one pass. The start, the development reload and `parley screensets validate` all go through
// loadScreenSets, so they report the same problems in the same words.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { formatPath, readYamlFile, type KeyPath, type YamlFile } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import {
  conditionInput, createScreenSetSchema, DATE_OF_BIRTH_QUESTION, formatIssueMessages,
  type ConditionInput, type ConditionValue, type LocalizedText, type Question, type ScreenSet,
} from './format.ts';

/** What screen-sets are checked against: the parts of the configuration they refer to. */
export interface ScreenSetContext {
  purposes: Config['purposes'];
  defaultLocale: string;
  supportedLocales: readonly string[];
  clientIds: readonly string[];
  /**
   * Answers Parley asks for itself (the age gate's date of birth): their ids and claims are taken,
   * as if a screen-set had them.
   */
  builtInQuestions?: readonly { id: string; claim?: string; by: string }[];
}

export function screenSetContext(config: Config): ScreenSetContext {
  return {
    purposes: config.purposes,
    defaultLocale: config.locales.default,
    supportedLocales: config.locales.supported,
    clientIds: config.clients.map((c) => c.client_id),
    builtInQuestions: config.registration.minimum_age > 0
      ? [{ ...DATE_OF_BIRTH_QUESTION, by: 'the date of birth registration asks for with registration.minimum_age' }] : [],
  };
}

export interface LoadedScreenSets {
  /** In file order; empty unless `errors` is: a directory with any invalid file is not used at all. */
  sets: ScreenSet[];
  errors: string[];
  /** Problems that do not stop a start, such as a missing translation (the default locale is shown). */
  warnings: string[];
  /** The files read, as named in the messages. */
  files: string[];
}

const SCREEN_SET_FILE = /\.ya?ml$/;

interface SourceFile {
  /** Position in file order: problems are listed by file, then by line. */
  order: number;
  source: YamlFile;
}

interface Problem {
  order: number;
  line: number;
  text: string;
}

/** Where something is in a file, for messages that point back at it. */
interface Location {
  file: SourceFile;
  path: KeyPath;
}

function problemAt(file: SourceFile, keyPath: KeyPath, message: string): Problem {
  const line = file.source.line(keyPath) ?? 1;
  return { order: file.order, line, text: `${file.source.name}:${line}: ${formatPath(keyPath)}: ${message}` };
}

function describeLocation({ file, path: keyPath }: Location): string {
  return `${file.source.name}:${file.source.line(keyPath) ?? 1}`;
}

export function loadScreenSets(dir: string, context: ScreenSetContext): LoadedScreenSets {
  let listing: string[];
  try {
    listing = readdirSync(dir).filter((name) => SCREEN_SET_FILE.test(name)).sort();
  } catch (error) {
    return { sets: [], errors: [`${dir}: cannot read the screen-set directory (${(error as NodeJS.ErrnoException).code ?? 'error'})`], warnings: [], files: [] };
  }

  const schema = createScreenSetSchema({
    purposes: Object.keys(context.purposes),
    clientIds: context.clientIds,
    defaultLocale: context.defaultLocale,
    supportedLocales: context.supportedLocales,
  });
  const errors: Problem[] = [];
  const warnings: Problem[] = [];
  const fileNames: string[] = [];
  const sources: SourceFile[] = [];
  const parsed: { file: SourceFile; set: ScreenSet }[] = [];
  for (const [order, name] of listing.entries()) {
    const fullName = path.join(dir, name);
    // Named as readYamlFile names it, so that every message about a file names it the same way.
    fileNames.push(path.relative(process.cwd(), fullName) || fullName);
    const syntaxErrors: string[] = [];
    const source = readYamlFile(fullName, syntaxErrors);
    if (!source) {
      for (const text of syntaxErrors) errors.push({ order, line: 0, text });
      continue;
    }
    const file = { order, source };
    sources.push(file);
    if (!isPlainObject(source.value)) {
      errors.push(problemAt(file, [], 'expected a mapping with id, title, trigger and questions'));
      continue;
    }
    const result = schema.safeParse(source.value, { error: formatIssueMessages });
    if (result.success) {
      parsed.push({ file, set: result.data });
      continue;
    }
    for (const issue of result.error.issues) {
      const issuePath = issue.path as KeyPath;
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) errors.push(problemAt(file, [...issuePath, key], issue.message));
      } else {
        errors.push(problemAt(file, issuePath, issue.message));
      }
    }
  }

  const questionIds = checkIdentifiers(sources, errors, context.builtInQuestions ?? []);
  const questions = new Map<string, Question>();
  for (const { set } of parsed) for (const question of set.questions) questions.set(question.id, question);
  checkConditions(sources, questionIds, questions, errors);
  for (const { file, set } of parsed) {
    for (const [textPath, text] of localizedTexts(set)) {
      const problem = translationProblem(text, context);
      if (problem) warnings.push(problemAt(file, textPath, problem));
    }
  }
  if (listing.length === 0) {
    warnings.push({ order: 0, line: 0, text: `${dir}: no screen-set files (*.yaml, *.yml); no questions will be asked` });
  }

  const listed = (problems: Problem[]) =>
    problems.sort((a, b) => a.order - b.order || a.line - b.line).map((p) => p.text);
  const errorTexts = listed(errors);
  return {
    sets: errorTexts.length === 0 ? parsed.map((p) => p.set) : [],
    errors: errorTexts,
    warnings: listed(warnings),
    files: fileNames,
  };
}

/**
 * Screen-set ids, question ids and claims are each unique across all files. They are collected
 * from every file that is valid YAML, even one with other problems, so that a broken file does
 * not make references to its questions look wrong as well. Returns where each question id is.
 */
function checkIdentifiers(sources: readonly SourceFile[], errors: Problem[], builtIn: NonNullable<ScreenSetContext['builtInQuestions']>): Map<string, Location> {
  const setIds = new Map<string, Location>();
  const questionIds = new Map<string, Location>();
  const claims = new Map<string, Location & { questionId: string }>();
  const taken = new Map(builtIn.map((q) => [q.id, q.by]));
  const takenClaims = new Map(builtIn.flatMap((q) => (q.claim ? [[q.claim, q]] : [])));
  for (const file of sources) {
    const raw = file.source.value;
    if (!isPlainObject(raw)) continue;
    if (typeof raw.id === 'string') {
      const first = setIds.get(raw.id);
      if (first) errors.push(problemAt(file, ['id'], `screen-set id "${raw.id}" is already used by ${describeLocation(first)}; ids must be unique`));
      else setIds.set(raw.id, { file, path: ['id'] });
    }
    if (!Array.isArray(raw.questions)) continue;
    for (const [index, question] of raw.questions.entries()) {
      if (!isPlainObject(question) || typeof question.id !== 'string') continue;
      const idPath = ['questions', index, 'id'];
      const first = questionIds.get(question.id);
      if (taken.has(question.id)) {
        errors.push(problemAt(file, idPath, `question id "${question.id}" is Parley's own (${taken.get(question.id)}); choose another id`));
      } else if (first) {
        errors.push(problemAt(file, idPath, `question id "${question.id}" is already used by ${describeLocation(first)}; a question id is a profile key, unique across all screen-sets`));
      } else {
        questionIds.set(question.id, { file, path: idPath });
      }
      if (typeof question.claim !== 'string') continue;
      const claimPath = ['questions', index, 'claim'];
      const claimant = claims.get(question.claim);
      const ownClaimant = takenClaims.get(question.claim);
      if (ownClaimant) {
        errors.push(problemAt(file, claimPath, `the ${question.claim} claim is already filled by "${ownClaimant.id}" (${ownClaimant.by}); one question per claim`));
      } else if (claimant) {
        errors.push(problemAt(file, claimPath, `the ${question.claim} claim is already filled by question "${claimant.questionId}" (${describeLocation(claimant)}); one question per claim`));
      } else {
        claims.set(question.claim, { file, path: claimPath, questionId: question.id });
      }
    }
  }
  return questionIds;
}

/** Conditions must refer to questions that exist, with answers those questions can have. */
function checkConditions(
  sources: readonly SourceFile[],
  questionIds: ReadonlyMap<string, Location>,
  questions: ReadonlyMap<string, Question>,
  errors: Problem[],
): void {
  for (const file of sources) {
    const raw = file.source.value;
    // Checked wherever the condition itself is well-formed, even if the rest of its file is not.
    const when = isPlainObject(raw) && isPlainObject(raw.audience) ? conditionInput.safeParse(raw.audience.when) : undefined;
    if (!when?.success) continue;
    for (const reference of conditionReferences(when.data, ['audience', 'when'])) {
      const problem = referenceProblem(reference, questionIds, questions);
      if (problem) errors.push(problemAt(file, reference.path, problem));
    }
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The text for `locale`: its own, else its language's ("pt" for "pt-BR"), else the default locale's. */
export function localize(text: LocalizedText, locale: string, defaultLocale: string): string {
  if (typeof text === 'string') return text;
  for (const candidate of [locale, locale.split('-')[0]!, defaultLocale]) {
    if (Object.hasOwn(text, candidate)) return text[candidate]!;
  }
  // The loader makes sure the default locale is present; this only serves texts built elsewhere.
  return Object.values(text)[0] ?? '';
}

// ---------------------------------------------------------------------------------------------
// Conditions

interface ConditionReference {
  questionId: string;
  /** The answers that count, for equals/in; none when the condition is only about being answered. */
  values: ConditionValue[] | undefined;
  path: KeyPath;
}

/** Every question a condition refers to, with the path of the reference in the file. */
function* conditionReferences(condition: ConditionInput, at: KeyPath): Generator<ConditionReference> {
  const { answered } = condition;
  if (Array.isArray(answered)) {
    for (const [index, questionId] of answered.entries()) yield { questionId, values: undefined, path: [...at, 'answered', index] };
  } else if (answered) {
    for (const [questionId, values] of Object.entries(answered)) yield { questionId, values, path: [...at, 'answered', questionId] };
  }
  for (const [index, questionId] of (condition.not_answered ?? []).entries()) {
    yield { questionId, values: undefined, path: [...at, 'not_answered', index] };
  }
  for (const [questionId, value] of Object.entries(condition.equals ?? {})) {
    yield { questionId, values: [value], path: [...at, 'equals', questionId] };
  }
  for (const [questionId, values] of Object.entries(condition.in ?? {})) {
    yield { questionId, values, path: [...at, 'in', questionId] };
  }
  for (const key of ['all', 'any'] as const) {
    for (const [index, nested] of (condition[key] ?? []).entries()) yield* conditionReferences(nested, [...at, key, index]);
  }
}

function referenceProblem(
  reference: ConditionReference,
  knownIds: ReadonlyMap<string, unknown>,
  questions: ReadonlyMap<string, Question>,
): string | undefined {
  const { questionId, values } = reference;
  if (!knownIds.has(questionId)) {
    const suggestion = closest(questionId, knownIds.keys());
    return `unknown question "${questionId}"; a condition refers to a question id of any screen-set${suggestion ? ` (did you mean "${suggestion}"?)` : ''}`;
  }
  const question = questions.get(questionId);
  if (!question || !values) return undefined;
  for (const value of values) {
    const problem = conditionValueProblem(question, value);
    if (problem) return problem;
  }
  return undefined;
}

/** Whether an answer to `question` could ever equal `value`; a condition that cannot hold is a mistake. */
function conditionValueProblem(question: Question, value: ConditionValue): string | undefined {
  switch (question.type) {
    case 'single_choice':
    case 'multi_choice': {
      const values = question.options.map((o) => o.value);
      return typeof value === 'string' && values.includes(value)
        ? undefined
        : `${JSON.stringify(value)} is not an option of ${question.id}; expected one of ${values.join(', ')}`;
    }
    case 'boolean':
      return typeof value === 'boolean' ? undefined : `${question.id} is a yes/no question; expected true or false, got ${JSON.stringify(value)}`;
    case 'number':
    case 'scale':
      return typeof value === 'number' ? undefined : `${question.id} is answered with a number; expected a number, got ${JSON.stringify(value)}`;
    case 'date':
    case 'text':
      return typeof value === 'string' ? undefined : `${question.id} is answered with text; expected text, got ${JSON.stringify(value)}`;
  }
}

/** The known name nearest to a misspelt one, if it is near enough to be what was meant. */
function closest(name: string, known: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(name.length / 4)) + 1;
  for (const candidate of known) {
    const distance = editDistance(name, candidate);
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

// ---------------------------------------------------------------------------------------------
// Translations

/** Every text a user may see in a screen-set, with its path in the file. */
function* localizedTexts(set: ScreenSet): Generator<[KeyPath, LocalizedText]> {
  yield [['title'], set.title];
  for (const [index, question] of set.questions.entries()) {
    const at = ['questions', index];
    yield [[...at, 'label'], question.label];
    if (question.help) yield [[...at, 'help'], question.help];
    if (question.reward) yield [[...at, 'reward', 'label'], question.reward.label];
    if (question.type === 'single_choice' || question.type === 'multi_choice') {
      for (const [k, o] of question.options.entries()) yield [[...at, 'options', k, 'label'], o.label];
    }
    if (question.type === 'scale') {
      yield [[...at, 'min_label'], question.min_label];
      yield [[...at, 'max_label'], question.max_label];
    }
  }
}

/**
 * A plain string is meant to be the same in every locale (a brand name, "A2"); a map that lacks a
 * supported locale is a missing translation, and the default locale's text is shown instead.
 */
function translationProblem(text: LocalizedText, context: ScreenSetContext): string | undefined {
  if (typeof text === 'string') return undefined;
  const missing = context.supportedLocales.filter((locale) => !Object.hasOwn(text, locale));
  const unused = Object.keys(text).filter((locale) => !context.supportedLocales.includes(locale));
  const problems: string[] = [];
  if (missing.length > 0) {
    problems.push(`no ${missing.join(', ')} translation; the ${context.defaultLocale} text is shown instead`);
  }
  if (unused.length > 0) {
    problems.push(`${unused.join(', ')} ${unused.length === 1 ? 'is' : 'are'} not in locales.supported (${context.supportedLocales.join(', ')}), so never shown`);
  }
  return problems.length > 0 ? problems.join('; ') : undefined;
}
