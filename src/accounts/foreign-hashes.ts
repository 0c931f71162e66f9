// Password hashes made by other systems, brought along by an import so that people keep signing
// in with the password they have. Each is verified at its owner's first sign-in and then replaced
// by Parley's own argon2id hash; until then it is stored in accounts.password_hash as
//
//   $foreign$<the hash in a standard, self-describing encoding>
//
// so that one look at the column tells Parley's own hashes ("$argon2id$…", over the NFKC form of
// the password) from imported ones (over the password exactly as typed, since that is what the
// old system hashed), even when both are argon2id. The encodings after "$foreign":
//
//   bcrypt           $2a$ / $2b$ / $2y$ modular crypt strings, as bcrypt writes them
//   argon2           $argon2i$ / $argon2id$ / $argon2d$ PHC strings, any parameters
//   pbkdf2           $pbkdf2-<sha1|sha256|sha512>$i=<iterations>,l=<bytes>$<salt>$<hash>
//                    (PHC string format; the form Auth0 documents for its PBKDF2 imports)
//   firebase-scrypt  $firebase-scrypt$<salt>$<hash>  (project parameters come from config)
//   sha256 / sha512  $sha256$pos=<prefix|suffix>,enc=<utf8|utf16le|latin1>$<salt>$<hash>
//
// where <salt> and <hash> are the bytes in base64 without padding, as in PHC strings.
// https://github.com/P-H-C/phc-string-format/blob/master/phc-sf-spec.md
//
// Every comparison of derived bytes is constant-time; the primitives are node:crypto's, bcryptjs's
// and argon2's, never hand-rolled.
import { createCipheriv, createHash, pbkdf2, scrypt, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import argon2 from 'argon2';
import bcrypt from 'bcryptjs';
import { DomainError } from '../errors.ts';

export const FOREIGN_PREFIX = '$foreign';

export type Pbkdf2Digest = 'sha1' | 'sha256' | 'sha512';
export type SaltedShaDigest = 'sha256' | 'sha512';
export type SaltPosition = 'prefix' | 'suffix';
/** How the password's text became the bytes the old system hashed (Node's names for them). */
export type PasswordEncoding = 'utf8' | 'utf16le' | 'latin1';

export type ForeignHash =
  | { kind: 'bcrypt'; encoded: string }
  | { kind: 'argon2'; encoded: string }
  | { kind: 'pbkdf2'; digest: Pbkdf2Digest; iterations: number; salt: Buffer; hash: Buffer }
  | { kind: 'firebase-scrypt'; salt: Buffer; hash: Buffer }
  | { kind: 'salted-sha'; digest: SaltedShaDigest; position: SaltPosition; passwordEncoding: PasswordEncoding; salt: Buffer; hash: Buffer };

/** A Firebase project's "password hash parameters" (console → Authentication → Users → ⋮). */
export interface FirebaseScryptParams {
  signerKey: Buffer;
  saltSeparator: Buffer;
  rounds: number;
  memCost: number;
}

/**
 * Work factors above these are refused at import: every sign-in attempt against such a hash,
 * right or wrong, would cost this much, so one bad row could tie up a node. They are well above
 * what any of these systems uses by default.
 */
export const LIMITS = {
  bcryptCost: { min: 4, max: 16 },
  argon2: { maxMemoryKib: 262_144, maxPasses: 64, maxLanes: 16 },
  pbkdf2: { maxIterations: 10_000_000, maxKeyBytes: 512 },
  saltBytes: 1024,
} as const;

/** unusable_hash: not a format Parley reads, malformed, or with work factors above LIMITS. */
export const FOREIGN_HASH_ERROR_CODES = ['unusable_hash'] as const;
declare module '../errors.ts' {
  interface ErrorCodes { foreign_hash: (typeof FOREIGN_HASH_ERROR_CODES)[number] }
}

/** Why a hash cannot be imported. The message never quotes the hash. */
export class ForeignHashError extends DomainError<'foreign_hash'> {
  constructor(message: string) {
    super('foreign_hash', 'unusable_hash', { message });
  }
}

function refuse(message: string): never {
  throw new ForeignHashError(message);
}

// --- encodings ------------------------------------------------------------------------------

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const BASE64_URL = /^[A-Za-z0-9_-]*={0,2}$/;

/**
 * Standard or URL-safe base64, padded or not (Firebase's CLI writes one, its Admin SDK the
 * other). Anything else is refused: Buffer.from would silently skip stray characters.
 */
export function decodeBase64(text: string, what: string): Buffer {
  const trimmed = text.trim();
  if (!(BASE64.test(trimmed) || BASE64_URL.test(trimmed)) || trimmed.replace(/=+$/, '').length % 4 === 1) {
    refuse(`${what} is not base64`);
  }
  return Buffer.from(trimmed.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}

/** passlib's "adapted base64": "." for "+", no padding. */
function decodeAb64(text: string, what: string): Buffer {
  if (!/^[A-Za-z0-9./]*$/.test(text)) refuse(`${what} is not base64`);
  return decodeBase64(text.replace(/\./g, '+'), what);
}

function decodeHex(text: string, what: string): Buffer {
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(text)) refuse(`${what} is not hexadecimal`);
  return Buffer.from(text, 'hex');
}

export type BytesEncoding = 'utf8' | 'hex' | 'base64';

export function decodeBytes(text: string, encoding: BytesEncoding, what: string): Buffer {
  if (encoding === 'hex') return decodeHex(text, what);
  if (encoding === 'base64') return decodeBase64(text, what);
  return Buffer.from(text, 'utf8');
}

const b64 = (bytes: Buffer) => bytes.toString('base64').replace(/=+$/, '');

function positiveInteger(text: string | undefined, what: string): number {
  if (text === undefined || !/^[1-9]\d{0,9}$/.test(text)) refuse(`${what} must be a positive whole number`);
  return Number(text);
}

function checkSalt(salt: Buffer): Buffer {
  if (salt.length > LIMITS.saltBytes) refuse(`the salt is longer than ${LIMITS.saltBytes} bytes`);
  return salt;
}

/** The scheme at the start of a hash, to name it in a message without quoting the hash. */
function schemeOf(text: string): string {
  const match = /^\$?[A-Za-z0-9_-]{1,20}\$?/.exec(text);
  return match ? `"${match[0]}"` : 'an unrecognized prefix';
}

// --- parsing the formats people have --------------------------------------------------------

const BCRYPT = /^\$2([abxy]?)\$(\d\d)\$[./A-Za-z0-9]{53}$/;

export function parseBcrypt(encoded: string): ForeignHash {
  const match = BCRYPT.exec(encoded);
  if (!match) refuse('not a bcrypt hash: expected $2a$, $2b$ or $2y$, a two-digit cost, then 53 characters of salt and hash');
  const [, minor, costText] = match as unknown as [string, string, string];
  // $2x$ marks hashes made by crypt_blowfish's sign-extension bug (CVE-2011-2483) and $2$ the
  // first, pre-2011 variant; no maintained implementation verifies them. $2y$ is PHP's name for
  // the corrected algorithm, the same as $2b$, and bcryptjs accepts all three spellings.
  if (minor === 'x' || minor === '') refuse(`bcrypt variant $2${minor}$ is not supported (only $2a$, $2b$ and $2y$)`);
  const cost = Number(costText);
  if (cost < LIMITS.bcryptCost.min || cost > LIMITS.bcryptCost.max) {
    refuse(`bcrypt cost ${cost} is outside ${LIMITS.bcryptCost.min}–${LIMITS.bcryptCost.max}`);
  }
  return { kind: 'bcrypt', encoded };
}

const ARGON2 = /^\$(argon2id|argon2i|argon2d)\$(?:v=(\d+)\$)?m=(\d+),t=(\d+),p=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;

export function parseArgon2(encoded: string): ForeignHash {
  const match = ARGON2.exec(encoded);
  if (!match) refuse('not an argon2 PHC string: expected $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>');
  const [, , version, m, t, p, salt, hash] = match as unknown as string[];
  if (version !== undefined && version !== '16' && version !== '19') refuse(`argon2 version ${version} is unknown (16 or 19)`);
  const memory = Number(m);
  const passes = Number(t);
  const lanes = Number(p);
  if (lanes < 1 || lanes > LIMITS.argon2.maxLanes) refuse(`argon2 parallelism ${lanes} is outside 1–${LIMITS.argon2.maxLanes}`);
  if (passes < 1 || passes > LIMITS.argon2.maxPasses) refuse(`argon2 iterations ${passes} are outside 1–${LIMITS.argon2.maxPasses}`);
  if (memory < 8 * lanes || memory > LIMITS.argon2.maxMemoryKib) {
    refuse(`argon2 memory ${memory} KiB is outside ${8 * lanes}–${LIMITS.argon2.maxMemoryKib} KiB`);
  }
  // The reference implementation's minimums (argon2.h: ARGON2_MIN_SALT_LENGTH, ARGON2_MIN_OUTLEN).
  if (decodeBase64(salt!, 'the argon2 salt').length < 8) refuse('the argon2 salt is shorter than 8 bytes');
  if (decodeBase64(hash!, 'the argon2 hash').length < 4) refuse('the argon2 hash is shorter than 4 bytes');
  return { kind: 'argon2', encoded };
}

function pbkdf2Hash(digest: Pbkdf2Digest, iterations: number, salt: Buffer, hash: Buffer, keyBytes?: number): ForeignHash {
  if (iterations > LIMITS.pbkdf2.maxIterations) refuse(`PBKDF2 iterations ${iterations} are more than ${LIMITS.pbkdf2.maxIterations}`);
  if (hash.length === 0 || hash.length > LIMITS.pbkdf2.maxKeyBytes) refuse(`the PBKDF2 hash must be 1–${LIMITS.pbkdf2.maxKeyBytes} bytes`);
  if (keyBytes !== undefined && keyBytes !== hash.length) refuse(`the PBKDF2 hash is ${hash.length} bytes, not the ${keyBytes} its l= says`);
  return { kind: 'pbkdf2', digest, iterations, salt: checkSalt(salt), hash };
}

const PBKDF2_PHC = /^\$pbkdf2(?:-(sha1|sha256|sha512))?\$([^$]+)\$([^$]*)\$([^$]+)$/;

/**
 * PBKDF2 in a PHC string, in either of its two spellings: "$pbkdf2-sha256$i=600000,l=32$<salt>$<hash>"
 * (PHC parameters, standard base64; Auth0's documented import form) or passlib's
 * "$pbkdf2-sha256$29000$<salt>$<hash>" (bare rounds, "adapted" base64; "$pbkdf2$" is SHA-1).
 */
export function parsePbkdf2Phc(encoded: string): ForeignHash {
  const match = PBKDF2_PHC.exec(encoded);
  if (!match) refuse('not a PBKDF2 PHC string: expected $pbkdf2-<sha1|sha256|sha512>$i=<iterations>,l=<bytes>$<salt>$<hash>');
  const [, digestName, params, salt, hash] = match as unknown as [string, string | undefined, string, string, string];
  if (/^\d+$/.test(params)) {
    return pbkdf2Hash((digestName ?? 'sha1') as Pbkdf2Digest, positiveInteger(params, 'PBKDF2 rounds'),
      decodeAb64(salt, 'the PBKDF2 salt'), decodeAb64(hash, 'the PBKDF2 hash'));
  }
  if (digestName === undefined) refuse('a PBKDF2 PHC string names its digest: $pbkdf2-sha1$, $pbkdf2-sha256$ or $pbkdf2-sha512$');
  const values = new Map(params.split(',').map((pair) => pair.split('=', 2) as [string, string | undefined]));
  const unknown = [...values.keys()].filter((key) => key !== 'i' && key !== 'l');
  if (unknown.length > 0) refuse(`unknown PBKDF2 parameter ${unknown.map((k) => `"${k}"`).join(', ')} (i= and l= are known)`);
  const keyBytes = values.has('l') ? positiveInteger(values.get('l'), 'PBKDF2 l=') : undefined;
  return pbkdf2Hash(digestName as Pbkdf2Digest, positiveInteger(values.get('i'), 'PBKDF2 i='),
    decodeBase64(salt, 'the PBKDF2 salt'), decodeBase64(hash, 'the PBKDF2 hash'), keyBytes);
}

const DJANGO_SUPPORTED = 'pbkdf2_sha256, pbkdf2_sha1, argon2 and bcrypt';

/**
 * Django's password field, "<algorithm>$<fields>". django/contrib/auth/hashers.py: PBKDF2's salt
 * is text (hashed as UTF-8) and its hash standard base64; argon2 and bcrypt carry the standard
 * string after the prefix.
 */
export function parseDjango(encoded: string): ForeignHash {
  const [algorithm, ...rest] = encoded.split('$');
  if (algorithm === 'pbkdf2_sha256' || algorithm === 'pbkdf2_sha1') {
    if (rest.length !== 3) refuse(`not a Django ${algorithm} hash: expected ${algorithm}$<iterations>$<salt>$<hash>`);
    const [iterations, salt, hash] = rest as [string, string, string];
    return pbkdf2Hash(algorithm === 'pbkdf2_sha256' ? 'sha256' : 'sha1', positiveInteger(iterations, 'Django PBKDF2 iterations'),
      Buffer.from(salt, 'utf8'), decodeBase64(hash, 'the Django PBKDF2 hash'));
  }
  if (algorithm === 'argon2') return parseArgon2(`$${rest.join('$')}`);
  if (algorithm === 'bcrypt' && rest[0] === '') return parseBcrypt(`$${rest.slice(1).join('$')}`);
  if (algorithm === 'bcrypt_sha256') refuse(`Django's bcrypt_sha256 is not supported (supported: ${DJANGO_SUPPORTED})`);
  return refuse(`Django hasher "${algorithm ?? ''}" is not supported (supported: ${DJANGO_SUPPORTED})`);
}

interface KeycloakSecretData { value?: unknown; salt?: unknown }
interface KeycloakCredentialData { hashIterations?: unknown; algorithm?: unknown; additionalParameters?: unknown }

function jsonObject(value: unknown, what: string): Record<string, unknown> {
  let parsed = value;
  if (typeof value === 'string') {
    try {
      parsed = JSON.parse(value);
    } catch {
      refuse(`${what} is not JSON`);
    }
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) refuse(`${what} must be a JSON object`);
  return parsed as Record<string, unknown>;
}

/** Keycloak keeps additionalParameters as a map of string lists: {"memory": ["7168"]}. */
function keycloakParameter(parameters: unknown, key: string): string | undefined {
  if (typeof parameters !== 'object' || parameters === null) return undefined;
  const value = (parameters as Record<string, unknown>)[key];
  const first = Array.isArray(value) ? value[0] : value;
  return typeof first === 'string' ? first : typeof first === 'number' ? String(first) : undefined;
}

const KEYCLOAK_PBKDF2: Record<string, Pbkdf2Digest> = { pbkdf2: 'sha1', 'pbkdf2-sha256': 'sha256', 'pbkdf2-sha512': 'sha512' };

/**
 * A Keycloak password credential: the JSON of its secretData ({value, salt}, both base64) and
 * credentialData ({hashIterations, algorithm, additionalParameters}), as Keycloak stores them in
 * its credential table and writes them into realm exports, either as objects or as JSON text.
 * Keycloak's hash providers: org.keycloak.credential.hash.Pbkdf2PasswordHashProvider (PBKDF2 with
 * HMAC-SHA1/256/512, a 512-bit key) and org.keycloak.crypto.hash.Argon2PasswordHashProvider.
 */
export function parseKeycloakCredential(secretData: unknown, credentialData: unknown): ForeignHash {
  const secret = jsonObject(secretData, 'secret_data') as KeycloakSecretData;
  const credential = jsonObject(credentialData, 'credential_data') as KeycloakCredentialData;
  const algorithm = typeof credential.algorithm === 'string' ? credential.algorithm : refuse('credential_data.algorithm is missing');
  if (typeof secret.value !== 'string' || secret.value === '') refuse('secret_data.value is missing');
  if (algorithm === 'bcrypt') return parseBcrypt(secret.value);
  const digest = KEYCLOAK_PBKDF2[algorithm];
  if (!digest && algorithm !== 'argon2') {
    refuse(`Keycloak hash algorithm "${algorithm}" is not supported (pbkdf2, pbkdf2-sha256, pbkdf2-sha512, argon2, bcrypt)`);
  }
  const iterations = typeof credential.hashIterations === 'number' && Number.isInteger(credential.hashIterations) && credential.hashIterations > 0
    ? credential.hashIterations : refuse('credential_data.hashIterations must be a positive whole number');
  if (typeof secret.salt !== 'string') refuse('secret_data.salt is missing');
  const salt = decodeBase64(secret.salt, 'secret_data.salt');
  const hash = decodeBase64(secret.value, 'secret_data.value');
  if (digest) return pbkdf2Hash(digest, iterations, salt, hash);
  // argon2: Keycloak keeps its parameters beside the raw hash; a PHC string says the same.
  const parameters = credential.additionalParameters;
  const type = keycloakParameter(parameters, 'type') ?? 'id';
  const version = keycloakParameter(parameters, 'version') ?? '1.3';
  if (!['id', 'i', 'd'].includes(type)) refuse(`Keycloak argon2 type "${type}" is unknown (id, i or d)`);
  if (version !== '1.3' && version !== '1.0') refuse(`Keycloak argon2 version "${version}" is unknown (1.3 or 1.0)`);
  const memory = positiveInteger(keycloakParameter(parameters, 'memory'), 'credential_data.additionalParameters.memory');
  const lanes = positiveInteger(keycloakParameter(parameters, 'parallelism') ?? '1', 'credential_data.additionalParameters.parallelism');
  const hashLength = keycloakParameter(parameters, 'hashLength');
  if (hashLength !== undefined && Number(hashLength) !== hash.length) refuse(`secret_data.value is ${hash.length} bytes, not the ${hashLength} of hashLength`);
  return parseArgon2(`$argon2${type}$v=${version === '1.3' ? 19 : 16}$m=${memory},t=${iterations},p=${lanes}$${b64(salt)}$${b64(hash)}`);
}

/** A Firebase Auth export's passwordHash and salt (base64); the project's parameters come from config. */
export function parseFirebaseScrypt(hash: string, salt: string): ForeignHash {
  const hashBytes = decodeBase64(hash, 'the Firebase password hash');
  if (hashBytes.length === 0) refuse('the Firebase password hash is empty');
  return { kind: 'firebase-scrypt', salt: checkSalt(decodeBase64(salt, 'the Firebase salt')), hash: hashBytes };
}

const SHA_LENGTH: Record<SaltedShaDigest, number> = { sha256: 32, sha512: 64 };

export interface SaltedShaInput {
  digest: SaltedShaDigest;
  hash: string;
  hashEncoding: 'hex' | 'base64';
  salt: string;
  saltEncoding: BytesEncoding;
  saltPosition?: SaltPosition | undefined;
  passwordEncoding: PasswordEncoding;
}

/** SHA-256 or SHA-512 over the password with a salt before or after it: the oldest systems' way. */
export function parseSaltedSha(input: SaltedShaInput): ForeignHash {
  const hash = decodeBytes(input.hash, input.hashEncoding, `the ${input.digest} hash`);
  if (hash.length !== SHA_LENGTH[input.digest]) {
    refuse(`a ${input.digest} hash is ${SHA_LENGTH[input.digest]} bytes, this one is ${hash.length} (is hash_encoding right?)`);
  }
  const salt = checkSalt(decodeBytes(input.salt, input.saltEncoding, 'the salt'));
  // Guessing the salt's place would make every sign-in fail without a word: it must be said.
  if (salt.length > 0 && input.saltPosition === undefined) refuse('salt_position is required with a salt: prefix or suffix');
  return { kind: 'salted-sha', digest: input.digest, position: input.saltPosition ?? 'prefix', passwordEncoding: input.passwordEncoding, salt, hash };
}

/**
 * A hash that names its own format: bcrypt, argon2 and PBKDF2 PHC strings, Django's password
 * field, or a hash exported from another Parley's password_hash column ("$foreign$…").
 */
export function parseSelfDescribing(text: string): ForeignHash {
  if (text.startsWith(`${FOREIGN_PREFIX}$`)) return parseStoredForeignHash(text);
  if (/^\$2[a-z]?\$/.test(text)) return parseBcrypt(text);
  if (/^\$argon2/.test(text)) return parseArgon2(text);
  if (/^\$pbkdf2[-$]/.test(text)) return parsePbkdf2Phc(text);
  if (/^[a-z0-9_]+\$/.test(text)) return parseDjango(text);
  return refuse(`unrecognized password hash (starts with ${schemeOf(text)}); `
    + 'give bcrypt, argon2, PBKDF2 PHC or Django strings as they are, or an object with a "format"');
}

// --- the stored form -------------------------------------------------------------------------

export function encodeForeignHash(hash: ForeignHash): string {
  switch (hash.kind) {
    case 'bcrypt':
    case 'argon2':
      return `${FOREIGN_PREFIX}${hash.encoded}`;
    case 'pbkdf2':
      return `${FOREIGN_PREFIX}$pbkdf2-${hash.digest}$i=${hash.iterations},l=${hash.hash.length}$${b64(hash.salt)}$${b64(hash.hash)}`;
    case 'firebase-scrypt':
      return `${FOREIGN_PREFIX}$firebase-scrypt$${b64(hash.salt)}$${b64(hash.hash)}`;
    case 'salted-sha':
      return `${FOREIGN_PREFIX}$${hash.digest}$pos=${hash.position},enc=${hash.passwordEncoding}$${b64(hash.salt)}$${b64(hash.hash)}`;
  }
}

const STORED_SALTED_SHA = /^\$(sha256|sha512)\$pos=(prefix|suffix),enc=(utf8|utf16le|latin1)\$([A-Za-z0-9+/]*)\$([A-Za-z0-9+/]+)$/;
const STORED_FIREBASE = /^\$firebase-scrypt\$([A-Za-z0-9+/]*)\$([A-Za-z0-9+/]+)$/;

/** The inverse of encodeForeignHash; refuses anything it would not have written. */
export function parseStoredForeignHash(stored: string): ForeignHash {
  if (!stored.startsWith(`${FOREIGN_PREFIX}$`)) refuse('not a stored foreign hash');
  const native = stored.slice(FOREIGN_PREFIX.length);
  if (native.startsWith('$2')) return parseBcrypt(native);
  if (native.startsWith('$argon2')) return parseArgon2(native);
  if (native.startsWith('$pbkdf2-')) return parsePbkdf2Phc(native);
  const firebase = STORED_FIREBASE.exec(native);
  if (firebase) return parseFirebaseScrypt(firebase[2]!, firebase[1]!);
  const sha = STORED_SALTED_SHA.exec(native);
  if (sha) {
    const [, digest, position, passwordEncoding, salt, hash] = sha as unknown as [string, SaltedShaDigest, SaltPosition, PasswordEncoding, string, string];
    return parseSaltedSha({ digest, hash, hashEncoding: 'base64', salt, saltEncoding: 'base64', saltPosition: position, passwordEncoding });
  }
  return refuse(`unknown stored foreign hash (starts with ${schemeOf(native)})`);
}

// --- verifying -------------------------------------------------------------------------------

const pbkdf2Async = promisify(pbkdf2);
const scryptAsync = promisify(scrypt) as (password: Buffer, salt: Buffer, keylen: number, options: { N: number; r: number; p: number; maxmem: number }) => Promise<Buffer>;

function sameBytes(a: Buffer, b: Buffer): boolean {
  // The lengths come from the stored hash, not from the password: comparing them leaks nothing.
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Firebase's modified scrypt (github.com/firebase/scrypt, README "Password Hashing"): scrypt of
 * the password with salt ‖ salt separator, N = 2^mem_cost, r = rounds, p = 1, a 32-byte key;
 * that key encrypts the project's signer key with AES-256-CTR and a zero IV; the ciphertext is
 * the stored hash.
 */
async function firebaseScryptHash(password: Buffer, salt: Buffer, params: FirebaseScryptParams): Promise<Buffer> {
  const N = 2 ** params.memCost;
  const key = await scryptAsync(password, Buffer.concat([salt, params.saltSeparator]), 32, {
    N, r: params.rounds, p: 1, maxmem: 256 * N * params.rounds + 1024 * 1024,
  });
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(params.signerKey), cipher.final()]);
}

/**
 * Whether the password, exactly as typed (not normalized: the old system hashed what it was
 * given), matches the foreign hash. False, never an exception, for a mismatch; a Firebase hash
 * without the project's parameters cannot match anything.
 */
export async function verifyForeignHash(hash: ForeignHash, password: string, firebase?: FirebaseScryptParams): Promise<boolean> {
  switch (hash.kind) {
    case 'bcrypt':
      return bcrypt.compare(password, hash.encoded);
    case 'argon2':
      return argon2.verify(hash.encoded, password);
    case 'pbkdf2':
      return sameBytes(await pbkdf2Async(Buffer.from(password, 'utf8'), hash.salt, hash.iterations, hash.hash.length, hash.digest), hash.hash);
    case 'firebase-scrypt':
      if (!firebase) return false;
      return sameBytes(await firebaseScryptHash(Buffer.from(password, 'utf8'), hash.salt, firebase), hash.hash);
    case 'salted-sha': {
      const bytes = Buffer.from(password, hash.passwordEncoding);
      const input = hash.position === 'prefix' ? [hash.salt, bytes] : [bytes, hash.salt];
      return sameBytes(createHash(hash.digest).update(Buffer.concat(input)).digest(), hash.hash);
    }
  }
}
