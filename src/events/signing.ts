// The two ways a receiver can check that an event comes from this Parley:
//
// format: standard — Standard Webhooks: a shared secret per endpoint, HMAC-SHA256 over
//   "<webhook-id>.<webhook-timestamp>.<body>", one "v1,<base64>" signature per configured secret
//   (several during a rotation). https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
// format: set — a Security Event Token (RFC 8417), a JWS signed with the issuer's current key and
//   pushed as application/secevent+jwt (RFC 8935): receivers verify it with the published JWKS and
//   share no secret.
import { importJWK, SignJWT, type JWK } from 'jose';
import type { Endpoint } from './endpoints.ts';
import type { OutboxEvent } from './envelope.ts';
import type { OutgoingRequest } from './send.ts';

/**
 * Event type URIs in the SET `events` claim (RFC 8417 §2.2 asks for URIs). They name the type,
 * not a deployment: the same for every Parley, independent of the issuer.
 */
export const EVENT_URI_BASE = 'https://parley.dev/events/';

export function eventUri(type: string): string {
  return `${EVENT_URI_BASE}${type}`;
}

export function standardWebhookRequest(endpoint: Pick<Endpoint, 'url' | 'sign'>, eventId: string, now: Date, body: string): OutgoingRequest {
  // The attempt's time, not the event's: receivers reject timestamps outside a few minutes to stop replays.
  const timestamp = String(Math.floor(now.getTime() / 1000));
  return {
    url: endpoint.url,
    headers: {
      'content-type': 'application/json',
      'webhook-id': eventId,
      'webhook-timestamp': timestamp,
      'webhook-signature': endpoint.sign(`${eventId}.${timestamp}.${body}`).join(' '),
    },
    body,
  };
}

export interface SetClaims {
  iss: string;
  iat: number;
  jti: string;
  aud: string;
  /** Time of the event (RFC 8417 §2.2), not of the token. */
  toe: number;
  /** The account, as an opaque subject identifier (RFC 9493 §3.2.4). */
  sub_id?: { format: 'opaque'; id: string };
  events: Record<string, Record<string, unknown>>;
  [claim: string]: unknown;
}

/** Signs SET claims into a compact JWS with header typ "secevent+jwt" (RFC 8417 §2.3) and the key's kid. */
export type SignSet = (claims: SetClaims) => Promise<string>;

export function setClaims(input: { issuer: string; endpoint: Endpoint; event: OutboxEvent; data: Record<string, unknown>; now: Date }): SetClaims {
  const { issuer, endpoint, event, data, now } = input;
  return {
    iss: issuer,
    iat: Math.floor(now.getTime() / 1000),
    jti: event.id,
    aud: endpoint.url,
    toe: Math.floor(event.createdAt.getTime() / 1000),
    ...(event.accountId ? { sub_id: { format: 'opaque' as const, id: event.accountId } } : {}),
    events: { [eventUri(event.type)]: data },
  };
}

export function setRequest(endpoint: Endpoint, token: string): OutgoingRequest {
  return {
    url: endpoint.url,
    headers: { 'content-type': 'application/secevent+jwt', accept: 'application/json' },
    body: token,
  };
}

/**
 * A SignSet over one private JWK (RS256, with kid), such as the first key loadSigningKeys
 * returns: the key the provider signs ID tokens with, published in its JWKS.
 */
export function createSetSigner(privateJwk: JWK): SignSet {
  const alg = privateJwk.alg ?? 'RS256';
  // Imported on first use, so that a bad key fails a delivery (logged) rather than the start.
  let key: ReturnType<typeof importJWK> | undefined;
  return async (claims) => new SignJWT(claims)
    .setProtectedHeader({ alg, typ: 'secevent+jwt', ...(privateJwk.kid ? { kid: privateJwk.kid } : {}) })
    .sign(await (key ??= importJWK(privateJwk, alg)));
}
