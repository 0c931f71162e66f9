// Claims: what an ID token and userinfo say about a user to one client. The one place they are
// put together: the scopes' claims (OIDC Core 5.4), the account's own fields, and the answers the
// release rule (src/consent/release.ts) lets this client receive now.
import type { IncomingMessage } from 'node:http';
import type { Account as ProviderAccount } from 'oidc-provider';
import type { Config } from '../config/schema.ts';
import type { Release } from '../consent/release.ts';
import { CLAIM_QUESTION_TYPES } from '../screensets/format.ts';
import type { Account } from '../storage/schema.ts';

// Which claims each scope releases (OIDC Core 5.4).
export const SCOPE_CLAIMS: Record<string, string[]> = {
  openid: ['sub'],
  email: ['email', 'email_verified'],
  profile: ['name', 'locale', 'birthdate', 'gender', 'zoneinfo', 'given_name', 'family_name', 'middle_name', 'nickname', 'preferred_username'],
  // The answers the user chose to share, as one object, released under the client's purposes.
  preferences: ['preferences'],
};

/** The claims these scopes carry. */
export function claimsOfScopes(scopes: Iterable<string>): Set<string> {
  return new Set([...scopes].flatMap((scope) => SCOPE_CLAIMS[scope] ?? []));
}

/** The claims answers can fill: `preferences` and the standard claims questions may set (birthdate…). */
const ANSWER_CLAIMS: readonly string[] = ['preferences', ...Object.keys(CLAIM_QUESTION_TYPES)];

export interface ClaimsDeps {
  config: Pick<Config, 'clientsById'>;
  /** The account row; `request` is the HTTP request asking, so one request reads it once. */
  findAccount(accountId: string, request: IncomingMessage): Promise<Account | undefined>;
  release: Release;
}

/** oidc-provider's findAccount, told the requesting client rather than handed its request context. */
export type FindClaimsAccount = (accountId: string, clientId: string | undefined, request: IncomingMessage) => Promise<ProviderAccount | undefined>;

/**
 * oidc-provider's findAccount, for every token and userinfo request: the account row always, the
 * answers only when a granted scope or a claim asked for by name (the claims parameter) can carry
 * them, cut to the client's purposes and the user's consent.
 */
export function createClaims(deps: ClaimsDeps): FindClaimsAccount {
  return async (accountId, clientId, request) => {
    const account = await deps.findAccount(accountId, request);
    if (!account) return undefined;
    const own = {
      email: account.email,
      email_verified: account.email_verified_at !== null,
      ...(account.name ? { name: account.name } : {}),
      ...(account.locale ? { locale: account.locale } : {}),
    };
    return {
      accountId,
      async claims(_use: string, scope: string | undefined, requested?: Record<string, unknown>) {
        const wanted = claimsOfScopes((scope ?? '').split(' '));
        for (const claim of Object.keys(requested ?? {})) wanted.add(claim);
        let fromAnswers = {};
        if (ANSWER_CLAIMS.some((claim) => wanted.has(claim))) {
          const purposes = (clientId ? deps.config.clientsById.get(clientId)?.purposes : undefined) ?? [];
          const released = await deps.release.forClient(accountId, purposes);
          fromAnswers = { ...released.standardClaims, preferences: released.preferences };
        }
        // The account's own fields win over answers that fill the same claim.
        return { ...fromAnswers, ...own, sub: accountId };
      },
    };
  };
}
