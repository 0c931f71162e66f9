import { createHash } from 'node:crypto';
import type { DB } from '../storage/database.ts';
import { parseUpstreamTransaction, type UpstreamIdentity, type UpstreamTransaction } from './upstream.ts';

// Sign-ins with an upstream provider in progress, on the server. What `UpstreamClient.begin`
// hands out (state, nonce, PKCE verifier) is kept here, bound to the Parley interaction, and
// never sent to the browser: Apple answers with a cross-site form POST, which carries no
// SameSite=Lax cookie, and a state kept server-side cannot be replayed from another browser.
//
// The provider's answer is recorded against the row its state names (whatever browser brings it),
// then taken once, by the browser that holds the row's interaction: a forged or replayed answer,
// or one brought to another browser, finds nothing to take.

const hashOf = (state: string) => createHash('sha256').update(state).digest('hex');

/** Only what the authorization response is made of, each value bounded. */
const CALLBACK_PARAMS = ['code', 'state', 'iss', 'error', 'error_description', 'user'] as const;

export function callbackParams(source: URLSearchParams): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const name of CALLBACK_PARAMS) {
    const value = source.get(name);
    if (value !== null) kept[name] = value.slice(0, name === 'user' ? 4096 : 2048);
  }
  return kept;
}

export interface TakenCallback {
  id: string;
  transaction: UpstreamTransaction;
  callback: Record<string, string>;
}

export interface PendingIdentity {
  id: string;
  provider: string;
  identity: UpstreamIdentity;
  /** An address a one-time code proved in this sign-in (linking.ts proofs.address). */
  provenAddress?: string;
  /** The address the last one-time code of this sign-in was sent to. */
  codeSentTo?: string;
}

/** What is kept with an identity while its sign-in asks for more. */
export type KeptProofs = Pick<PendingIdentity, 'provenAddress' | 'codeSentTo'>;

export function createUpstreamSignIns(deps: { db: DB; clock: () => Date; ttlSeconds: number }) {
  const { db, clock, ttlSeconds } = deps;
  const live = () => clock();

  return {
    /** Keeps a transaction just begun; an earlier one of the same interaction is dropped. */
    async start(transaction: UpstreamTransaction): Promise<void> {
      const now = clock();
      await db.transaction().execute(async (trx) => {
        await trx.deleteFrom('upstream_sign_ins').where('interaction_uid', '=', transaction.interactionUid).execute();
        await trx.insertInto('upstream_sign_ins').values({
          id: hashOf(transaction.state),
          interaction_uid: transaction.interactionUid,
          provider: transaction.provider,
          transaction: JSON.stringify(transaction),
          created_at: now,
          expires_at: new Date(now.getTime() + ttlSeconds * 1000),
        }).execute();
      });
    },

    /**
     * Records what the provider sent back, on the row its state names, if that row was not
     * answered yet. Returns the interaction the row belongs to, answered or not (a replayed
     * answer is then refused on that interaction's page), or undefined for a state Parley never sent.
     */
    async recordCallback(provider: string, params: Record<string, string>): Promise<string | undefined> {
      const state = params.state;
      if (!state) return undefined;
      const id = hashOf(state);
      await db.updateTable('upstream_sign_ins').set({ callback: JSON.stringify(params) })
        .where('id', '=', id).where('provider', '=', provider)
        .where('callback', 'is', null).where('used_at', 'is', null).where('expires_at', '>', live())
        .execute();
      const row = await db.selectFrom('upstream_sign_ins').select('interaction_uid')
        .where('id', '=', id).where('provider', '=', provider).executeTakeFirst();
      return row?.interaction_uid;
    },

    /** The answer waiting for this interaction, taken once: a second take finds nothing. */
    async take(interactionUid: string, provider: string): Promise<TakenCallback | undefined> {
      const row = await db.updateTable('upstream_sign_ins').set({ used_at: clock() })
        .where('interaction_uid', '=', interactionUid).where('provider', '=', provider)
        .where('callback', 'is not', null).where('used_at', 'is', null).where('expires_at', '>', live())
        .returning(['id', 'transaction', 'callback'])
        .executeTakeFirst();
      const transaction = row ? parseUpstreamTransaction(row.transaction) : undefined;
      if (!row || !transaction || transaction.interactionUid !== interactionUid || !row.callback) return undefined;
      return { id: row.id, transaction, callback: row.callback };
    },

    /** Keeps who the provider said the person is, while the sign-in asks something more. */
    async keepIdentity(id: string, identity: UpstreamIdentity, kept: KeptProofs = {}): Promise<void> {
      await db.updateTable('upstream_sign_ins')
        .set({ identity: JSON.stringify({ identity, ...kept }) })
        .where('id', '=', id).execute();
    },

    /** The identity this interaction's upstream sign-in is waiting to do something with. */
    async pending(interactionUid: string): Promise<PendingIdentity | undefined> {
      const row = await db.selectFrom('upstream_sign_ins').select(['id', 'provider', 'identity'])
        .where('interaction_uid', '=', interactionUid).where('identity', 'is not', null).where('expires_at', '>', live())
        .orderBy('created_at', 'desc').executeTakeFirst();
      const kept = row?.identity as ({ identity?: UpstreamIdentity } & KeptProofs) | null | undefined;
      if (!row || !kept?.identity || kept.identity.provider !== row.provider) return undefined;
      return {
        id: row.id, provider: row.provider, identity: kept.identity,
        ...(kept.provenAddress ? { provenAddress: kept.provenAddress } : {}), ...(kept.codeSentTo ? { codeSentTo: kept.codeSentTo } : {}),
      };
    },

    /** The sign-in is over: nothing about it is kept. */
    async finish(interactionUid: string): Promise<void> {
      await db.deleteFrom('upstream_sign_ins').where('interaction_uid', '=', interactionUid).execute();
    },

    /**
     * The sign-in failed: nothing the provider said is kept, and nothing can be taken any more;
     * only that it was tried, so an app's `idp` does not send the person straight back.
     */
    async fail(interactionUid: string): Promise<void> {
      await db.updateTable('upstream_sign_ins').set({ callback: null, identity: null, used_at: clock() })
        .where('interaction_uid', '=', interactionUid).execute();
    },

    /** Whether this interaction has started a sign-in with a provider. */
    async tried(interactionUid: string): Promise<boolean> {
      return (await db.selectFrom('upstream_sign_ins').select('id').where('interaction_uid', '=', interactionUid).executeTakeFirst()) !== undefined;
    },
  };
}

export type UpstreamSignIns = ReturnType<typeof createUpstreamSignIns>;

/** Drops sign-ins that ran out before they finished. */
export async function purgeExpiredUpstreamSignIns(db: DB, now: Date): Promise<number> {
  const result = await db.deleteFrom('upstream_sign_ins').where('expires_at', '<=', now).executeTakeFirst();
  return Number(result.numDeletedRows);
}
