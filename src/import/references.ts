// What a record may refer to: the purposes in the configuration, the questions of the
// screen-sets, the channels and topics of the preference center. An answer to a question Parley
// does not know, or a consent to a purpose it does not declare, could never be shown, changed or
// withdrawn in the preference center; such a record is refused with the entry's key path.
import type { Config } from '../config/schema.ts';
import { validateAnswer, type AnswerValue } from '../screensets/engine.ts';
import type { Question } from '../screensets/format.ts';
import type { ImportRecord } from './record.ts';

export interface ImportCatalog {
  purposes: ReadonlyMap<string, { version: number }>;
  /** Each question's purpose, as the screen-sets declare it, and the question to check values against. */
  questions: ReadonlyMap<string, { purpose: string; question?: Question }>;
  channels: ReadonlySet<string>;
  topics: ReadonlySet<string>;
}

export function importCatalog(
  config: Pick<Config, 'purposes' | 'communication'>, questions: Iterable<{ id: string; purpose: string; question?: Question }>,
): ImportCatalog {
  return {
    purposes: new Map(Object.entries(config.purposes).map(([id, p]) => [id, { version: p.version }])),
    questions: new Map([...questions].map((q) => [q.id, { purpose: q.purpose, ...(q.question ? { question: q.question } : {}) }])),
    channels: new Set(config.communication.channels),
    topics: new Set(Object.keys(config.communication.topics)),
  };
}

const known = (names: Iterable<string>) => [...names].join(', ') || 'none';

/** Every reference the catalog does not have, as "answers[2].question_id: …" problems. */
export function checkReferences(record: ImportRecord, catalog: ImportCatalog): string[] {
  const problems: string[] = [];
  const purpose = (at: string, id: string) => {
    if (!catalog.purposes.has(id)) problems.push(`${at}: unknown purpose "${id}" (declared: ${known(catalog.purposes.keys())})`);
  };
  record.answers.forEach((answer, i) => {
    const question = catalog.questions.get(answer.questionId);
    if (!question) {
      problems.push(`answers[${i}].question_id: no screen-set asks "${answer.questionId}"`);
      return;
    }
    purpose(`answers[${i}].purpose`, answer.purpose);
    // A value the question could not have been answered with (an option it does not have, a
    // number out of its range) could not be shown or changed in the preference center either.
    if (question.question) {
      const check = validateAnswer(question.question, asTyped(answer.value), answer.answeredAt);
      if (!check.ok || check.value === null) {
        problems.push(`answers[${i}].value: ${JSON.stringify(answer.value)} is not an answer "${answer.questionId}" accepts (${check.ok ? 'empty' : check.code})`);
      }
    }
    if (answer.purpose !== question.purpose && catalog.purposes.has(answer.purpose)) {
      problems.push(`answers[${i}].purpose: "${answer.questionId}" is asked under purpose "${question.purpose}", not "${answer.purpose}"`);
    }
  });
  record.consents.forEach((consent, i) => {
    purpose(`consents[${i}].purpose`, consent.purpose);
    const current = catalog.purposes.get(consent.purpose);
    if (current && consent.version > current.version) {
      problems.push(`consents[${i}].version: purpose "${consent.purpose}" is at version ${current.version}; ${consent.version} has not been written yet`);
    }
  });
  record.communication.forEach((setting, i) => {
    if (!catalog.channels.has(setting.channel)) problems.push(`communication[${i}].channel: unknown channel "${setting.channel}" (configured: ${known(catalog.channels)})`);
    if (!catalog.topics.has(setting.topic)) problems.push(`communication[${i}].topic: unknown topic "${setting.topic}" (configured: ${known(catalog.topics)})`);
  });
  return problems;
}

/** An imported value as the question form would have sent it, for the same checks. */
function asTyped(value: AnswerValue): string | string[] {
  return Array.isArray(value) ? value : String(value);
}
