import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, PROJECT_ROOT } from '../../src/config/load.ts';
import { screenSetJsonSchema } from '../../src/screensets/format.ts';
import { loadScreenSets, localize, screenSetContext, type ScreenSetContext } from '../../src/screensets/loader.ts';
import { validateScreenSetsCommand } from '../../src/screensets/validate-command.ts';

const context: ScreenSetContext = {
  purposes: loadConfig({ env: {} }).purposes,
  defaultLocale: 'en',
  supportedLocales: ['en', 'ar', 'ja'],
  clientIds: ['demo-shop'],
};

const BROKEN = path.join(PROJECT_ROOT, 'tests/fixtures/screensets-broken');
const SHIPPED = path.join(PROJECT_ROOT, 'screensets');

/** A directory of screen-set files, named as the loader names them in messages. */
function screenSetDir(files: Record<string, string>): { dir: string; name: (file: string) => string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'parley-screensets-'));
  for (const [file, text] of Object.entries(files)) writeFileSync(path.join(dir, file), text);
  return { dir, name: (file) => path.relative(process.cwd(), path.join(dir, file)) };
}

const MINIMAL = (id: string, questionId: string, extra = '') => [
  `id: ${id}`,
  'title: Minimal',
  'trigger: [after_login]',
  'questions:',
  `  - id: ${questionId}`,
  '    type: boolean',
  '    purpose: personalization',
  '    label: Yes?',
  extra,
].join('\n');

