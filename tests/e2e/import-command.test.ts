import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/config/load.ts';
import { openStorage, type Storage } from '../../src/storage/database.ts';
import { ownDatabase, type Backend } from '../support/database.ts';

// `parley import users` as operators run it: the real command in a process of its own, on the
// sample files, against a database of its own (a PGlite directory, or a fresh PostgreSQL
// database with TEST_DATABASE_URL), which the test reads afterwards.

let dir: string;
interface Target { configFile: string; backend: Backend; dataDir: string; drop: () => Promise<void> }
/** The sample files' accounts overlap on purpose: the readers' test imports into a database of its own. */
const targets: Target[] = [];
let main: Target;
let readers: Target;

async function target(name: string): Promise<Target> {
  const own = await ownDatabase(`import_command_${name}`);
  const configFile = path.join(dir, `${name}.yaml`);
  const dataDir = path.join(dir, `pglite-${name}`);
  writeFileSync(configFile, JSON.stringify({
    env: 'test',
    database: { url: own.backend.url, data_dir: dataDir },
    screensets: { dir: 'screensets', watch: false },
    logging: { level: 'warn', pretty: false },
  }));
  const made = { configFile, backend: own.backend, dataDir, drop: own.drop };
  targets.push(made);
  return made;
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'parley-import-command-'));
  main = await target('main');
  readers = await target('readers');
});
afterAll(async () => {
  for (const t of targets) await t.drop();
  rmSync(dir, { recursive: true, force: true });
});

function parley(...args: string[]) {
  return parleyOn(main, ...args);
}

function parleyOn(on: Target, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'bin/parley.js'), ...args], {
    cwd: PROJECT_ROOT, env: { PATH: process.env.PATH, PARLEY_CONFIG: on.configFile }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk; });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

const fixture = (name: string) => path.join(PROJECT_ROOT, 'tests/fixtures/import', name);

/** The command's database, opened after it has ended (PGlite allows one process at a time). */
async function withDatabase<T>(read: (storage: Storage) => Promise<T>): Promise<T> {
  const storage = await openStorage({
    url: main.backend.url, data_dir: main.dataDir, migrate_on_start: false, pool_max: 2, connection_timeout: 5, statement_timeout: 10,
  }, pino({ level: 'silent' }));
  try {
    return await read(storage);
  } finally {
    await storage.close();
  }
}

function writeLines(name: string, records: object[]): string {
  const file = path.join(dir, name);
  writeFileSync(file, `${records.map((r) => JSON.stringify(r)).join('\n')}\n`);
  return file;
}

describe('parley import users', () => {
  it('imports the good lines, names each bad one with its line, ends with the counts and exit code 1', async () => {
    const run = await parley('import', 'users', fixture('parley-users.jsonl'));
    expect(run.stdout).toBe('created 4, updated 0, unchanged 0, failed 6\n');
    expect(run.code).toBe(1);
    for (const line of [5, 6, 7, 8, 9, 11]) expect(run.stderr).toMatch(new RegExp(`^line ${line}: `, 'm'));
    expect(run.stderr).toMatch(/^line 6: pasword: unknown key$/m);
    // Not a terminal: plain progress lines, no carriage returns.
    expect(run.stderr).toMatch(/^import: done, 10 accounts in [\d.]+s/m);
    expect(run.stderr).not.toContain('\r');
    const ann = await withDatabase(({ db }) => db.selectFrom('accounts').select(['email', 'password_hash']).where('external_id', '=', 'legacy-1001').executeTakeFirst());
    expect(ann).toEqual({ email: 'ann.lee@example.com', password_hash: expect.stringMatching(/^\$foreign\$2y\$/) });
  });

  it('changes nothing when run again, and reports the run once as account.imported', async () => {
    const run = await parley('import', 'users', fixture('parley-users.jsonl'));
    expect(run.stdout).toBe('created 0, updated 0, unchanged 4, failed 6\n');
    const events = await withDatabase(({ db }) => db.selectFrom('outbox_events').select(['type', 'payload']).orderBy('seq').execute());
    expect(events.map((e) => e.type)).toEqual(['account.imported', 'account.imported']);
    expect(events[1]!.payload).toMatchObject({ source: 'cli', format: 'parley', created: 0, unchanged: 4, failed: 6, events: 'none' });
  });

  it('exits 0 when every record goes in, and writes nothing with --dry-run', async () => {
    const file = writeLines('good.jsonl', [
      { external_id: 'cli-1', email: 'cli-1@example.com', password: '$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW' },
      { external_id: 'cli-2', email: 'cli-2@example.com', consents: [{ purpose: 'offers', version: 1, action: 'granted', at: '2024-01-01T00:00:00Z' }] },
    ]);
    const dry = await parley('import', 'users', file, '--dry-run');
    expect(dry).toMatchObject({ code: 0, stdout: 'dry run, nothing written: would create 2, would update 0, unchanged 0, failed 0\n' });
    expect(await withDatabase(({ db }) => db.selectFrom('accounts').select('id').where('email', 'like', 'cli-%').execute())).toEqual([]);
    const real = await parley('import', 'users', file, '--events', 'all');
    expect(real).toMatchObject({ code: 0, stdout: 'created 2, updated 0, unchanged 0, failed 0\n' });
    const types = await withDatabase(({ db }) => db.selectFrom('outbox_events').select('type').orderBy('seq').execute());
    expect(types.slice(2).map((t) => t.type)).toEqual(['account.created', 'account.created', 'consent.granted', 'account.imported']);
  });

  it('reads a Keycloak realm export and an Auth0 bulk import file', async () => {
    const keycloak = await parleyOn(readers, 'import', 'users', fixture('keycloak-realm.json'), '--format', 'keycloak');
    expect(keycloak.stdout).toBe('created 3, updated 0, unchanged 0, failed 6\n');
    expect(keycloak.stderr).toMatch(/^users\[\d+\]: /m);
    const auth0 = await parleyOn(readers, 'import', 'users', fixture('auth0-import.json'), '--format', 'auth0');
    // Ann is in both files under the same address but another external id: refused, not merged;
    // a user without an id is matched by address.
    expect(auth0.stdout).toMatch(/^created 2, updated 1, unchanged 1, failed 4\n$/);
    expect(auth0.stderr).toMatch(/^\[0\]: email: an account with this email was imported under another external_id$/m);
  });

  it('answers a wrong command line with the usage and exit code 2, before touching the database', async () => {
    const wrongFormat = await parley('import', 'users', fixture('parley-users.jsonl'), '--format', 'csv');
    expect(wrongFormat.code).toBe(2);
    expect(wrongFormat.stderr).toMatch(/--format must be one of parley, keycloak, auth0, auth0-export, not "csv"/);
    expect(wrongFormat.stderr).toContain('usage: parley import users FILE');
    expect((await parley('import', 'users')).code).toBe(2);
    expect((await parley('import', 'groups', 'x.jsonl')).code).toBe(2);
    const missing = await parley('import', 'users', path.join(dir, 'no-such-file.jsonl'));
    expect(missing).toMatchObject({ code: 2, stderr: expect.stringMatching(/cannot read .*no-such-file\.jsonl: ENOENT/) });
  });
});
