import { randomBytes } from 'node:crypto';
import { argon2id as nobleArgon2id } from '@noble/hashes/argon2.js';
import { pbkdf2 as noblePbkdf2 } from '@noble/hashes/pbkdf2.js';
import { sha256 as nobleSha256, sha512 as nobleSha512 } from '@noble/hashes/sha2.js';
import bcrypt from 'bcryptjs';
import { FirebaseScrypt } from 'firebase-scrypt';
import { describe, expect, it } from 'vitest';
import {
  encodeForeignHash, ForeignHashError, parseArgon2, parseBcrypt, parseDjango, parseFirebaseScrypt, parseKeycloakCredential,
  parsePbkdf2Phc, parseSaltedSha, parseSelfDescribing, parseStoredForeignHash, verifyForeignHash,
  type FirebaseScryptParams, type ForeignHash,
} from '../../src/accounts/foreign-hashes.ts';
import { thrown } from '../support/thrown.ts';

// Every format is checked against vectors that did not come from Parley's own code: the
// documented vectors of each algorithm's reference (RFCs, the reference implementations' test
// suites, the vendors' published samples), and hashes made in the test by another
// implementation from the npm registry (bcryptjs, firebase-scrypt, @noble/hashes).

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64').replace(/=+$/, '');
const hex = (text: string) => Buffer.from(text, 'hex');
const utf8 = (text: string) => Buffer.from(text, 'utf8');

/** Parses, stores, reads back, and verifies the stored form: what a sign-in after an import does. */
async function verifiesAfterStoring(hash: ForeignHash, password: string, firebase?: FirebaseScryptParams): Promise<boolean> {
  const stored = encodeForeignHash(hash);
  expect(stored.startsWith('$foreign$')).toBe(true);
  expect(encodeForeignHash(parseStoredForeignHash(stored))).toBe(stored);
  return verifyForeignHash(parseStoredForeignHash(stored), password, firebase);
}

const refusal = (parse: () => unknown) => thrown(parse, ForeignHashError).message;

describe('bcrypt', () => {
  // Solar Designer's crypt_blowfish test vectors (Owl glibc crypt_blowfish wrapper.c, also in
  // PHP's ext/standard/tests/strings/crypt_blowfish.phpt), the reference for $2a$/$2b$/$2y$.
  const openwall: [string, string][] = [
    ['U*U', '$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW'],
    ['U*U*', '$2a$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK'],
    ['U*U*U', '$2a$05$XXXXXXXXXXXXXXXXXXXXXOAcXxm9kjPGEMsLznoKqmqw7tc8WCx4a'],
    ['', '$2a$05$CCCCCCCCCCCCCCCCCCCCC.7uG0VCzI2bS7j6ymqJi9CdcdxiRTWNy'],
    ['password', '$2a$04$abcdefghijklmnopqrstuughE8Ev8uGFaUgY2cNEySvxngrb/Jzdm'],
    ['U*U', '$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW'],
    // bcrypt reads at most 72 bytes of the password: what comes after does not count.
    ['0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789chars after 72 are ignored',
      '$2b$05$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui'],
  ];

  it('verifies crypt_blowfish\'s own vectors, and not a wrong password', async () => {
    for (const [password, encoded] of openwall) {
      expect(await verifiesAfterStoring(parseBcrypt(encoded), password), encoded).toBe(true);
      expect(await verifyForeignHash(parseBcrypt(encoded), `!${password}`), encoded).toBe(false);
    }
  });

  it('verifies $2y$, PHP\'s name for the same algorithm (PHP manual, password_verify() example)', async () => {
    const php = '$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a';
    expect(await verifiesAfterStoring(parseSelfDescribing(php), 'rasmuslerdorf')).toBe(true);
    expect(await verifyForeignHash(parseBcrypt(php), 'rasmuslerdorF')).toBe(false);
  });

  it('verifies hashes bcryptjs makes, over the password\'s UTF-8 bytes exactly as typed', async () => {
    const password = 'Ｐäss wörd 🔑';
    const encoded = await bcrypt.hash(password, 4);
    expect(await verifiesAfterStoring(parseBcrypt(encoded), password)).toBe(true);
    // Not normalized: the old system hashed what it was given, full-width letters and all.
    expect(await verifyForeignHash(parseBcrypt(encoded), password.normalize('NFKC'))).toBe(false);
  });

  it('refuses the buggy $2x$ and ancient $2$ variants, malformed strings and costs out of range', () => {
    expect(refusal(() => parseBcrypt('$2x$05$/OK.fbVrR/bpIqNJ5ianF.CE5elHaaO4EbggVDjb8P19RukzXSM3e'))).toMatch(/\$2x\$ is not supported/);
    expect(refusal(() => parseBcrypt('$2$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW'))).toMatch(/\$2\$ is not supported/);
    expect(refusal(() => parseBcrypt('$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0Xou'))).toMatch(/not a bcrypt hash/);
    expect(refusal(() => parseBcrypt('$2b$17$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW'))).toMatch(/cost 17 is outside 4–16/);
    expect(refusal(() => parseBcrypt('$2b$03$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW'))).toMatch(/cost 3/);
  });
});

