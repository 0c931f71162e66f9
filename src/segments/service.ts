// Segments: how many accounts match a condition, and which, for one calling client. Knows nothing
// of HTTP; the caller says which purposes the client is registered for.
import { createHash } from 'node:crypto';
import type { Config } from '../config/schema.ts';
import type { Question } from '../screensets/format.ts';
import type { DB } from '../storage/database.ts';
import { ID_FORMAT } from '../storage/schema.ts';
import type { Condition } from './conditions.ts';
import { segmentQueries, SegmentQueryError } from './query.ts';

export interface SegmentsDeps {
  db: DB;
  config: Pick<Config, 'purposes'>;
  question: (questionId: string) => Question | undefined;
  clock: () => Date;
}

export interface SegmentCaller {
  /** The purposes the calling client is registered for. */
  purposes: readonly string[];
}

export const MAX_PAGE_SIZE = 1000;

export interface AccountPage {
  accountIds: string[];
  /** Pass back to get the next page; null on the last page. */
  nextCursor: string | null;
}

// A cursor is the last account id of a page (pages are in account id order, so a page is one
// index range and later pages do not shift when accounts are added) and a digest of the condition,
// so that a cursor cannot continue a different query by mistake. It carries nothing secret, and
// a client can write one: what it decodes to is checked to be an account id before any query.
const CURSOR_VERSION = 'c1';

function digest(condition: Condition): string {
  return createHash('sha256').update(JSON.stringify(condition)).digest('base64url').slice(0, 16);
}

function encodeCursor(after: string, condition: Condition): string {
  return Buffer.from(JSON.stringify([CURSOR_VERSION, digest(condition), after])).toString('base64url');
}

function decodeCursor(cursor: string, condition: Condition): string {
  try {
    const [version, forQuery, after] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown[];
    if (version === CURSOR_VERSION && typeof after === 'string' && ID_FORMAT.test(after) && forQuery === digest(condition)) return after;
  } catch { /* reported below */ }
  throw new SegmentQueryError('invalid_cursor', [], 'the cursor is not one this query returned; start again without it');
}

export function createSegments(deps: SegmentsDeps) {
  const { db, config, clock } = deps;
  const queries = (condition: Condition, caller: SegmentCaller) => segmentQueries(db, condition, {
    clientPurposes: caller.purposes, purposes: config.purposes, question: deps.question, now: clock(),
  });

  return {
    /** The count as a query, for EXPLAIN in bench/segments.ts. */
    countQuery: (condition: Condition, caller: SegmentCaller) => queries(condition, caller).count(),

    /** The number of accounts matching the condition, as the client may see them. Throws SegmentQueryError. */
    async count(condition: Condition, caller: SegmentCaller): Promise<number> {
      const row = await queries(condition, caller).count().executeTakeFirstOrThrow();
      return Number(row.count);
    },

    /** One page of matching account ids, in id order. Throws SegmentQueryError. */
    async accounts(condition: Condition, caller: SegmentCaller, page: { limit: number; cursor?: string | undefined }): Promise<AccountPage> {
      const built = queries(condition, caller);
      const limit = Math.min(Math.max(1, Math.trunc(page.limit)), MAX_PAGE_SIZE);
      const after = page.cursor === undefined ? undefined : decodeCursor(page.cursor, condition);
      // One row more than asked tells whether there is a next page.
      const rows = await built.page(after, limit + 1).execute();
      const accountIds = rows.slice(0, limit).map((r) => r.id);
      return { accountIds, nextCursor: rows.length > limit ? encodeCursor(accountIds[accountIds.length - 1]!, condition) : null };
    },
  };
}

export type Segments = ReturnType<typeof createSegments>;
export { SegmentQueryError };
