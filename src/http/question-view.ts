// Turns a screen (questions from the engine) into the profile page's data: every text localized,
// each control's options and bounds, what the user typed or answered before, and the messages of
// refused values. Shared by the question screen and the authors' preview, so both look the same.
import type { AnswerValue, AskedQuestion } from '../screensets/engine.ts';
import { dateBounds } from '../screensets/engine.ts';
import type { Question } from '../screensets/format.ts';
import { localize } from '../screensets/loader.ts';
import type { ProfileQuestionView } from '../views/pages.ts';

/** The form field of a question's answer; prefixed so that no question id can clash with csrf or decline. */
export const answerFieldName = (questionId: string) => `answer.${questionId}`;

export interface QuestionViewOptions {
  locale: string;
  defaultLocale: string;
  now: Date;
  t: (key: string, vars?: Record<string, string | number>) => string;
  /** What the user submitted, by question id (re-rendering a refused form keeps it). */
  submitted?: ReadonlyMap<string, string[]>;
  /** The message of each refused answer, by question id (fieldMessages in errors.ts). */
  errors?: ReadonlyMap<string, string>;
  declined?: ReadonlySet<string>;
}

export function questionViews(asked: readonly AskedQuestion[], options: QuestionViewOptions): ProfileQuestionView[] {
  return asked.map(({ question, currentAnswer }) => questionView(question, currentAnswer, options));
}

function questionView(question: Question, currentAnswer: AnswerValue | undefined, options: QuestionViewOptions): ProfileQuestionView {
  const text = (value: Parameters<typeof localize>[0]) => localize(value, options.locale, options.defaultLocale);
  const submitted = options.submitted?.get(question.id);
  // What is selected or typed: the submission if there was one, else the earlier answer.
  const selected: string[] = submitted ?? (currentAnswer === undefined ? [] : Array.isArray(currentAnswer) ? currentAnswer : [String(currentAnswer)]);
  const error = options.errors?.get(question.id);
  const view: ProfileQuestionView = {
    id: question.id,
    name: answerFieldName(question.id),
    type: question.type,
    label: text(question.label),
    required: question.required,
    reasked: currentAnswer !== undefined,
    declined: options.declined?.has(question.id) ?? false,
  };
  if (question.help) view.help = text(question.help);
  if (question.reward) view.reward = text(question.reward.label);
  if (error) view.error = error;
  const choices = (values: { value: string; label: string }[]) =>
    values.map((o) => ({ value: o.value, label: o.label, checked: selected.includes(o.value) }));

  switch (question.type) {
    case 'single_choice':
    case 'multi_choice':
      view.options = choices(question.options.map((o) => ({ value: o.value, label: text(o.label) })));
      break;
    case 'boolean':
      view.options = choices([{ value: 'true', label: options.t('profile.yes') }, { value: 'false', label: options.t('profile.no') }]);
      break;
    case 'scale': {
      const points = [];
      for (let point = question.min; point <= question.max; point++) points.push({ value: String(point), label: String(point) });
      view.options = choices(points);
      view.minLabel = text(question.min_label);
      view.maxLabel = text(question.max_label);
      break;
    }
    case 'date': {
      const bounds = dateBounds(question, options.now);
      if (bounds.min) view.min = bounds.min;
      if (bounds.max) view.max = bounds.max;
      break;
    }
    case 'number':
      if (question.min !== undefined) view.min = String(question.min);
      if (question.max !== undefined) view.max = String(question.max);
      if (question.step !== undefined) view.step = String(question.step);
      break;
    case 'text':
      view.maxLength = question.max_length;
      if (question.pattern !== undefined) view.pattern = question.pattern;
      break;
  }
  if (question.type === 'date' || question.type === 'number' || question.type === 'text') {
    if (selected[0] !== undefined) view.value = selected[0];
  }
  return view;
}

/** An answer for reading: option labels instead of codes, yes/no, a list joined; the raw value when the question is gone. */
export function formatAnswer(question: Question | undefined, value: AnswerValue, options: Pick<QuestionViewOptions, 'locale' | 'defaultLocale' | 't'>): string {
  const text = (t: Parameters<typeof localize>[0]) => localize(t, options.locale, options.defaultLocale);
  if (question && (question.type === 'single_choice' || question.type === 'multi_choice')) {
    const labelOf = (v: string) => {
      const option = question.options.find((o) => o.value === v);
      return option ? text(option.label) : v;
    };
    return Array.isArray(value) ? value.map(labelOf).join(', ') : labelOf(String(value));
  }
  if (typeof value === 'boolean') return options.t(value ? 'profile.yes' : 'profile.no');
  // A calendar date, in the reader's own way of writing dates (UTC: it is a day, not an instant).
  if (question?.type === 'date' && typeof value === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(value)) {
    return new Intl.DateTimeFormat(options.locale, { dateStyle: 'long', timeZone: 'UTC' }).format(new Date(`${value}T00:00:00Z`));
  }
  if (typeof value === 'number') return new Intl.NumberFormat(options.locale).format(value);
  return Array.isArray(value) ? value.join(', ') : String(value);
}