describe('argon2', () => {
  // The reference implementation's test suite, P-H-C/phc-winner-argon2 src/test.c: password
  // "password", salt "somesalt".
  const reference: [string, string][] = [
    ['argon2i v=19, p=1', '$argon2i$v=19$m=256,t=2,p=1$c29tZXNhbHQ$iekCn0Y3spW+sCcFanM2xBT63UP2sghkUoHLIUpWRS8'],
    ['argon2i v=19, p=2', '$argon2i$v=19$m=256,t=2,p=2$c29tZXNhbHQ$T/XOJ2mh1/TIpJHfCdQan76Q5esCFVoT5MAeIM1Oq2E'],
    ['argon2i version 0x10, written without v=', '$argon2i$m=256,t=2,p=1$c29tZXNhbHQ$/U3YPXYsSb3q9XxHvc0MLxur+GP960kN9j7emXX8zwY'],
    ['argon2id v=19, p=1', '$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4'],
    ['argon2id v=19, p=2', '$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHQ$bQk8UB/VmZZF4Oo79iDXuL5/0ttZwg2f/5U52iv1cDc'],
  ];

  it('verifies the reference implementation\'s vectors with their own parameters', async () => {
    for (const [name, encoded] of reference) {
      expect(await verifiesAfterStoring(parseArgon2(encoded), 'password'), name).toBe(true);
      expect(await verifyForeignHash(parseArgon2(encoded), 'passwore'), name).toBe(false);
    }
  });

  it('verifies Django\'s argon2 field (tests/auth_tests/test_hashers.py, made by argon2-cffi)', async () => {
    const django = [
      'argon2$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$YC9+jJCrQhs5R6db7LlN8Q',
      'argon2$argon2id$v=19$m=102400,t=2,p=8$Y041dExhNkljRUUy$TMa6A8fPJhCAUXRhJXCXdw',
    ];
    for (const encoded of django) {
      expect(await verifiesAfterStoring(parseSelfDescribing(encoded), 'secret'), encoded).toBe(true);
      expect(await verifyForeignHash(parseDjango(encoded), 'wrong'), encoded).toBe(false);
    }
  });

  it('verifies what another argon2 implementation (@noble/hashes) makes with other parameters', async () => {
    const salt = randomBytes(16);
    const password = 'correct horse battery staple';
    const hash = nobleArgon2id(utf8(password), salt, { t: 3, m: 1024, p: 2, dkLen: 24 });
    const encoded = `$argon2id$v=19$m=1024,t=3,p=2$${b64(salt)}$${b64(hash)}`;
    expect(await verifiesAfterStoring(parseArgon2(encoded), password)).toBe(true);
  });

  it('refuses work factors that would let one row tie up a node, and malformed strings', () => {
    expect(refusal(() => parseArgon2('$argon2id$v=19$m=1048576,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4'))).toMatch(/memory 1048576 KiB/);
    expect(refusal(() => parseArgon2('$argon2id$v=19$m=256,t=200,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4'))).toMatch(/iterations 200/);
    expect(refusal(() => parseArgon2('$argon2id$v=18$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4'))).toMatch(/version 18/);
    expect(refusal(() => parseArgon2('$argon2id$v=19$m=256,t=2,p=1$c2FsdA$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4'))).toMatch(/salt is shorter than 8 bytes/);
    // The reference's own "missing $" decoding test.
    expect(refusal(() => parseArgon2('$argon2i$v=19$m=65536,t=2,p=1c29tZXNhbHQ$wWKIMhR9lyDFvRz9YTZweHKfbftvj+qf+YFY4NeBbtA'))).toMatch(/not an argon2 PHC string/);
  });
});

