import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createParley } from '../../src/app.ts';
import { deepMerge, loadConfig } from '../../src/config/load.ts';
import { ScreenSetsInvalidError, openScreenSetLibrary } from '../../src/screensets/library.ts';
import { screenSetContext } from '../../src/screensets/loader.ts';
import { createProfiling, type Profiling } from '../../src/screensets/profiling.ts';
import type { Storage } from '../../src/storage/database.ts';
import { openTestStorage } from '../support/database.ts';
import { startTestServer } from '../support/server.ts';

// The profiling service against a real database, the screen-set library's reloads, the start
// refusing invalid screen-sets, the validate command, and the authors' preview.

const silent = pino({ level: 'silent' });
const config = loadConfig({ env: {}, overrides: { env: 'test', screensets: { dir: 'tests/fixtures/screensets-e2e' } } });
const library = openScreenSetLibrary({ dir: config.screensets.dir, context: screenSetContext(config), watch: false, logger: silent });
const tempDirs: string[] = [];

let storage: Storage;
let profiling: Profiling;
let now = new Date('2026-05-01T10:00:00Z');

beforeAll(async () => {
  storage = await openTestStorage();
  profiling = createProfiling({ db: storage.db, config, clock: () => now, screenSets: library.current });
});
afterAll(async () => {
  await storage?.close();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

async function newAccount(): Promise<string> {
  const id = randomUUID();
  await storage.db.insertInto('accounts').values({
    id, email: `${id}@example.com`, password_hash: 'x', created_at: now, updated_at: now,
  }).execute();
  return id;
}

const welcome = { setId: 'welcome', setVersion: 1, questionIds: ['favourite_drink', 'birthday'] };

function submission(accountId: string, values: Record<string, string>, declined: string[] = []) {
  return {
    accountId, clientId: 'spa', sessionKey: randomUUID(), locale: 'ar', pending: welcome,
    values: new Map(Object.entries(values).map(([k, v]) => [k, [v]])), declined: new Set(declined),
    // Both purposes of the fixtures need consent; these tests give it with the answers.
    consents: new Set(['personalization', 'offers']),
  };
}

async function eventsOf(accountId: string) {
  const rows = await storage.db.selectFrom('outbox_events').select(['type', 'payload']).where('account_id', '=', accountId).orderBy('seq').execute();
  return rows.map((r) => ({ type: r.type, ...(r.payload as Record<string, unknown>) }));
}

describe('the profiling service', () => {
  it('records a change as answer.changed, a confirmation without an event, and grants a reward once', async () => {
    const account = await newAccount();
    expect(await profiling.submit(submission(account, { favourite_drink: 'tea', birthday: '1991-07-14' }))).toMatchObject({ ok: true, answered: ['favourite_drink', 'birthday'] });
    now = new Date(now.getTime() + 60_000);
    await profiling.submit(submission(account, { favourite_drink: 'coffee', birthday: '1991-07-14' }));

    const events = await eventsOf(account);
    // Consent is recorded with the first answers only: the second screen finds it granted.
    expect(events.map((e) => e.type)).toEqual(['consent.granted', 'consent.granted', 'answer.recorded', 'answer.recorded', 'reward.granted', 'answer.changed']);
    expect(events[5]).toMatchObject({
      question_id: 'favourite_drink', value: 'coffee', previous_value: 'tea', purpose: 'personalization', locale: 'ar',
      consent: { purpose: 'personalization', state: 'granted' },
    });
    const rewards = await storage.db.selectFrom('rewards').selectAll().where('account_id', '=', account).execute();
    expect(rewards).toHaveLength(1);
    // The label as the user read it, in their language.
    expect(rewards[0]!.label).toBe('مشروب مجاني في يوم ميلادك');
    const history = await storage.db.selectFrom('answer_history').select(['question_id', 'value', 'label']).where('account_id', '=', account).orderBy('id').execute();
    expect(history).toHaveLength(4);
    expect(history[0]).toEqual({ question_id: 'favourite_drink', value: 'tea', label: 'ماذا تحب أن تشرب؟' });
    expect((await profiling.currentAnswers(account)).map((a) => [a.questionId, a.value])).toEqual([['birthday', '1991-07-14'], ['favourite_drink', 'coffee']]);
  });

  it('stores nothing when any value on the screen is refused', async () => {
    const account = await newAccount();
    const result = await profiling.submit(submission(account, { favourite_drink: 'tea', birthday: 'yesterday' }));
    expect(result.ok).toBe(false);
    if (!result.ok) expect([...result.errors.keys()]).toEqual(['birthday']);
    expect(await profiling.currentAnswers(account)).toEqual([]);
    expect(await eventsOf(account)).toEqual([]);
    const log = await storage.db.selectFrom('prompt_log').selectAll().where('account_id', '=', account).execute();
    expect(log).toEqual([]);
  });

  it('records a reloaded screen as shown once, and declines without storing the value', async () => {
    const account = await newAccount();
    const signIn = { accountId: account, clientId: 'spa', sessionKey: 's1' };
    await profiling.markShown(signIn, welcome);
    await profiling.markShown(signIn, welcome);
    await profiling.submit({ ...submission(account, { favourite_drink: 'tea' }, ['favourite_drink']), sessionKey: 's1' });
    const log = await storage.db.selectFrom('prompt_log').select(['question_id', 'outcome']).where('account_id', '=', account).orderBy('id').execute();
    expect(log).toEqual([
      { question_id: 'favourite_drink', outcome: 'shown' }, { question_id: 'birthday', outcome: 'shown' },
      { question_id: 'birthday', outcome: 'skipped' }, { question_id: 'favourite_drink', outcome: 'declined' },
    ]);
    expect(await profiling.currentAnswers(account)).toEqual([]);
  });

  it('records a screen posted twice (a double click, two tabs) once', async () => {
    const account = await newAccount();
    const twice = { ...submission(account, { favourite_drink: 'tea', birthday: '1991-07-14' }), sessionKey: 'double' };
    const [first, second] = await Promise.all([profiling.submit(twice), profiling.submit(twice)]);
    expect([first, second].filter((r) => r.ok && r.answered.length > 0)).toHaveLength(1);
    const log = await storage.db.selectFrom('prompt_log').select('outcome').where('account_id', '=', account).execute();
    expect(log.map((r) => r.outcome)).toEqual(['answered', 'answered']);
    const events = await eventsOf(account);
    expect(events.filter((e) => e.type === 'answer.recorded')).toHaveLength(2);
    expect(events.filter((e) => e.type === 'consent.granted')).toHaveLength(2);
  });

  it('decides in one read: the first sign-in gets the welcome screen, the session ceiling holds', async () => {
    const account = await newAccount();
    const signIn = { accountId: account, clientId: 'demo-shop', sessionKey: 'k', trigger: 'after_registration' as const, promptNone: false, locale: 'en' };
    expect(await profiling.pendingScreen(signIn)).toEqual(welcome);
    expect(await profiling.pendingScreen({ ...signIn, promptNone: true })).toBeNull();
    await profiling.markShown(signIn, welcome);
    // Two shown in this session: the ceiling is reached, whatever the interval.
    now = new Date(now.getTime() + 30 * 24 * 3600 * 1000);
    expect(await profiling.pendingScreen({ ...signIn, trigger: 'after_login' })).toBeNull();
    expect(await profiling.pendingScreen({ ...signIn, trigger: 'after_login', sessionKey: 'another' }))
      .toEqual({ setId: 'daily', setVersion: 1, questionIds: ['roast'] });
    expect(await profiling.pendingScreen({ ...signIn, accountId: randomUUID() })).toBeNull();
  });
});

describe('the screen-set library', () => {
  function copyOfFixtures(): string {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'parley-sets-'));
    tempDirs.push(dir);
    cpSync('tests/fixtures/screensets-e2e', dir, { recursive: true });
    return dir;
  }

  async function until(condition: () => boolean) {
    for (let i = 0; i < 100 && !condition(); i++) await new Promise((r) => setTimeout(r, 50));
    return condition();
  }

  it('picks up an edit without a restart and keeps the last good version when an edit is invalid', async () => {
    const dir = copyOfFixtures();
    const errors: unknown[] = [];
    const logger = pino({ level: 'error' }, { write: (line: string) => { errors.push(JSON.parse(line)); } });
    const watched = openScreenSetLibrary({ dir, context: screenSetContext(config), watch: true, logger });
    try {
      const file = path.join(dir, 'daily.yaml');
      writeFileSync(file, readFileSync(file, 'utf8').replace('A quick question', 'One quick question'));
      expect(await until(() => JSON.stringify(watched.find('daily')?.title).includes('One quick question'))).toBe(true);

      writeFileSync(file, readFileSync(file, 'utf8').replace('type: number', 'type: numbr'));
      expect(await until(() => errors.length > 0)).toBe(true);
      expect(JSON.stringify(errors[0])).toContain('daily.yaml');
      expect(watched.find('daily')?.questions.map((q) => q.type)).toContain('number');
    } finally {
      watched.close();
    }
  });

  it('stops the start on an invalid screen-set, naming file and line', async () => {
    const base = loadConfig({ env: {}, overrides: { env: 'test', logging: { level: 'silent' } } });
    const broken = deepMerge(base, { screensets: { dir: 'tests/fixtures/screensets-broken' } }) as typeof base;
    const error = await createParley({ config: broken, logger: silent }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ScreenSetsInvalidError);
    expect((error as Error).message).toMatch(/a-coffee\.yaml:\d+: /);
  });

  it('validates from the command line with a non-zero exit on errors', async () => {
    const run = (dir: string) => promisify(execFile)(process.execPath, ['bin/parley.js', 'screensets', 'validate', dir], { env: { ...process.env, LOG_LEVEL: 'silent' } })
      .then(({ stdout }) => ({ code: 0, output: stdout }), (e: { code: number; stderr: string }) => ({ code: e.code, output: e.stderr }));
    const good = await run('screensets');
    expect(good).toMatchObject({ code: 0 });
    expect(good.output).toMatch(/3 screen-sets with \d+ questions in 3 files are valid/);
    const bad = await run('tests/fixtures/screensets-broken');
    expect(bad.code).toBe(1);
    expect(bad.output).toMatch(/^error: tests\/fixtures\/screensets-broken\/\S+\.ya?ml:\d+: /m);
  });
});

describe('the preview', () => {
  it('renders a screen-set as users see it, in the requested language, when enabled', async () => {
    const server = await startTestServer({ screensets: { dir: 'screensets', preview: true } });
    try {
      const page = await fetch(`${server.issuer}/screensets/preview/coffee?locale=ar`);
      expect(page.status).toBe(200);
      const html = await page.text();
      expect(html).toContain('dir="rtl"');
      expect(html).toContain('متى عيد ميلادك؟');
      expect((await fetch(`${server.issuer}/screensets/preview/nothing-here`)).status).toBe(404);
    } finally {
      await server.close();
    }
    const closed = await startTestServer();
    try {
      expect((await fetch(`${closed.issuer}/screensets/preview/coffee`)).status).toBe(404);
    } finally {
      await closed.close();
    }
  });
});