describe('loading screen-sets', () => {
  it('reports every problem in a set of broken files, each with file, line, key path and what is expected', () => {
    const f = (file: string) => path.relative(process.cwd(), path.join(BROKEN, file));
    const result = loadScreenSets(BROKEN, context);
    expect(result.errors).toEqual([
      `${f('a-coffee.yaml')}:3: trigger[0]: expected one of after_registration, after_login, got "after_signup"`,
      `${f('a-coffee.yaml')}:4: colour: unknown key; expected one of id, title, version, trigger, audience, priority, max_questions, questions`,
      `${f('a-coffee.yaml')}:8: questions[0].purpose: unknown purpose "marketing"; expected one of the purposes in the configuration (personalization, offers)`,
      `${f('a-coffee.yaml')}:9: questions[0].label: the default locale "en" is missing; every text needs it, since other locales fall back to it`,
      `${f('a-coffee.yaml')}:12: questions[0].options[1].value: duplicate option value "espresso"; each option needs its own value`,
      `${f('a-coffee.yaml')}:13: questions[1].options: missing; expected a list of at least two options, each { value, label }`,
      `${f('a-coffee.yaml')}:17: questions[1].reask_after: expected a duration such as 12h, 7d or 26w, got "sometimes"`,
      `${f('b-coffee-again.yaml')}:1: id: screen-set id "coffee" is already used by ${f('a-coffee.yaml')}:1; ids must be unique`,
      `${f('b-coffee-again.yaml')}:5: audience.clients[0]: unknown client "mobile-app"; expected one of the configured clients (demo-shop)`,
      `${f('b-coffee-again.yaml')}:6: audience.min_account_age: expected a duration such as 12h, 7d or 26w, got "a week"`,
      `${f('b-coffee-again.yaml')}:7: audience.when.answered[0]: unknown question "brew_methd"; a condition refers to a question id of any screen-set (did you mean "brew_method"?)`,
      `${f('b-coffee-again.yaml')}:9: questions[0].id: question id "brew_method" is already used by ${f('a-coffee.yaml')}:6; a question id is a profile key, unique across all screen-sets`,
      `${f('c-syntax.yaml')}:3: Flow sequence in block collection must be sufficiently indented and end with a ]`,
      `${f('d-bounds.yml')}:9: questions[0].min_selections: must not exceed max_selections (2)`,
      `${f('d-bounds.yml')}:9: questions[0].min_selections: must not exceed the number of options (2)`,
      `${f('d-bounds.yml')}:19: questions[1].max: a scale runs from min to a larger max with at most 11 points, got 1..20`,
      `${f('d-bounds.yml')}:25: questions[2].claim: the birthdate claim needs a question of type date, not text`,
      `${f('d-bounds.yml')}:27: questions[2].pattern: not a valid pattern (Invalid regular expression: /^(?:[a-z-]+)$/v: Invalid character class); patterns follow the HTML pattern attribute, so escape ( ) [ ] { } / | and - inside [...]`,
      `${f('d-bounds.yml')}:32: questions[3].min: must not be later than max`,
      `${f('d-bounds.yml')}:35: questions[4].type: expected a question type: one of single_choice, multi_choice, boolean, date, number, scale, text`,
      `${f('e-list.yaml')}:1: (top level): expected a mapping with id, title, trigger and questions`,
      `${f('f-conditions.yaml')}:7: audience.when.any[0].equals.size: "huge" is not an option of size; expected one of small, large`,
      `${f('f-conditions.yaml')}:8: audience.when.any[1].in.refill: refill is a yes/no question; expected true or false, got "yes"`,
      `${f('g-missing.yaml')}:1: title: missing; expected text, or a map of locale to text such as { en: Hello, ar: مرحبا }`,
      `${f('g-missing.yaml')}:1: trigger: missing; expected a list of triggers: after_registration, after_login`,
      `${f('g-missing.yaml')}:1: questions: missing; expected a list of questions`,
    ]);
    expect(result.warnings).toEqual([
      `${f('f-conditions.yaml')}:2: title: no ja translation; the en text is shown instead`,
      `${f('f-conditions.yaml')}:20: questions[1].label: fr is not in locales.supported (en, ar, ja), so never shown`,
    ]);
    // A directory with any invalid file is not used at all: the last good version stays in use.
    expect(result.sets).toEqual([]);
    expect(result.files).toHaveLength(7);
  });

  it('loads the shipped examples with no errors and no warnings against the default configuration', () => {
    const result = loadScreenSets(SHIPPED, screenSetContext(loadConfig({ env: {} })));
    expect(result.errors).toEqual([]);
    expect(result.warnings).toEqual([]);
    expect(result.sets.map((s) => s.id)).toEqual(['coffee-sustainability', 'coffee', 'language-onboarding']);
    const coffee = result.sets.find((s) => s.id === 'coffee')!;
    expect(coffee.questions[0]).toMatchObject({
      id: 'birthday', type: 'date', claim: 'birthdate', purpose: 'offers',
      min: { kind: 'offset', years: -120, months: 0, days: 0 },
      max: { kind: 'offset', years: 0, months: 0, days: 0 },
      reward: { points: 50 },
    });
    expect(coffee.questions[1]).toMatchObject({ id: 'brew_method', reask_after: 180 * 86400 });
    expect(coffee.audience).toEqual({ clients: ['demo-shop'], min_account_age: 86400 });
    const sustainability = result.sets.find((s) => s.id === 'coffee-sustainability')!;
    expect(sustainability.audience?.when).toEqual({ op: 'answered', questionId: 'brew_method' });
  });

  it('warns about a question without a translation in a supported locale, Hebrew and Thai included', () => {
    const config = loadConfig({ env: {} });
    expect(config.locales.supported).toEqual(expect.arrayContaining(['he', 'th']));
    const { dir, name } = screenSetDir({
      'c.yaml': [
        'id: c',
        'title: { en: Tea, ar: شاي, ja: お茶, he: תה, th: ชา }',
        'trigger: [after_login]',
        'questions:',
        '  - id: likes_tea',
        '    type: boolean',
        '    purpose: offers',
        '    label: { en: Tea?, ar: شاي؟, ja: お茶？, he: תה? }',
        '    help: { en: Or not., ar: أو لا., ja: またはいいえ。, th: หรือไม่ }',
      ].join('\n'),
    });
    const result = loadScreenSets(dir, screenSetContext(config));
    expect(result.errors).toEqual([]);
    expect(result.warnings).toEqual([
      `${name('c.yaml')}:8: questions[0].label: no th translation; the en text is shown instead`,
      `${name('c.yaml')}:9: questions[0].help: no he translation; the en text is shown instead`,
    ]);
  });

  it('applies the defaults: version 1, priority 0, optional questions, text up to 200 characters', () => {
    const { dir } = screenSetDir({
      'x.yaml': MINIMAL('x', 'likes_x'),
      'y.yaml': 'id: y\ntitle: Y\ntrigger: [after_login]\nquestions:\n  - { id: y_text, type: text, purpose: offers, label: Say }\n',
    });
    const { sets, errors } = loadScreenSets(dir, context);
    expect(errors).toEqual([]);
    expect(sets[0]).toMatchObject({ version: 1, priority: 0, questions: [{ required: false }] });
    expect(sets[1]!.questions[0]).toMatchObject({ type: 'text', max_length: 200 });
  });

  it('normalizes conditions: several keys in one mapping must all hold, equals is in with one value', () => {
    const { dir } = screenSetDir({
      'a.yaml': MINIMAL('a', 'has_cat'),
      'b.yaml': MINIMAL('b', 'cat_name', [
        'audience:',
        '  when:',
        '    answered: { has_cat: [true] }',
        '    not_answered: [cat_name]',
        '    any: [{ equals: { has_cat: true } }, { in: { has_cat: [false] } }]',
      ].join('\n')),
    });
    const { sets, errors } = loadScreenSets(dir, context);
    expect(errors).toEqual([]);
    expect(sets[1]!.audience?.when).toEqual({
      op: 'all',
      conditions: [
        { op: 'in', questionId: 'has_cat', values: [true] },
        { op: 'not_answered', questionId: 'cat_name' },
        {
          op: 'any',
          conditions: [
            { op: 'in', questionId: 'has_cat', values: [true] },
            { op: 'in', questionId: 'has_cat', values: [false] },
          ],
        },
      ],
    });
  });

  it('reports a claim filled by two questions, and unknown keys inside questions with the keys allowed there', () => {
    const { dir, name } = screenSetDir({
      'a.yaml': 'id: a\ntitle: A\ntrigger: [after_login]\nquestions:\n  - { id: born, type: date, purpose: offers, claim: birthdate, label: Born? }\n',
      'b.yaml': 'id: b\ntitle: B\ntrigger: [after_login]\nquestions:\n  - { id: birthday, type: date, purpose: offers, claim: birthdate, label: Born?, colour: red }\n',
    });
    expect(loadScreenSets(dir, context).errors).toEqual([
      `${name('b.yaml')}:5: questions[0].colour: unknown key; expected one of id, type, label, help, purpose, claim, reward, reask_after, required, min, max`,
      `${name('b.yaml')}:5: questions[0].claim: the birthdate claim is already filled by question "born" (${name('a.yaml')}:5); one question per claim`,
    ]);
  });

  it('keeps the id and the claim of the date of birth the age gate asks for, when it is on', () => {
    const { dir, name } = screenSetDir({
      'a.yaml': 'id: a\ntitle: A\ntrigger: [after_login]\nquestions:\n  - { id: born, type: date, purpose: offers, claim: birthdate, label: Born? }\n'
        + '  - { id: date_of_birth, type: date, purpose: offers, label: Born? }\n',
    });
    expect(loadScreenSets(dir, context).errors).toEqual([]);
    const gated = screenSetContext(loadConfig({ env: {}, overrides: {
      registration: { minimum_age: 16, birthdate_purpose: 'age_check' },
      purposes: { age_check: { legal_basis: 'legal_obligation', version: 1, title: 'Age check' } },
    } }));
    expect(loadScreenSets(dir, gated).errors).toEqual([
      `${name('a.yaml')}:5: questions[0].claim: the birthdate claim is already filled by "date_of_birth" (the date of birth registration asks for with registration.minimum_age); one question per claim`,
      `${name('a.yaml')}:6: questions[1].id: question id "date_of_birth" is Parley's own (the date of birth registration asks for with registration.minimum_age); choose another id`,
    ]);
  });

  it('reports a missing directory, and warns about an empty one', () => {
    const missing = path.join(os.tmpdir(), 'parley-no-such-directory');
    expect(loadScreenSets(missing, context).errors).toEqual([`${missing}: cannot read the screen-set directory (ENOENT)`]);
    const empty = mkdtempSync(path.join(os.tmpdir(), 'parley-screensets-'));
    mkdirSync(path.join(empty, 'drafts'));
    expect(loadScreenSets(empty, context)).toEqual({
      sets: [], errors: [], files: [],
      warnings: [`${empty}: no screen-set files (*.yaml, *.yml); no questions will be asked`],
    });
  });
});