describe('PBKDF2', () => {
  const phc = (digest: string, iterations: number, salt: Buffer, hash: Buffer) => `$pbkdf2-${digest}$i=${iterations},l=${hash.length}$${b64(salt)}$${b64(hash)}`;

  it('verifies RFC 6070\'s PBKDF2-HMAC-SHA1 vectors', async () => {
    const vectors: [string, string, number, string][] = [
      ['password', 'salt', 1, '0c60c80f961f0e71f3a9b524af6012062fe037a6'],
      ['password', 'salt', 2, 'ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957'],
      ['password', 'salt', 4096, '4b007901b765489abead49d926f721d065a429c1'],
      ['passwordPASSWORDpassword', 'saltSALTsaltSALTsaltSALTsaltSALTsalt', 4096, '3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038'],
      ['pass\0word', 'sa\0lt', 4096, '56fa6aa75548099dcc37d7f03425e0c3'],
    ];
    for (const [password, salt, iterations, derived] of vectors) {
      const hash = parsePbkdf2Phc(phc('sha1', iterations, utf8(salt), hex(derived)));
      expect(await verifiesAfterStoring(hash, password), `${password}/${iterations}`).toBe(true);
      expect(await verifyForeignHash(hash, `${password}x`)).toBe(false);
    }
  });

  it('verifies RFC 7914 §11\'s PBKDF2-HMAC-SHA256 vectors', async () => {
    const vectors: [string, string, number, string][] = [
      ['passwd', 'salt', 1, '55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783'],
      ['Password', 'NaCl', 80000, '4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d'],
    ];
    for (const [password, salt, iterations, derived] of vectors) {
      expect(await verifiesAfterStoring(parsePbkdf2Phc(phc('sha256', iterations, utf8(salt), hex(derived))), password)).toBe(true);
    }
  });

  it('verifies PBKDF2-HMAC-SHA512 as @noble/hashes computes it, and the widely published password/salt/1 vector', async () => {
    const published = '867f70cf1ade02cff3752599a3a53dc4af34c7a669815ae5d513554e1c8cf252c02d470a285a0501bad999bfe943c08f050235d7d68b1da55e63f73b60a57fce';
    expect(Buffer.from(noblePbkdf2(nobleSha512, utf8('password'), utf8('salt'), { c: 1, dkLen: 64 })).toString('hex')).toBe(published);
    expect(await verifiesAfterStoring(parsePbkdf2Phc(phc('sha512', 1, utf8('salt'), hex(published))), 'password')).toBe(true);
    const salt = randomBytes(16);
    const derived = Buffer.from(noblePbkdf2(nobleSha512, utf8('naïve café'), salt, { c: 1000, dkLen: 32 }));
    expect(await verifiesAfterStoring(parsePbkdf2Phc(phc('sha512', 1000, salt, derived)), 'naïve café')).toBe(true);
  });

  it('reads passlib\'s form too (passlib documentation, pbkdf2_sha256 usage example)', async () => {
    const passlib = '$pbkdf2-sha256$6400$0ZrzXitFSGltTQnBWOsdAw$Y11AchqV4b0sUisdZd0Xr97KWoymNE0LNNrnEgY4H9M';
    expect(await verifiesAfterStoring(parseSelfDescribing(passlib), 'password')).toBe(true);
    expect(await verifyForeignHash(parsePbkdf2Phc(passlib), 'Password')).toBe(false);
  });

  it('verifies Django\'s pbkdf2_sha256 and pbkdf2_sha1 fields (tests/auth_tests/test_hashers.py)', async () => {
    const django = [
      'pbkdf2_sha256$390000$seasalt$8xBlGd3jVgvJ+92hWPxi5ww0uuAuAnKgC45eudxro7c=',
      'pbkdf2_sha256$390000$seasalt2$geC/uZ92nRXDSjSxeoiBqYyRcrLzMm8xK3ro1QS1uo8=',
      'pbkdf2_sha1$390000$seasalt2$aDapRanzW8aHTz97v2TcfHzWD+I=',
    ];
    for (const encoded of django) {
      expect(await verifiesAfterStoring(parseSelfDescribing(encoded), 'lètmein'), encoded).toBe(true);
      expect(await verifyForeignHash(parseDjango(encoded), 'lètmeinz'), encoded).toBe(false);
    }
  });

  it('refuses Django hashers Parley does not verify, naming the ones it does', () => {
    expect(refusal(() => parseDjango('md5$seasalt$3f86d0d3d465b7b458c231bf3555c0e3'))).toMatch(/"md5" is not supported \(supported: pbkdf2_sha256, pbkdf2_sha1, argon2 and bcrypt\)/);
    expect(refusal(() => parseDjango('bcrypt_sha256$$2b$12$abc'))).toMatch(/bcrypt_sha256 is not supported/);
    expect(refusal(() => parseDjango('pbkdf2_sha256$many$seasalt$abc='))).toMatch(/iterations must be a positive whole number/);
  });

  it('refuses PHC strings with other digests, unknown parameters, or a length that does not match', () => {
    expect(refusal(() => parsePbkdf2Phc('$pbkdf2-md5$i=1000,l=16$c2FsdA$AAAAAAAAAAAAAAAAAAAAAA'))).toMatch(/not a PBKDF2 PHC string/);
    expect(refusal(() => parsePbkdf2Phc('$pbkdf2-sha256$i=1000,x=1$c2FsdA$AAAAAAAAAAAAAAAAAAAAAA'))).toMatch(/unknown PBKDF2 parameter "x"/);
    expect(refusal(() => parsePbkdf2Phc('$pbkdf2-sha256$i=1000,l=32$c2FsdA$AAAAAAAAAAAAAAAAAAAAAA'))).toMatch(/16 bytes, not the 32/);
    expect(refusal(() => parsePbkdf2Phc('$pbkdf2-sha256$i=20000000,l=16$c2FsdA$AAAAAAAAAAAAAAAAAAAAAA'))).toMatch(/more than 10000000/);
    expect(refusal(() => parsePbkdf2Phc('$pbkdf2-sha256$i=1000$c2F*sdA$AAAAAAAAAAAAAAAAAAAAAA'))).toMatch(/salt is not base64/);
  });
});

