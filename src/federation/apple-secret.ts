import type { KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';

// Sign in with Apple authenticates the app at its token endpoint with a client secret that is an
// ES256 JWT: iss = team ID, sub = client ID (the Services ID), aud = https://appleid.apple.com,
// kid = the key's ID, iat/exp with exp at most 15777000 seconds (six months) after iat.
// https://developer.apple.com/documentation/sign_in_with_apple/generate_and_validate_tokens ("Creating the client secret")
//
// Parley signs it itself rather than asking operators to paste one that silently dies after six
// months. It keeps a short-lived one and signs a new one before that runs out: a secret that
// leaks (a proxy's log, a debugging session) is worth an hour, not half a year. Each node signs
// its own; nothing is shared or stored.

export const APPLE_AUDIENCE = 'https://appleid.apple.com';
/** Apple refuses a client secret that expires more than this many seconds after it was issued. */
export const APPLE_MAX_LIFETIME = 15_777_000;

export interface AppleClientSecretOptions {
  teamId: string;
  keyId: string;
  clientId: string;
  privateKey: KeyObject;
  now?: () => Date;
  /** Seconds each secret is valid (default one hour; at most APPLE_MAX_LIFETIME). */
  lifetime?: number;
  /** A new secret is signed when the current one has less than this many seconds left (default 5 minutes). */
  renewBefore?: number;
}

export class AppleClientSecret {
  readonly #options: Required<Omit<AppleClientSecretOptions, 'now'>>;
  readonly #now: () => Date;
  #current: { jwt: string; expiresAt: number } | undefined;
  #signing: Promise<string> | undefined;

  constructor(options: AppleClientSecretOptions) {
    const lifetime = options.lifetime ?? 3600;
    const renewBefore = options.renewBefore ?? 300;
    if (lifetime > APPLE_MAX_LIFETIME) throw new RangeError(`an Apple client secret may live at most ${APPLE_MAX_LIFETIME} seconds`);
    if (renewBefore >= lifetime) throw new RangeError('renewBefore must be shorter than lifetime');
    this.#options = { ...options, lifetime, renewBefore };
    this.#now = options.now ?? (() => new Date());
  }

  /** The secret to send now: the current one while it has time left, else a freshly signed one. */
  async value(): Promise<string> {
    const now = Math.floor(this.#now().getTime() / 1000);
    if (this.#current && this.#current.expiresAt - now > this.#options.renewBefore) return this.#current.jwt;
    // Concurrent sign-ins share one signature.
    this.#signing ??= this.#sign(now).finally(() => { this.#signing = undefined; });
    return this.#signing;
  }

  async #sign(now: number): Promise<string> {
    const { teamId, keyId, clientId, privateKey, lifetime } = this.#options;
    const expiresAt = now + lifetime;
    const jwt = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: keyId })
      .setIssuer(teamId)
      .setSubject(clientId)
      .setAudience(APPLE_AUDIENCE)
      .setIssuedAt(now)
      .setExpirationTime(expiresAt)
      .sign(privateKey);
    this.#current = { jwt, expiresAt };
    return jwt;
  }
}
