import { sql, type RawBuilder } from 'kysely';

/** One column of an unnest insert: its name, its PostgreSQL type, and how a row gives its value. */
export type UnnestColumn<T> = [name: string, type: string, value: (row: T) => unknown];

/**
 * `insert into <table> (<columns>) select * from unnest(<one array per column>)`: any number of
 * rows in one statement with one parameter per column, where a multi-row VALUES list would take
 * one per cell (and meet PostgreSQL's 65,535-parameter limit at a few thousand rows).
 */
export function unnestInsert<T>(table: string, columns: UnnestColumn<T>[], rows: readonly T[], suffix = sql``): RawBuilder<unknown> {
  return sql`insert into ${sql.table(table)} (${sql.join(columns.map(([name]) => sql.ref(name)))})
    select * from unnest(${sql.join(columns.map(([, type, value]) => sql`${rows.map(value)}::${sql.raw(type)}[]`))}) ${suffix}`;
}