describe('localize', () => {
  const text = { en: 'Your coffee', ar: 'قهوتك', pt: 'Seu café' };

  it('picks the locale, then its language, then the default locale', () => {
    expect(localize(text, 'ar', 'en')).toBe('قهوتك');
    expect(localize(text, 'pt-BR', 'en')).toBe('Seu café');
    expect(localize(text, 'ja', 'en')).toBe('Your coffee');
    expect(localize('Espresso', 'ja', 'en')).toBe('Espresso');
  });

  it('never reads inherited properties as translations', () => {
    expect(localize(text, 'constructor', 'en')).toBe('Your coffee');
  });
});

describe('parley screensets validate', () => {
  it('prints every problem and a summary, and exits 1 on errors', () => {
    const { dir, name } = screenSetDir({
      'a.yaml': MINIMAL('a', 'q_a', 'priority: high'),
      'b.yaml': 'id: b\ntitle: { en: B, ar: ب }\ntrigger: [after_login]\nquestions:\n  - { id: q_b, type: boolean, purpose: offers, label: B? }\n',
    });
    expect(validateScreenSetsCommand(dir, context)).toEqual({
      exitCode: 1,
      output: [
        `error: ${name('a.yaml')}:9: priority: expected a number, got "high"`,
        `warning: ${name('b.yaml')}:2: title: no ja translation; the en text is shown instead`,
        `${dir}: 1 error and 1 warning in 2 files; nothing was loaded`,
      ].join('\n'),
    });
  });

  it('summarizes valid screen-sets and exits 0, warnings included', () => {
    const { dir } = screenSetDir({
      'a.yaml': MINIMAL('a', 'q_a'),
      'b.yaml': 'id: b\ntitle: { en: B }\ntrigger: [after_login]\nquestions:\n  - { id: q_b, type: boolean, purpose: offers, label: B? }\n',
    });
    expect(validateScreenSetsCommand(dir, context)).toEqual({
      exitCode: 0,
      output: expect.stringMatching(new RegExp(`^warning: .*title: no ar, ja translation.*\n${dir}: 2 screen-sets with 2 questions in 2 files are valid \\(1 warning\\)$`)) as unknown,
    });
  });
});

describe('the JSON Schema for editors', () => {
  it('is the one generated from the format (update: npx vitest run tests/unit/screensets-loader.test.ts --update)', async () => {
    await expect(`${JSON.stringify(screenSetJsonSchema(), null, 2)}\n`)
      .toMatchFileSnapshot(path.join(PROJECT_ROOT, 'screensets/screenset.schema.json'));
  });
});
