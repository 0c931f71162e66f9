import type { CompiledQuery, DatabaseConnection } from 'kysely';
import type { DB } from '../../src/storage/database.ts';

// Counts the statements a running Parley sends to its database, transactions included, so that a
// test can hold a number of reads where it is (never their SQL text: what is counted is which
// table a SELECT reads and the values it is given).

export interface StatementWatch {
  /** The statements sent since the watch began (or since the last `clear`). */
  readonly statements: readonly CompiledQuery[];
  /** The SELECTs of this table that were given this value (a model name, an id), in order. */
  reads(table: string, value: unknown): CompiledQuery[];
  clear(): void;
  stop(): void;
}

type Consumer = (connection: DatabaseConnection) => Promise<unknown>;
interface ConnectionProvider {
  provideConnection(consumer: Consumer, ...rest: unknown[]): Promise<unknown>;
}

function tableRead(statement: CompiledQuery): string | undefined {
  const node = statement.query as { kind: string; from?: { froms: { kind: string; table?: { identifier?: { name?: string } } }[] } };
  if (node.kind !== 'SelectQueryNode') return undefined;
  return node.from?.froms[0]?.table?.identifier?.name;
}

/**
 * Every statement goes through the executor's provideConnection (a transaction keeps the
 * connection it was given for all of its statements), so each connection handed out is watched.
 */
export function watchStatements(db: DB): StatementWatch {
  const executor = db.getExecutor() as unknown as ConnectionProvider;
  const original = executor.provideConnection;
  let statements: CompiledQuery[] = [];
  const watched = (connection: DatabaseConnection): DatabaseConnection => new Proxy(connection, {
    get(target, property) {
      if (property === 'executeQuery') {
        return (statement: CompiledQuery) => {
          statements.push(statement);
          return target.executeQuery(statement);
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  executor.provideConnection = function (this: ConnectionProvider, consumer: Consumer, ...rest: unknown[]) {
    return original.call(this, (connection) => consumer(watched(connection)), ...rest);
  };
  return {
    get statements() { return statements; },
    reads: (table, value) => statements.filter((s) => tableRead(s) === table && s.parameters.includes(value)),
    clear() { statements = []; },
    stop() { executor.provideConnection = original; },
  };
}
