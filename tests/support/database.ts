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
