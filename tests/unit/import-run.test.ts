import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.ts';
import { createProgressReporter, type ProgressOutput } from '../../src/import/progress.ts';
import type { ImportRecord } from '../../src/import/record.ts';
import { checkReferences, importCatalog } from '../../src/import/references.ts';
import {
  accountImportedPayload, createTally, exitCode, ImportUsageError, parseImportArguments, summaryLine,
} from '../../src/import/run.ts';
import { thrown } from '../support/thrown.ts';

describe('parley import users: arguments', () => {
  it('defaults to the line format, a real run and no per-account events', () => {
    expect(parseImportArguments(['users.jsonl'])).toEqual({ file: 'users.jsonl', format: 'parley', dryRun: false, events: 'none' });
    expect(parseImportArguments(['realm.json', '--format', 'keycloak', '--dry-run', '--events', 'all']))
      .toEqual({ file: 'realm.json', format: 'keycloak', dryRun: true, events: 'all' });
  });

  it('says what is wrong with the command line', () => {
    const usage = (args: string[]) => thrown(() => parseImportArguments(args), ImportUsageError).message;
    expect(usage([])).toBe('name the file to import');
    expect(usage(['a.jsonl', 'b.jsonl'])).toBe('one file at a time, not 2');
    expect(usage(['a.json', '--format', 'okta'])).toBe('--format must be one of parley, keycloak, auth0, auth0-export, not "okta"');
    expect(usage(['a.json', '--events', 'some'])).toBe('--events must be none or all, not "some"');
    expect(usage(['a.json', '--dryrun'])).toMatch(/Unknown option '--dryrun'/);
  });
});

describe('the run\'s counts', () => {
  it('count every outcome, sum them, and end in a summary, an exit code and the account.imported payload', () => {
    const tally = createTally();
    for (const outcome of ['created', 'created', 'updated', 'unchanged', 'failed'] as const) tally.count(outcome);
    expect(tally.counts).toEqual({ created: 2, updated: 1, unchanged: 1, failed: 1 });
    expect(tally.total).toBe(5);
    expect(summaryLine(tally.counts, false)).toBe('created 2, updated 1, unchanged 1, failed 1');
    expect(summaryLine(tally.counts, true)).toBe('dry run, nothing written: would create 2, would update 1, unchanged 1, failed 1');
    expect(exitCode(tally.counts)).toBe(1);
    expect(exitCode({ created: 3, updated: 0, unchanged: 0, failed: 0 })).toBe(0);
    expect(accountImportedPayload({
      id: 'run-1', format: 'keycloak', source: 'cli', events: 'none',
      startedAt: new Date('2026-11-01T10:00:00Z'), finishedAt: new Date('2026-11-01T10:01:00Z'), counts: tally.counts,
    })).toEqual({
      run_id: 'run-1', format: 'keycloak', source: 'cli', events: 'none', started_at: '2026-11-01T10:00:00.000Z',
      finished_at: '2026-11-01T10:01:00.000Z', created: 2, updated: 1, unchanged: 1, failed: 1,
    });
  });
});

describe('references to the configuration and the screen-sets', () => {
  const config = loadConfig({ env: {} });
  const catalog = importCatalog(config, [{ id: 'brew_method', purpose: 'personalization' }, { id: 'birthday', purpose: 'offers' }]);
  const at = new Date('2024-01-01T00:00:00Z');
  const record = (fields: Partial<ImportRecord>): ImportRecord => ({ email: 'a@example.com', emailVerified: false, identities: [], answers: [], consents: [], communication: [], ...fields });

  it('accept what the configuration and the screen-sets declare', () => {
    expect(checkReferences(record({
      answers: [{ questionId: 'brew_method', value: 'espresso', answeredAt: at, purpose: 'personalization' }],
      consents: [{ purpose: 'offers', version: 1, action: 'granted', at }],
      communication: [{ channel: 'sms', topic: 'news', enabled: false, at }],
    }), catalog)).toEqual([]);
  });

  it('name every entry that refers to something unknown, with its key path', () => {
    expect(checkReferences(record({
      answers: [
        { questionId: 'shoe_size', value: 42, answeredAt: at, purpose: 'personalization' },
        { questionId: 'brew_method', value: 'espresso', answeredAt: at, purpose: 'offers' },
        { questionId: 'birthday', value: '1990-01-01', answeredAt: at, purpose: 'marketing' },
      ],
      consents: [{ purpose: 'personalization', version: 2, action: 'granted', at }],
      communication: [{ channel: 'fax', topic: 'deals', enabled: true, at }],
    }), catalog)).toEqual([
      'answers[0].question_id: no screen-set asks "shoe_size"',
      'answers[1].purpose: "brew_method" is asked under purpose "personalization", not "offers"',
      'answers[2].purpose: unknown purpose "marketing" (declared: personalization, offers)',
      'consents[0].version: purpose "personalization" is at version 1; 2 has not been written yet',
      'communication[0].channel: unknown channel "fax" (configured: email, sms, push)',
      'communication[0].topic: unknown topic "deals" (configured: news, offers)',
    ]);
  });
});

describe('progress', () => {
  function output(isTTY: boolean): ProgressOutput & { text: () => string } {
    let written = '';
    return { isTTY, columns: 80, write: (t) => { written += t; }, text: () => written };
  }

  it('redraws one line with a bar on a terminal, at most every 100 ms, and keeps failures on lines of their own', () => {
    let now = 0;
    const out = output(true);
    const progress = createProgressReporter(out, { totalBytes: 1000, clock: () => now });
    now = 1000;
    progress.update({ records: 20_000, failed: 0, bytes: 500 });
    now = 1050;
    progress.update({ records: 21_000, failed: 0, bytes: 520 });     // too soon: not drawn
    progress.note('line 7: password: unrecognized password hash');
    now = 2000;
    progress.finish({ records: 40_000, failed: 1, bytes: 1000 });
    expect(out.text().split(/(?=\r)/)).toEqual([
      '\r[############------------]  50%  20,000 accounts  20,000/s\x1b[K',
      '\r\x1b[Kline 7: password: unrecognized password hash\n',
      // Redrawn under the note with the latest state, even the one that was too soon to draw.
      '\r[############------------]  52%  21,000 accounts  20,000/s\x1b[K',
      '\r[########################] 100%  40,000 accounts  20,000/s  1 failed\x1b[K\n',
    ]);
  });

  it('writes plain lines elsewhere, no more often than asked, and a closing line', () => {
    let now = 0;
    const out = output(false);
    const progress = createProgressReporter(out, { clock: () => now, lineEvery: 5000 });
    for (const t of [1000, 3000, 6000, 7000]) {
      now = t;
      progress.update({ records: t * 10, failed: 2 });
    }
    progress.note('line 9: email: not a valid email address');
    now = 8000;
    progress.finish({ records: 80_000, failed: 3 });
    expect(out.text()).toBe([
      'import: 10000 accounts read, 10000/s, 2 failed',
      'import: 60000 accounts read, 10000/s, 2 failed',
      'line 9: email: not a valid email address',
      'import: done, 80000 accounts in 8.0s (10000/s), 3 failed',
      '',
    ].join('\n'));
  });
});