describe('Keycloak credentials', () => {
  // Keycloak's Pbkdf2PasswordHashProvider derives a 512-bit key, so RFC 7914's 64-byte
  // PBKDF2-HMAC-SHA256 vector is exactly what a Keycloak credential for "passwd" holds.
  const rfc7914 = hex('55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783');

  it('verifies pbkdf2-sha256, given as the JSON text Keycloak exports or as objects', async () => {
    const secretData = JSON.stringify({ value: rfc7914.toString('base64'), salt: utf8('salt').toString('base64'), additionalParameters: {} });
    const credentialData = JSON.stringify({ hashIterations: 1, algorithm: 'pbkdf2-sha256', additionalParameters: {} });
    expect(await verifiesAfterStoring(parseKeycloakCredential(secretData, credentialData), 'passwd')).toBe(true);
    expect(await verifiesAfterStoring(parseKeycloakCredential(JSON.parse(secretData), JSON.parse(credentialData)), 'passwd')).toBe(true);
    expect(await verifyForeignHash(parseKeycloakCredential(secretData, credentialData), 'Passwd')).toBe(false);
  });

  it('verifies pbkdf2 (HMAC-SHA1) and pbkdf2-sha512 as RFC 6070 and @noble/hashes compute them', async () => {
    const sha1 = parseKeycloakCredential(
      { value: hex('4b007901b765489abead49d926f721d065a429c1').toString('base64'), salt: utf8('salt').toString('base64') },
      { hashIterations: 4096, algorithm: 'pbkdf2' },
    );
    expect(await verifiesAfterStoring(sha1, 'password')).toBe(true);
    const salt = randomBytes(16);
    const derived = noblePbkdf2(nobleSha512, utf8('Keycloak user 1'), salt, { c: 210, dkLen: 64 });
    const sha512 = parseKeycloakCredential({ value: Buffer.from(derived).toString('base64'), salt: salt.toString('base64') }, { hashIterations: 210, algorithm: 'pbkdf2-sha512' });
    expect(await verifiesAfterStoring(sha512, 'Keycloak user 1')).toBe(true);
  });

  it('verifies argon2 credentials (Keycloak 24+) from their additionalParameters, here the reference argon2id vector', async () => {
    const credential = parseKeycloakCredential(
      { value: hex('9dfeb910e80bad0311fee20f9c0e2b12c17987b4cac90c2ef54d5b3021c68bfe').toString('base64'), salt: utf8('somesalt').toString('base64') },
      { hashIterations: 2, algorithm: 'argon2', additionalParameters: { hashLength: ['32'], memory: ['256'], type: ['id'], version: ['1.3'], parallelism: ['1'] } },
    );
    expect(credential).toEqual({ kind: 'argon2', encoded: '$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4' });
    expect(await verifiesAfterStoring(credential, 'password')).toBe(true);
  });

  it('refuses unknown algorithms and incomplete credentials with the key that is wrong', () => {
    expect(refusal(() => parseKeycloakCredential('{"value":"x","salt":"c2FsdA=="}', '{"hashIterations":1,"algorithm":"md5"}'))).toMatch(/"md5" is not supported/);
    expect(refusal(() => parseKeycloakCredential('{"salt":"c2FsdA=="}', '{"hashIterations":1,"algorithm":"pbkdf2-sha256"}'))).toMatch(/secret_data.value is missing/);
    expect(refusal(() => parseKeycloakCredential('{"value":"AAAA","salt":"c2FsdA=="}', '{"algorithm":"pbkdf2-sha256"}'))).toMatch(/hashIterations/);
    expect(refusal(() => parseKeycloakCredential('{not json', '{}'))).toMatch(/secret_data is not JSON/);
  });
});

