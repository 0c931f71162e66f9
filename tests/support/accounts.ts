import { randomUUID } from 'node:crypto';
import type { DB } from '../../src/storage/database.ts';

/** An account row as registration leaves it, with a placeholder password hash or none. */
export async function insertAccount(db: DB, options: { password?: boolean; now?: Date; email?: string } = {}): Promise<{ id: string; email: string }> {
  const id = randomUUID();
  const email = options.email ?? `user-${id}@example.com`;
  const now = options.now ?? new Date();
  await db.insertInto('accounts').values({
    id, email, name: null, locale: 'en', password_hash: options.password === false ? null : 'not-a-real-hash',
    email_verified_at: now, created_at: now, updated_at: now,
  }).execute();
  return { id, email };
}
