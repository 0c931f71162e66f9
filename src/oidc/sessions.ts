import type { IncomingMessage, ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';
import type { ClientConfig, Config } from '../config/schema.ts';

// Parley's own pages outside a sign-in (the preference center) use the provider's session: the
// same sign-in as every app, read from its cookie, never a second login system.

export interface SignedInUser {
  accountId: string;
  /** When the user last entered their password (seconds since the epoch). */
  loginTs: number;
}

/** The built-in client the preference center signs in with, like any app. */
export const ACCOUNT_CLIENT_ID = 'parley-account';

export function accountClient(config: Config): ClientConfig {
  const base = config.issuer.replace(/\/$/, '');
  return {
    client_id: ACCOUNT_CLIENT_ID,
    name: 'Account settings',
    redirect_uris: [`${base}/account/callback`],
    post_logout_redirect_uris: [`${base}/account`],
    first_party: true,
    pkce_required: true,
    grant_types: ['authorization_code'],
    purposes: [],
    // Signing in to manage your data is not the moment to ask for more of it.
    profiling: false,
  };
}

export function createSessionReader(provider: Provider) {
  return {
    /** `secure`: whether the request came over TLS (directly or through a trusted proxy). */
    async current(req: IncomingMessage, res: ServerResponse, secure: boolean): Promise<SignedInUser | undefined> {
      // Outside its own routes the provider reads its cookies from a context it builds from req/res.
      const session = await provider.Session.get({ req, res, secure } as never);
      if (!session.accountId || !session.loginTs) return undefined;
      return { accountId: session.accountId, loginTs: session.loginTs };
    },
  };
}

export type SessionReader = ReturnType<typeof createSessionReader>;
