import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { encodeCBOR, type CBORType } from '@levischuck/tiny-cbor';
import type {
  AuthenticationResponseJSON, PublicKeyCredentialCreationOptionsJSON, PublicKeyCredentialRequestOptionsJSON, RegistrationResponseJSON,
} from '@simplewebauthn/server';

// An authenticator in this process, for integration tests and the benchmark: what a phone or a
// security key does in navigator.credentials.create() and .get(), with the browser's part (the
// client data) included. ES256 keys, attestation "none", discoverable credentials. The bytes
// follow WebAuthn Level 3 §6.1 (authenticator data), §6.5.4 (attestation object), §5.8.1 (client
// data); the signatures are node:crypto's.

const FLAG_UP = 0x01;
const FLAG_UV = 0x04;
const FLAG_BE = 0x08;
const FLAG_BS = 0x10;
const FLAG_AT = 0x40;

export interface StoredCredential {
  id: Buffer;
  rpId: string;
  userHandle: Buffer;
  privateKey: KeyObject;
  counter: number;
}

export interface AuthenticatorOptions {
  /** Sets the UV flag (the authenticator checked a fingerprint or PIN). Default true. */
  userVerification?: boolean;
  /** A synced passkey: backup eligible and backed up. Default false (device-bound). */
  synced?: boolean;
  /** Counts signatures (most security keys); false: always reports 0 (many synced passkeys). Default true. */
  countsSignatures?: boolean;
  /** The authenticator model; default all zeros ("none" attestation says nothing). */
  aaguid?: Buffer;
}

const b64url = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');
const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest();

/** The PublicKeyCredential's toJSON(), as the browser library sends it. */
function credentialJson<R>(credential: StoredCredential, response: R) {
  return { id: b64url(credential.id), rawId: b64url(credential.id), type: 'public-key' as const, clientExtensionResults: {}, authenticatorAttachment: 'platform' as const, response };
}

export class SoftwareAuthenticator {
  readonly credentials: StoredCredential[] = [];
  readonly #options: Required<AuthenticatorOptions>;

  constructor(options: AuthenticatorOptions = {}) {
    this.#options = {
      userVerification: options.userVerification ?? true,
      synced: options.synced ?? false,
      countsSignatures: options.countsSignatures ?? true,
      aaguid: options.aaguid ?? Buffer.alloc(16),
    };
  }

  /** A second authenticator holding copies of this one's keys and counters, as a cloned device would. */
  clone(): SoftwareAuthenticator {
    const copy = new SoftwareAuthenticator(this.#options);
    copy.credentials.push(...this.credentials.map((c) => ({ ...c })));
    return copy;
  }

  #flags(extra: number): number {
    let flags = FLAG_UP | extra;
    if (this.#options.userVerification) flags |= FLAG_UV;
    if (this.#options.synced) flags |= FLAG_BE | FLAG_BS;
    return flags;
  }

  #authenticatorData(rpId: string, flags: number, counter: number, attested?: Buffer): Buffer {
    const count = Buffer.alloc(4);
    count.writeUInt32BE(counter);
    return Buffer.concat([sha256(rpId), Buffer.from([flags]), count, ...(attested ? [attested] : [])]);
  }

  static #clientData(type: 'webauthn.create' | 'webauthn.get', challenge: string, origin: string): Buffer {
    return Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false }), 'utf8');
  }

  /** navigator.credentials.create(): a new key pair for the user, answered for `origin`. */
  register(options: PublicKeyCredentialCreationOptionsJSON, origin: string): RegistrationResponseJSON {
    const rpId = options.rp.id ?? new URL(origin).hostname;
    const excluded = new Set((options.excludeCredentials ?? []).map((c) => c.id));
    if (this.credentials.some((c) => c.rpId === rpId && excluded.has(b64url(c.id)))) {
      throw new Error('InvalidStateError: this authenticator already holds a credential for the user');
    }
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = publicKey.export({ format: 'jwk' });
    // COSE_Key (RFC 9053 §7.1.1): kty EC2, alg ES256, crv P-256, x, y.
    const coseKey = encodeCBOR(new Map<number, number | Uint8Array>([
      [1, 2], [3, -7], [-1, 1], [-2, Buffer.from(jwk.x!, 'base64url')], [-3, Buffer.from(jwk.y!, 'base64url')],
    ]));
    const credential: StoredCredential = {
      id: randomBytes(32), rpId, userHandle: Buffer.from(options.user.id, 'base64url'), privateKey, counter: 0,
    };
    const idLength = Buffer.alloc(2);
    idLength.writeUInt16BE(credential.id.length);
    const attested = Buffer.concat([this.#options.aaguid, idLength, credential.id, Buffer.from(coseKey)]);
    const authData = this.#authenticatorData(rpId, this.#flags(FLAG_AT), credential.counter, attested);
    const attestationObject = encodeCBOR(new Map<string, CBORType>([
      ['fmt', 'none'], ['attStmt', new Map<string, CBORType>()], ['authData', authData],
    ]));
    this.credentials.push(credential);
    const clientData = SoftwareAuthenticator.#clientData('webauthn.create', options.challenge, origin);
    return credentialJson(credential, {
      clientDataJSON: b64url(clientData),
      attestationObject: b64url(attestationObject),
      transports: ['internal', 'hybrid'],
    });
  }

  /**
   * navigator.credentials.get(): signs the challenge with a credential for the relying party,
   * the one named by `credentialId`, or else the first allowed (any, for a discoverable request).
   */
  authenticate(options: PublicKeyCredentialRequestOptionsJSON, origin: string, credentialId?: string): AuthenticationResponseJSON {
    const rpId = options.rpId ?? new URL(origin).hostname;
    const allowed = new Set((options.allowCredentials ?? []).map((c) => c.id));
    const credential = this.credentials.find((c) => c.rpId === rpId
      && (credentialId === undefined || b64url(c.id) === credentialId)
      && (allowed.size === 0 || allowed.has(b64url(c.id))));
    if (!credential) throw new Error('NotAllowedError: no credential for this relying party');
    if (this.#options.countsSignatures) credential.counter += 1;
    const authData = this.#authenticatorData(rpId, this.#flags(0), this.#options.countsSignatures ? credential.counter : 0);
    const clientData = SoftwareAuthenticator.#clientData('webauthn.get', options.challenge, origin);
    // ECDSA over authenticatorData ‖ SHA-256(clientDataJSON), DER-encoded (WebAuthn §6.3.3, §6.5.5).
    const signature = sign('sha256', Buffer.concat([authData, sha256(clientData)]), credential.privateKey);
    return credentialJson(credential, {
      clientDataJSON: b64url(clientData),
      authenticatorData: b64url(authData),
      signature: b64url(signature),
      userHandle: b64url(credential.userHandle),
    });
  }
}
