import { describe, expect, it } from 'vitest';
import { dateBounds, validateAnswer, type AnswerCheck } from '../../src/screensets/engine.ts';
import { resolveDateBound, screenSetSchema, type Question } from '../../src/screensets/format.ts';

const NOW = new Date('2026-03-10T12:00:00Z');

/** A question written as in a file, parsed as the loader parses it. */
function question(fields: Record<string, unknown>): Question {
  const set = screenSetSchema.parse({
    id: 'test', title: 'Test', trigger: ['after_login'],
    questions: [{ id: 'answer', purpose: 'personalization', label: 'Answer', ...fields }],
  });
  return set.questions[0]!;
}

const ok = (value: unknown): AnswerCheck => ({ ok: true, value } as AnswerCheck);
const refused = (code: string, params: Record<string, unknown> = {}): AnswerCheck => ({ ok: false, code, params } as AnswerCheck);
type Case = [string | string[] | undefined, AnswerCheck];

function check(q: Question, cases: Case[]) {
  for (const [raw, expected] of cases) {
    expect({ raw, result: validateAnswer(q, raw, NOW) }).toEqual({ raw, result: expected });
  }
}

const options = (...values: string[]) => values.map((value) => ({ value, label: value }));

describe('validateAnswer', () => {
  it('single_choice: one of the options', () => {
    check(question({ type: 'single_choice', options: options('espresso', 'filter') }), [
      ['espresso', ok('espresso')],
      [' filter ', ok('filter')],
      [['espresso'], ok('espresso')],
      ['ristretto', refused('not_an_option')],
      [['espresso', 'filter'], refused('single_value_expected')],
      ['', ok(null)],
      ['   ', ok(null)],
      [undefined, ok(null)],
    ]);
  });

  it('a blank required question is refused instead of skipped', () => {
    check(question({ type: 'single_choice', required: true, options: options('a', 'b') }), [['', refused('required')], [undefined, refused('required')]]);
    check(question({ type: 'multi_choice', required: true, options: options('a', 'b') }), [[[], refused('required')]]);
    check(question({ type: 'text', required: true }), [[' ', refused('required')]]);
  });

  it('multi_choice: known options, within min and max selections, stored in option order', () => {
    check(question({ type: 'multi_choice', min_selections: 2, max_selections: 3, options: options('black', 'milk', 'sweet', 'iced') }), [
      [['milk', 'black'], ok(['black', 'milk'])],
      [['black', 'black', 'milk'], ok(['black', 'milk'])],
      [['iced', 'sweet', 'milk'], ok(['milk', 'sweet', 'iced'])],
      ['milk', refused('too_few_selections', { min: 2 })],
      [['black', 'milk', 'sweet', 'iced'], refused('too_many_selections', { max: 3 })],
      [['black', 'vodka'], refused('not_an_option')],
      [[], ok(null)],
      [['', ''], ok(null)],
      [undefined, ok(null)],
    ]);
  });

  it('boolean: true or false', () => {
    check(question({ type: 'boolean' }), [
      ['true', ok(true)],
      ['false', ok(false)],
      ['yes', refused('not_a_boolean')],
      ['', ok(null)],
    ]);
  });

  it('date: a real calendar date within bounds relative to today, in the most lenient time zone', () => {
    // At 12:00 UTC it is already 11 March in UTC+14 and still 10 March in UTC−12.
    check(question({ type: 'date', min: '-120y', max: 'today' }), [
      ['1990-05-17', ok('1990-05-17')],
      ['2026-03-11', ok('2026-03-11')],
      ['2026-03-12', refused('date_too_late', { max: '2026-03-11' })],
      ['1906-03-10', ok('1906-03-10')],
      ['1906-03-09', refused('date_too_early', { min: '1906-03-10' })],
      ['1990-02-30', refused('not_a_date')],
      ['17/05/1990', refused('not_a_date')],
      ['١٩٩٠-٠٥-١٧', ok('1990-05-17')],
      ['', ok(null)],
    ]);
    check(question({ type: 'date', min: '2026-01-01', max: '2026-12-31' }), [
      ['2025-12-31', refused('date_too_early', { min: '2026-01-01' })],
      ['2026-12-31', ok('2026-12-31')],
    ]);
  });

  it('number: a number within min and max, on a step counted from min', () => {
    check(question({ type: 'number', min: 5, max: 120, step: 5 }), [
      ['30', ok(30)],
      ['٣٠', ok(30)],
      ['３０', ok(30)],
      ['7', refused('number_off_step', { step: 5, base: 5 })],
      ['0', refused('number_too_small', { min: 5 })],
      ['125', refused('number_too_large', { max: 120 })],
      ['thirty', refused('not_a_number')],
      ['0x1e', refused('not_a_number')],
      ['', ok(null)],
    ]);
    check(question({ type: 'number', min: 0, step: 0.1 }), [['0.3', ok(0.3)], ['0.35', refused('number_off_step', { step: 0.1, base: 0 })]]);
    check(question({ type: 'number' }), [['-2.5', ok(-2.5)], ['.5', ok(0.5)], ['1e3', refused('not_a_number')], [`1${'0'.repeat(400)}`, refused('not_a_number')]]);
  });

  it('scale: a whole number from min to max', () => {
    check(question({ type: 'scale', min: 1, max: 5, min_label: 'No', max_label: 'Yes' }), [
      ['3', ok(3)],
      ['5', ok(5)],
      ['0', refused('not_on_scale', { min: 1, max: 5 })],
      ['2.5', refused('not_on_scale', { min: 1, max: 5 })],
      ['x', refused('not_on_scale', { min: 1, max: 5 })],
    ]);
  });

  it('text: at most max_length code points, matching the whole pattern', () => {
    check(question({ type: 'text', max_length: 6, pattern: '[A-Z]{2}\\d{3}' }), [
      ['AB123', ok('AB123')],
      ['  AB123  ', ok('AB123')],
      ['ab123', refused('pattern_mismatch')],
      ['AB1234', refused('pattern_mismatch')],
      ['xAB123', refused('pattern_mismatch')],
      ['ABCDEFG', refused('text_too_long', { max_length: 6 })],
    ]);
    check(question({ type: 'text', max_length: 3 }), [['😀😀😀', ok('😀😀😀')], ['😀😀😀😀', refused('text_too_long', { max_length: 3 })]]);
    // NUL and other control characters are refused, never passed on to the database.
    check(question({ type: 'text' }), [['Par\u0000is', refused('control_characters')], ['a\u0007b', refused('control_characters')], ['Città', ok('Città')]]);
  });
});

