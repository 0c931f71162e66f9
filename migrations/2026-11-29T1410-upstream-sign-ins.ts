import type { Kysely } from 'kysely';

// A sign-in with an upstream provider in progress, kept on the server and bound to the Parley
// interaction that started it: the state, nonce and PKCE verifier never leave for the browser
// (a cookie would not come back with Apple's cross-site form_post anyway). The row is found by the
// hash of the state the provider sends back, used once, and then holds who the provider said the
// person is until the sign-in finishes (a registration form, a code to the address).
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createTable('upstream_sign_ins')
    .addColumn('id', 'text', (c) => c.primaryKey())                 // SHA-256 (hex) of the state
    .addColumn('interaction_uid', 'text', (c) => c.notNull())
    .addColumn('provider', 'text', (c) => c.notNull())
    .addColumn('transaction', 'jsonb', (c) => c.notNull())          // UpstreamTransaction
    .addColumn('callback', 'jsonb')                                  // what the provider sent back
    .addColumn('identity', 'jsonb')                                  // UpstreamIdentity, once completed
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .addColumn('used_at', 'timestamptz')                             // the callback was taken: never again
    .execute();
  await db.schema.createIndex('upstream_sign_ins_interaction').on('upstream_sign_ins').columns(['interaction_uid']).execute();
  await db.schema.createIndex('upstream_sign_ins_expiry').on('upstream_sign_ins').columns(['expires_at']).execute();
}
