import { randomBytes } from 'node:crypto';
import pg from 'pg';
import pino from 'pino';
import { migrateToLatest, openStorage, type Storage } from '../../src/storage/database.ts';

// Tests run against real databases: embedded PGlite always, and PostgreSQL when CI sets
// TEST_DATABASE_URL (a fresh database per CI run, shared by the test files of that run).
export const POSTGRES_URL = process.env.TEST_DATABASE_URL ?? '';

export interface Backend { name: 'pglite' | 'postgres'; url: string }

/** The backends a contract suite runs against in this run. */
export const BACKENDS: Backend[] = [
  { name: 'pglite', url: '' },
  ...(POSTGRES_URL ? [{ name: 'postgres' as const, url: POSTGRES_URL }] : []),
];

/** The backend an integration or e2e test uses: PostgreSQL when configured, else PGlite. */
export const DEFAULT_BACKEND: Backend = BACKENDS[BACKENDS.length - 1]!;

export async function openTestStorage(backend: Backend = DEFAULT_BACKEND): Promise<Storage> {
  const storage = await openStorage({
    url: backend.url, data_dir: 'memory://', migrate_on_start: true, pool_max: 10, connection_timeout: 5, statement_timeout: 10,
  }, pino({ level: 'silent' }));
  await migrateToLatest(storage.db);
  return storage;
}

/**
 * A database of the calling test file's own, for tests that count whole tables or sweep them:
 * on PostgreSQL a fresh database on the same server (removed by `drop`), on PGlite an in-memory one.
 */
export async function ownDatabase(prefix: string): Promise<{ backend: Backend; drop: () => Promise<void> }> {
  if (DEFAULT_BACKEND.name !== 'postgres') return { backend: { name: 'pglite', url: '' }, drop: async () => {} };
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  const admin = async (statement: string) => {
    const client = new pg.Client({ connectionString: DEFAULT_BACKEND.url });
    await client.connect();
    try {
      await client.query(statement);
    } finally {
      await client.end();
    }
  };
  await admin(`create database ${name}`);
  const url = new URL(DEFAULT_BACKEND.url);
  url.pathname = `/${name}`;
  return { backend: { name: 'postgres', url: url.href }, drop: () => admin(`drop database if exists ${name} with (force)`) };
}
