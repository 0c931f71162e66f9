// Verification of the management API's access tokens: JWTs (RFC 9068) that oidc-provider issues
// for the client_credentials grant (see `resourceIndicators` in provider.ts). The API checks them
// locally against the issuer's own public keys, so a call costs no database round trip and no
// introspection request.
import { createLocalJWKSet, errors as joseErrors, jwtVerify, type JWK } from 'jose';
import type { ClientConfig } from '../config/schema.ts';
import { DomainError } from '../errors.ts';
import { apiScopesOf } from './provider.ts';

export interface ApiCaller {
  clientId: string;
  /** The token's scopes that the client is still configured for. */
  scopes: ReadonlySet<string>;
  /** The purposes whose answers the client may read and filter on. */
  purposes: readonly string[];
}

/** invalid_token: missing, malformed, expired, not for this API, or of a client no longer configured. */
export const API_TOKEN_ERROR_CODES = ['invalid_token'] as const;
declare module '../errors.ts' {
  interface ErrorCodes { api_token: (typeof API_TOKEN_ERROR_CODES)[number] }
}

/** The message says what is wrong with the token, for the API's caller (RFC 6750 §3.1). */
export class InvalidApiTokenError extends DomainError<'api_token'> {
  constructor(message: string) {
    super('api_token', 'invalid_token', { message });
  }
}

export interface ApiTokenVerifierOptions {
  issuer: string;
  audience: string;
  /** The provider's signing keys (private JWKs); only their public parts are used. */
  signingKeys: readonly JWK[];
  clients: readonly ClientConfig[];
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'];

/** Seconds of clock difference tolerated between the nodes that sign and verify. */
const CLOCK_TOLERANCE = 5;

export function createApiTokenVerifier(options: ApiTokenVerifierOptions) {
  const keys = options.signingKeys.map((key) => Object.fromEntries(Object.entries(key).filter(([name]) => !PRIVATE_MEMBERS.includes(name))) as JWK);
  const jwks = createLocalJWKSet({ keys });
  const clients = new Map(options.clients.map((c) => [c.client_id, c]));

  return {
    async verify(token: string): Promise<ApiCaller> {
      let payload;
      try {
        ({ payload } = await jwtVerify(token, jwks, {
          issuer: options.issuer,
          audience: options.audience,
          // RFC 9068 section 4: the typ header tells an access token from an ID token signed with the same keys.
          typ: 'at+jwt',
          algorithms: ['RS256'],
          requiredClaims: ['exp', 'iat', 'client_id'],
          clockTolerance: CLOCK_TOLERANCE,
        }));
      } catch (error) {
        throw new InvalidApiTokenError(describe(error));
      }
      const clientId = payload.client_id;
      // A client_credentials token is the client's own: sub is the client id (RFC 9068 section 2.2).
      if (typeof clientId !== 'string' || payload.sub !== clientId) throw new InvalidApiTokenError('the access token is not a client credentials token');
      const client = clients.get(clientId);
      if (!client?.grant_types.includes('client_credentials')) throw new InvalidApiTokenError('the client of this access token is no longer allowed to call the API');
      // Scopes taken from a client's configuration since the token was issued stop working at once.
      const allowed = new Set(apiScopesOf(client));
      const granted = typeof payload.scope === 'string' ? payload.scope.split(' ').filter((s) => allowed.has(s)) : [];
      return { clientId, scopes: new Set(granted), purposes: client.purposes };
    },
  };
}

function describe(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return 'the access token has expired';
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    if (error.claim === 'aud') return 'the access token is not for this API (audience)';
    if (error.claim === 'iss') return 'the access token is from another issuer';
    if (error.claim === 'typ') return 'not an access token (typ must be at+jwt)';
    return `the access token's ${error.claim} claim is invalid`;
  }
  if (error instanceof joseErrors.JWSSignatureVerificationFailed || error instanceof joseErrors.JWKSNoMatchingKey) {
    return 'the access token is not signed by this issuer';
  }
  return 'the access token is malformed';
}

export type ApiTokenVerifier = ReturnType<typeof createApiTokenVerifier>;
