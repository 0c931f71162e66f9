import { sql } from 'kysely';
import type { DB } from '../storage/database.ts';

// Requests allowed a number of times per window for a key (an email address, a client network).
// Counting and deciding are one conditional upsert, so requests arriving together cannot all
// pass before any of them is counted.

export interface RequestLimits {
  /**
   * Counts one request against `key` and says whether it is within `limit` for the window, which
   * starts with the key's first request and lasts `windowSeconds`. A refused request is not counted.
   */
  admit(key: string, limit: number, windowSeconds: number): Promise<boolean>;
}

export function createRequestLimits(db: DB, clock: () => Date): RequestLimits {
  return {
    async admit(key, limit, windowSeconds) {
      const now = clock();
      const windowEnds = new Date(now.getTime() + windowSeconds * 1000);
      const over = sql<boolean>`request_limits.window_ends_at <= ${now}::timestamptz`;
      const counted = await db.insertInto('request_limits')
        .values({ key, count: 1, window_ends_at: windowEnds })
        .onConflict((oc) => oc.column('key')
          .doUpdateSet({
            count: sql`case when ${over} then 1 else request_limits.count + 1 end`,
            window_ends_at: sql`case when ${over} then ${windowEnds}::timestamptz else request_limits.window_ends_at end`,
          })
          .where(sql<boolean>`${over} or request_limits.count < ${limit}::integer`))
        .returning('key')
        .executeTakeFirst();
      return counted !== undefined;
    },
  };
}
