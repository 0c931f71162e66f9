import { mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { Kysely, PostgresDialect, sql, type CompiledQuery, type DatabaseConnection, type Dialect, type Driver } from 'kysely';
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
  /** Statements sent since the start, by kind ("select oidc_payloads", "begin"), for metrics. */
  statementCounts(): ReadonlyMap<string, number>;
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
    // pg emits 'error' on a Client whose server goes away: a restart's "terminating connection
    // due to administrator command" (57P01), a reset socket. The pool listens on idle clients
    // only; on a client checked out (between two statements of a transaction, say) nothing
    // would, and an unhandled 'error' event ends the process. So every client gets a listener
    // for its whole life. The statement in flight fails on its own (the request answers 503),
    // and the pool drops the dead client when it is released; the next one connects afresh.
    pool.on('connect', (client) => {
      client.on('error', (error) => logger.warn({ err: errorSummary(error) }, 'database connection lost; requests get 503 until it is back'));
    });
    // An idle client's error reaches the pool too; its own listener above has reported it.
    pool.on('error', () => {});
    const counts = new Map<string, number>();
    const db = new Kysely<Database>({ dialect: countingStatements(new PostgresDialect({ pool }), counts) });
    return {
      db,
      kind: 'postgres',
      poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
      statementCounts: () => counts,
      close: () => db.destroy(),
    };
  }
  const { PGlite } = await import('@electric-sql/pglite');
  const { PGliteDialect } = await import('./pglite-dialect.ts');
  const dataDir = config.data_dir === 'memory://' ? config.data_dir : path.resolve(config.data_dir);
  if (dataDir !== 'memory://') mkdirSync(dataDir, { recursive: true });
  const pglite = new PGlite({
    ...(dataDir === 'memory://' ? {} : { dataDir }),
    startParams: [...PGlite.defaultStartParams, ...EMBEDDED_SETTINGS.flatMap((setting) => ['-c', setting])],
  });
  const counts = new Map<string, number>();
  const db = new Kysely<Database>({ dialect: countingStatements(new PGliteDialect(pglite), counts) });
  return { db, kind: 'embedded', poolStats: () => undefined, statementCounts: () => counts, close: () => db.destroy() };
}

/**
 * What a statement is, for counting: its first word and the first table it names ("select
 * oidc_payloads", "insert login_throttle", "commit"). Never its values, which are parameters
 * anyway; the kinds are as few as the statements the code writes.
 */
export function statementKind(text: string): string {
  const verb = /^\s*(\w+)/.exec(text)?.[1]?.toLowerCase() ?? 'other';
  const table = /\b(?:from|into|update)\s+"?(\w+)"?/i.exec(text)?.[1];
  return table ? `${verb} ${table}` : verb;
}

/**
 * Counts every statement sent on the dialect's connections, transactions' BEGIN and COMMIT
 * included (the drivers send those on the connection too): a round trip is a round trip. A
 * connection is instrumented once, when first lent; the pool lends the same ones again.
 */
function countingStatements(dialect: Dialect, counts: Map<string, number>): Dialect {
  const instrumented = new WeakSet<DatabaseConnection>();
  const instrument = (connection: DatabaseConnection): DatabaseConnection => {
    if (instrumented.has(connection)) return connection;
    instrumented.add(connection);
    const execute = connection.executeQuery.bind(connection);
    Object.assign(connection, {
      executeQuery<R>(query: CompiledQuery) {
        const kind = statementKind(query.sql);
        counts.set(kind, (counts.get(kind) ?? 0) + 1);
        return execute<R>(query);
      },
    });
    return connection;
  };
  return {
    createAdapter: () => dialect.createAdapter(),
    createQueryCompiler: () => dialect.createQueryCompiler(),
    createIntrospector: (db) => dialect.createIntrospector(db),
    createDriver(): Driver {
      const driver = dialect.createDriver();
      return new Proxy(driver, {
        get(target, property) {
          if (property === 'acquireConnection') return async () => instrument(await target.acquireConnection());
          const value: unknown = Reflect.get(target, property, target);
          return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
        },
      });
    },
  };
}

/**
 * PGlite runs PostgreSQL in WebAssembly memory, which grows as PostgreSQL allocates and is never
 * given back to the system while the process lives. Its buffer cache is most of it: PostgreSQL's
 * 128 MB of shared_buffers, where PGlite's files are already in the system's page cache. An index
 * build (a migration) may take maintenance_work_mem at once. Both are set to what an embedded
 * database for one node needs.
 */
const EMBEDDED_SETTINGS = ['shared_buffers=16MB', 'maintenance_work_mem=16MB'];

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

/**
 * Runs `task` until it does not fail for want of a database, waiting 1, 2, 4 … 10 seconds in
 * between. A node that starts before its database (or during a restart or failover of it) waits
 * and logs why, rather than exiting; any other failure, such as a wrong password or a missing
 * database, is thrown at once.
 */
export async function whenDatabaseAnswers<T>(task: () => Promise<T>, logger: Logger): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await task();
    } catch (error) {
      if (!isDatabaseUnavailable(error)) throw error;
      const seconds = Math.min(2 ** (attempt - 1), 10);
      logger.warn({ err: errorSummary(error), attempt, retry_in_seconds: seconds }, 'the database is unavailable; waiting for it before starting');
      await sleep(seconds * 1000);
    }
  }
}

export async function ping(db: DB): Promise<void> {
  await sql`select 1`.execute(db);
}

/** Errors that mean "the database is not there right now", as opposed to a bug or bad input. */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (!error || typeof error !== 'object') return false;
  const { code, message } = error as { code?: string; message?: string };
  if (code && ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EPIPE', '57P01', '57P02', '57P03', '53300', '08000', '08001', '08003', '08006', '57014'].includes(code)) return true;
  // "... is not queryable": a statement (a transaction's ROLLBACK, say) on a client whose
  // connection already failed; it replaces the original error in Kysely's transaction.
  return /timeout exceeded when trying to connect|Connection terminated|connection timeout|Query read timeout|is not queryable/i.test(message ?? '');
}

/** What a log line may say about an error: its message and code, never its other fields. */
export function errorSummary(error: unknown): { message: string; code?: string } {
  if (!error || typeof error !== 'object') return { message: String(error) };
  const { message, code } = error as { message?: unknown; code?: unknown };
  return { message: typeof message === 'string' ? message : String(error), ...(typeof code === 'string' ? { code } : {}) };
}