describe('date bounds', () => {
  it('resolves offsets from a day, keeping to the end of shorter months', () => {
    const offset = (years: number, months: number, days: number) => ({ kind: 'offset', years, months, days } as const);
    expect(resolveDateBound(offset(-1, 0, 0), '2024-02-29')).toBe('2023-02-28');
    expect(resolveDateBound(offset(0, 1, 0), '2026-01-31')).toBe('2026-02-28');
    expect(resolveDateBound(offset(0, 0, -30), '2026-03-10')).toBe('2026-02-08');
    expect(resolveDateBound(offset(0, 0, 0), '2026-03-10')).toBe('2026-03-10');
    expect(resolveDateBound({ kind: 'date', date: '1990-01-31' }, '2026-03-10')).toBe('1990-01-31');
  });

  it('gives the dates a date input accepts today, for its min and max attributes', () => {
    const q = question({ type: 'date', min: '-18y', max: '+1w' });
    if (q.type !== 'date') throw new Error('expected a date question');
    expect(dateBounds(q, NOW)).toEqual({ min: '2008-03-10', max: '2026-03-18' });
    expect(dateBounds(question({ type: 'date' }) as typeof q, NOW)).toEqual({});
    // At 08:00 UTC it is still 9 March in UTC−12: "not in the past" accepts that day too.
    const notInThePast = question({ type: 'date', min: 'today', max: 'today' }) as typeof q;
    expect(dateBounds(notInThePast, new Date('2026-03-10T08:00:00Z'))).toEqual({ min: '2026-03-09', max: '2026-03-10' });
  });
});
