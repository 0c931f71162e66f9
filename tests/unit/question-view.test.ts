import { describe, expect, it } from 'vitest';
import { formatAnswer, questionViews } from '../../src/http/question-view.ts';
import { screenSetSchema, type Question } from '../../src/screensets/format.ts';

// The bridge from screen-set questions to page data: localized texts, selections, bounds, and
// answers written for reading.

const set = screenSetSchema.parse({
  id: 'demo', title: 'Demo', trigger: ['after_login'],
  questions: [
    { id: 'drink', type: 'multi_choice', purpose: 'p', label: { en: 'Drinks?', ar: 'مشروبات؟' },
      options: [{ value: 'tea', label: { en: 'Tea', ar: 'شاي' } }, { value: 'coffee', label: { en: 'Coffee', ar: 'قهوة' } }] },
    { id: 'birthday', type: 'date', purpose: 'p', label: 'Birthday', max: 'today' },
    { id: 'cups', type: 'number', purpose: 'p', label: 'Cups', min: 0, step: 0.5 },
    { id: 'likes', type: 'boolean', purpose: 'p', label: 'Likes?' },
  ],
});
const [drink, birthday, cups, likes] = set.questions as [Question, Question, Question, Question];
const t = (key: string) => ({ 'profile.yes': 'Yes', 'profile.no': 'No' })[key] ?? key;
const en = { locale: 'en', defaultLocale: 'en', t };

describe('answers for reading', () => {
  it('shows option labels in the reader\'s language, dates and numbers in their own style', () => {
    expect(formatAnswer(drink, ['coffee', 'tea'], en)).toBe('Coffee, Tea');
    expect(formatAnswer(drink, ['coffee'], { ...en, locale: 'ar' })).toBe('قهوة');
    expect(formatAnswer(birthday, '1990-04-01', en)).toBe('April 1, 1990');
    expect(formatAnswer(birthday, '1990-04-01', { ...en, locale: 'ja' })).toBe('1990年4月1日');
    expect(formatAnswer(cups, 2.5, { ...en, locale: 'ar' })).toMatch(/^(2\.5|٢٫٥)$/);
    expect(formatAnswer(likes, false, en)).toBe('No');
    // A question no screen-set has any more: the stored value as it is.
    expect(formatAnswer(undefined, 'espresso', en)).toBe('espresso');
  });
});

describe('question views', () => {
  it('keeps what was submitted over the earlier answer, and resolves relative date bounds', () => {
    const [drinkView, dateView, cupsView] = questionViews(
      [{ question: drink, currentAnswer: ['tea'] }, { question: birthday }, { question: cups, currentAnswer: 3 }],
      { ...en, now: new Date('2026-06-15T12:00:00Z'), submitted: new Map([['drink', ['coffee']]]) },
    );
    expect(drinkView!.options!.filter((o) => o.checked).map((o) => o.value)).toEqual(['coffee']);
    expect(drinkView!.reasked).toBe(true);
    expect(dateView).toMatchObject({ name: 'answer.birthday', max: '2026-06-16', reasked: false });
    expect(cupsView).toMatchObject({ value: '3', min: '0', step: '0.5' });
  });
});
