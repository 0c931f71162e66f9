import { mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Kysely, PostgresDialect, sql } from 'kysely';
import { Migrator, type Migration, type MigrationProvider, type MigrationResultSet } from 'kysely/migration';
import pg from 'pg';
import type { Logger } from 'pino';
import { PROJECT_ROOT } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import type { Database } from './schema.ts';

export type DB = Kysely<Database>;

export interface Storage {
  db: DB;
  kind: 'postgres' | 'embedded';
  /** Connections in use / idle / waiting, for metrics (PostgreSQL only). */
  poolStats(): { total: number; idle: number; waiting: number } | undefined;
  close(): Promise<void>;
}

// Timestamps come back as Date, bigint counts as numbers: the same on both backends.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

export async function openStorage(config: Config['database'], logger: Logger): Promise<Storage> {
  if (config.url) {
    const pool = new pg.Pool({
      connectionString: config.url,
      max: config.pool_max,
      connectionTimeoutMillis: config.connection_timeout * 1000,
      statement_timeout: config.statement_timeout * 1000,
      query_timeout: config.statement_timeout * 1000 + 1000,
      idleTimeoutMillis: 30_000,
    });
    // Without a listener, an idle client whose server goes away crashes the process.
    pool.on('error', (error) => logger.error({ err: { message: error.message, code: (error as { code?: string }).code } }, 'database connection lost'));
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    return {
      db,
      kind: 'postgres',
      poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
      close: () => db.destroy(),
    };
  }
  const { PGlite } = await import('@electric-sql/pglite');
  const { PGliteDialect } = await import('./pglite-dialect.ts');
  const dataDir = config.data_dir === 'memory://' ? config.data_dir : path.resolve(config.data_dir);
  if (dataDir !== 'memory://') mkdirSync(dataDir, { recursive: true });
  const pglite = new PGlite(dataDir === 'memory://' ? undefined : dataDir);
  const db = new Kysely<Database>({ dialect: new PGliteDialect(pglite) });
  return { db, kind: 'embedded', poolStats: () => undefined, close: () => db.destroy() };
}

const MIGRATIONS_DIR = path.join(PROJECT_ROOT, 'migrations');

class DirectoryMigrations implements MigrationProvider {
  async getMigrations(): Promise<Record<string, Migration>> {
    const migrations: Record<string, Migration> = {};
    for (const file of readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith('.ts')).sort()) {
      migrations[file.replace(/\.ts$/, '')] = await import(pathToFileURL(path.join(MIGRATIONS_DIR, file)).href);
    }
    return migrations;
  }
}

function migrator(db: DB): Migrator {
  return new Migrator({ db, provider: new DirectoryMigrations() });
}

export async function migrateToLatest(db: DB): Promise<string[]> {
  const { error, results }: MigrationResultSet = await migrator(db).migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

export async function pendingMigrations(db: DB): Promise<string[]> {
  const all = await migrator(db).getMigrations();
  return all.filter((m) => !m.executedAt).map((m) => m.name);
}

export async function ping(db: DB): Promise<void> {
  await sql`select 1`.execute(db);
}

/** Errors that mean "the database is not there right now", as opposed to a bug or bad input. */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (!error || typeof error !== 'object') return false;
  const { code, message } = error as { code?: string; message?: string };
  if (code && ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EPIPE', '57P01', '57P02', '57P03', '53300', '08000', '08001', '08003', '08006', '57014'].includes(code)) return true;
  return /timeout exceeded when trying to connect|Connection terminated|connection timeout|Query read timeout/i.test(message ?? '');
}