describe('Firebase scrypt', () => {
  // firebase/scrypt README, "Password Hashing": the sample project parameters and exported user.
  const sample: FirebaseScryptParams = {
    signerKey: Buffer.from('jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA==', 'base64'),
    saltSeparator: Buffer.from('Bw==', 'base64'),
    rounds: 8,
    memCost: 14,
  };

  it('verifies Firebase\'s published sample, and only with the project\'s parameters', async () => {
    const hash = parseFirebaseScrypt('lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ==', '42xEC+ixf3L2lw==');
    expect(await verifiesAfterStoring(hash, 'user1password', sample)).toBe(true);
    expect(await verifyForeignHash(hash, 'user1passwore', sample)).toBe(false);
    expect(await verifyForeignHash(hash, 'user1password')).toBe(false);
    expect(await verifyForeignHash(hash, 'user1password', { ...sample, saltSeparator: Buffer.from('CA==', 'base64') })).toBe(false);
  });

  it('verifies what the firebase-scrypt package computes for other projects, salts and passwords (URL-safe base64 too)', async () => {
    const project = { signerKey: randomBytes(64).toString('base64'), saltSeparator: randomBytes(1).toString('base64'), rounds: 4, memCost: 12 };
    const params: FirebaseScryptParams = {
      signerKey: Buffer.from(project.signerKey, 'base64'), saltSeparator: Buffer.from(project.saltSeparator, 'base64'), rounds: project.rounds, memCost: project.memCost,
    };
    const reference = new FirebaseScrypt(project);
    for (const password of ['hunter2hunter2', 'pässwörd', '密码密码密码']) {
      const salt = randomBytes(10).toString('base64');
      const hash = await reference.hash(password, salt);
      expect(await verifiesAfterStoring(parseFirebaseScrypt(hash, salt), password, params), password).toBe(true);
      const urlSafe = (text: string) => text.replace(/\+/g, '-').replace(/\//g, '_');
      expect(await verifyForeignHash(parseFirebaseScrypt(urlSafe(hash), urlSafe(salt)), password, params)).toBe(true);
    }
  });
});

describe('salted SHA-256 and SHA-512', () => {
  // FIPS 180-2 appendix B.1 and C.1: the digests of "abc". A salt "a" before the password "bc",
  // or "bc" after the password "a", is that message.
  const sha256Abc = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
  const sha512Abc = 'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f';
  const base = { saltEncoding: 'utf8', passwordEncoding: 'utf8' } as const;

  it('verifies the FIPS 180-2 digests with the salt before and after, in hex and base64', async () => {
    const prefix = parseSaltedSha({ ...base, digest: 'sha256', hash: sha256Abc, hashEncoding: 'hex', salt: 'a', saltPosition: 'prefix' });
    expect(await verifiesAfterStoring(prefix, 'bc')).toBe(true);
    expect(await verifyForeignHash(prefix, 'bC')).toBe(false);
    const suffix = parseSaltedSha({ ...base, digest: 'sha512', hash: hex(sha512Abc).toString('base64'), hashEncoding: 'base64', salt: 'bc', saltPosition: 'suffix' });
    expect(await verifiesAfterStoring(suffix, 'a')).toBe(true);
    const hexSalt = parseSaltedSha({ ...base, digest: 'sha256', hash: sha256Abc.toUpperCase(), hashEncoding: 'hex', salt: '6162', saltEncoding: 'hex', saltPosition: 'prefix' });
    expect(await verifiesAfterStoring(hexSalt, 'c')).toBe(true);
    const unsalted = parseSaltedSha({ ...base, digest: 'sha256', hash: sha256Abc, hashEncoding: 'hex', salt: '' });
    expect(await verifiesAfterStoring(unsalted, 'abc')).toBe(true);
  });

  it('hashes the password in the encoding the old system used (@noble/hashes computes the expected digests)', async () => {
    const salt = randomBytes(8);
    const password = 'Grüße';
    for (const passwordEncoding of ['utf16le', 'latin1'] as const) {
      const digest = nobleSha256(Buffer.concat([Buffer.from(password, passwordEncoding), salt]));
      const hash = parseSaltedSha({ digest: 'sha256', hash: b64(digest), hashEncoding: 'base64', salt: salt.toString('base64'), saltEncoding: 'base64', saltPosition: 'suffix', passwordEncoding });
      expect(await verifiesAfterStoring(hash, password), passwordEncoding).toBe(true);
      expect(await verifyForeignHash({ ...hash, passwordEncoding: 'utf8' } as ForeignHash, password)).toBe(false);
    }
  });

  it('refuses a digest of the wrong length and a salt without its position', () => {
    expect(refusal(() => parseSaltedSha({ ...base, digest: 'sha512', hash: sha256Abc, hashEncoding: 'hex', salt: '' }))).toMatch(/sha512 hash is 64 bytes, this one is 32/);
    expect(refusal(() => parseSaltedSha({ ...base, digest: 'sha256', hash: sha256Abc, hashEncoding: 'hex', salt: 'a' }))).toMatch(/salt_position is required/);
    expect(refusal(() => parseSaltedSha({ ...base, digest: 'sha256', hash: 'xyz', hashEncoding: 'hex', salt: '' }))).toMatch(/not hexadecimal/);
  });
});

describe('self-describing strings and the stored form', () => {
  it('names an unknown scheme without quoting the hash', () => {
    const md5crypt = '$1$saltsalt$qjXMvbEw8oaL.CzflDugX/';
    const message = refusal(() => parseSelfDescribing(md5crypt));
    expect(message).toMatch(/unrecognized password hash \(starts with "\$1\$"\)/);
    expect(message).not.toContain('qjXMvbEw8oaL');
    expect(refusal(() => parseSelfDescribing('5f4dcc3b5aa765d61d8327deb882cf99'))).toMatch(/unrecognized password hash/);
  });

  it('reads back a hash exported from another Parley\'s password_hash column', () => {
    const stored = encodeForeignHash(parseDjango('pbkdf2_sha1$390000$seasalt2$aDapRanzW8aHTz97v2TcfHzWD+I='));
    expect(stored).toBe(`$foreign$pbkdf2-sha1$i=390000,l=20$${b64(utf8('seasalt2'))}$aDapRanzW8aHTz97v2TcfHzWD+I`);
    expect(encodeForeignHash(parseSelfDescribing(stored))).toBe(stored);
  });

  it('refuses stored values it would not have written', () => {
    expect(refusal(() => parseStoredForeignHash('$foreign$md5$abc'))).toMatch(/unknown stored foreign hash/);
    expect(refusal(() => parseStoredForeignHash('$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW'))).toMatch(/not a stored foreign hash/);
  });
});
