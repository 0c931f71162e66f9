import type { IncomingMessage, ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';
import { acrFor, amrFor, type Proof } from '../accounts/authentication-methods.ts';
import { proofsOfSession } from './mfa-prompt.ts';

// Parley's own pages outside a sign-in (the preference center) use the provider's session: the
// same sign-in as every app, read from its cookie, never a second login system.

export interface SignedInUser {
  accountId: string;
  /** When the user last entered their password (seconds since the epoch). */
  loginTs: number;
  /** The provider session's uid: which of the account's sessions is this browser's. */
  sessionUid: string;
}

export interface SessionReaderOptions {
  /** Whether the sign-in the session holds is complete (owes no second factor). */
  complete?: (accountId: string, proofs: Proof[]) => Promise<boolean>;
}

export function createSessionReader(provider: Provider, options: SessionReaderOptions = {}) {
  return {
    /** `secure`: whether the request came over TLS (directly or through a trusted proxy). */
    async current(req: IncomingMessage, res: ServerResponse, secure: boolean): Promise<SignedInUser | undefined> {
      // Outside its own routes the provider reads its cookies from a context it builds from req/res.
      const session = await provider.Session.get({ req, res, secure } as never);
      if (!session.accountId || !session.loginTs) return undefined;
      // Sessions from before amr was recorded were password sign-ins.
      const amr = (session.amr as string[] | undefined) ?? ['pwd'];
      if (options.complete && !(await options.complete(session.accountId, proofsOfSession(amr, session.loginTs)))) return undefined;
      return { accountId: session.accountId, loginTs: session.loginTs, sessionUid: session.uid };
    },

    /**
     * Adds what the user just proved to the sign-in of this browser's session (a second factor set
     * up in /account proves itself with its first code): its amr and acr count it from now on.
     */
    async addProof(req: IncomingMessage, res: ServerResponse, secure: boolean, proof: Proof): Promise<void> {
      const session = await provider.Session.get({ req, res, secure } as never);
      if (!session.accountId || !session.loginTs) return;
      const proofs = [...proofsOfSession((session.amr as string[] | undefined) ?? ['pwd'], session.loginTs), proof];
      session.amr = amrFor(proofs);
      session.acr = acrFor(proofs);
      await session.persist();
    },
  };
}

export type SessionReader = ReturnType<typeof createSessionReader>;
