import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createPasswordVerifier } from '../../src/accounts/password-verifier.ts';
import { createPasswordHasher } from '../../src/accounts/passwords.ts';
import { readImport, type ImportFormat, type ReadItem } from '../../src/import/read.ts';
import type { ImportRecord } from '../../src/import/record.ts';

// The sample files in tests/fixtures/import were written for these tests. Their password hashes
// are documented vectors (see tests/unit/foreign-hashes.test.ts for the sources), so that what a
// reader makes of them can be checked by verifying the password.

const NOW = new Date('2026-11-01T00:00:00Z');
const verifier = createPasswordVerifier(createPasswordHasher({ memory_kib: 8192, iterations: 1, parallelism: 1 }), {});

async function read(format: ImportFormat, input: Readable, firebaseScrypt = false): Promise<ReadItem[]> {
  const items: ReadItem[] = [];
  for await (const item of readImport(input, format, { now: NOW, firebaseScrypt })) items.push(item);
  return items;
}

const fixture = (name: string) => createReadStream(new URL(`../fixtures/import/${name}`, import.meta.url));
const text = (content: string) => Readable.from([content]);

function records(items: ReadItem[]): Map<string, ImportRecord> {
  return new Map(items.flatMap((item) => (item.ok ? [[item.at.where, item.record] as const] : [])));
}
function failures(items: ReadItem[]): Record<string, string> {
  return Object.fromEntries(items.flatMap((item) => (item.ok ? [] : [[item.at.where, item.error]])));
}

async function passwordOk(record: ImportRecord | undefined, password: string): Promise<boolean> {
  return (await verifier.verifyAny(record?.passwordHash, password)).ok;
}

describe('the JSON Lines reader (Parley\'s line format)', () => {
  it('reads every good line and reports every bad one with its line number and key path, going on after each', async () => {
    const items = await read('parley', fixture('parley-users.jsonl'));
    const good = records(items);
    expect([...good.keys()]).toEqual(['line 1', 'line 2', 'line 4', 'line 10']);
    expect(failures(items)).toEqual({
      'line 5': expect.stringMatching(/^not valid JSON: /),
      'line 6': 'pasword: unknown key',
      'line 7': expect.stringMatching(/^password: unrecognized password hash \(starts with "\$1\$"\)/),
      'line 8': 'answers[0].answered_at: expected an ISO 8601 date-time with a time zone, such as 2024-05-01T09:30:00Z',
      'line 9': 'email: not a valid email address',
      'line 11': 'password.format: expected one of "bcrypt", "argon2", "pbkdf2", "django", "keycloak", "firebase-scrypt", "sha256", "sha512", "parley"',
    });
    // Line 3 is blank: skipped, neither a record nor a failure.
    expect(items.map((i) => i.at.line)).not.toContain(3);
  });

  it('normalizes what it keeps: the email as Parley stores it, the locale as a language tag, times as instants', async () => {
    const ann = records(await read('parley', fixture('parley-users.jsonl'))).get('line 1')!;
    expect(ann).toMatchObject({
      externalId: 'legacy-1001', email: 'ann.lee@example.com', emailVerified: true, name: 'Ann Lee', locale: 'de-DE',
      createdAt: new Date('2019-04-02T10:00:00Z'),
      identities: [{ provider: 'google', subject: '108234' }],
      consents: [{ purpose: 'personalization', version: 1, action: 'granted', at: new Date('2021-01-05T08:00:00Z') }],
      communication: [{ channel: 'email', topic: 'news', enabled: true, at: new Date('2021-01-05T08:00:00Z') }],
    });
    expect(ann.answers.map((a) => [a.value, a.answeredAt.toISOString()])).toEqual([['filter', '2021-01-05T08:00:00.000Z'], ['espresso', '2023-06-01T06:00:00.000Z']]);
  });

  it('turns each password form into a stored hash that verifies the right password', async () => {
    const good = records(await read('parley', fixture('parley-users.jsonl')));
    expect(good.get('line 1')!.passwordHash).toBe('$foreign$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a');
    expect(await passwordOk(good.get('line 1'), 'rasmuslerdorf')).toBe(true);
    expect(await passwordOk(good.get('line 2'), 'lètmein')).toBe(true);
    expect(await passwordOk(good.get('line 4'), 'bc')).toBe(true);
    expect(await passwordOk(good.get('line 10'), 'passwd')).toBe(true);
    expect(await passwordOk(good.get('line 10'), 'passwD')).toBe(false);
  });

  it('reads CRLF line endings and a byte order mark, and says what is wrong with a line that is not an object', async () => {
    const items = await read('parley', text('\uFEFF{"email":"a@example.com"}\r\n[1,2]\r\n{"email":"b@example.com","answers":[{}]}\r\n'));
    expect(records(items).get('line 1')).toMatchObject({ email: 'a@example.com', emailVerified: false, identities: [], answers: [] });
    expect(failures(items)).toEqual({
      'line 2': 'expected a JSON object (one account)',
      'line 3': 'answers[0].question_id: is required (string); answers[0].value: expected a string, a number, true/false or a list of strings; '
        + 'answers[0].answered_at: is required (string); answers[0].purpose: is required (string)',
    });
  });

  it('refuses what has not happened yet and what does not fit in one record', async () => {
    const answers = Array.from({ length: 1001 }, () => ({ question_id: 'q', value: 1, answered_at: '2020-01-01T00:00:00Z', purpose: 'p' }));
    const lines = [
      JSON.stringify({ email: 'a@example.com', created_at: '2027-01-01T00:00:00Z' }),
      JSON.stringify({ email: 'b@example.com', answers }),
    ];
    expect(failures(await read('parley', text(lines.join('\n'))))).toEqual({
      'line 1': 'created_at: is in the future',
      'line 2': 'answers: at most 1000 entries',
    });
  });

  it('refuses Firebase hashes unless the project\'s parameters are configured', async () => {
    const line = JSON.stringify({ email: 'a@example.com', password: { format: 'firebase-scrypt', hash: 'lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ==', salt: '42xEC+ixf3L2lw==' } });
    expect(failures(await read('parley', text(line)))).toEqual({ 'line 1': expect.stringMatching(/^password: Firebase hashes need .* import\.firebase_scrypt/) });
    const [item] = await read('parley', text(line), true);
    expect(item).toMatchObject({ ok: true, record: { passwordHash: '$foreign$firebase-scrypt$42xEC+ixf3L2lw$lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ' } });
  });

  it('keeps a Parley hash from another Parley as Parley\'s own, and refuses anything else under that name', async () => {
    const parley = '$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4';
    const items = await read('parley', text([
      JSON.stringify({ email: 'a@example.com', password: { format: 'parley', hash: parley } }),
      JSON.stringify({ email: 'b@example.com', password: { format: 'parley', hash: '$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a' } }),
    ].join('\n')));
    expect(records(items).get('line 1')!.passwordHash).toBe(parley);
    expect(failures(items)).toEqual({ 'line 2': expect.stringMatching(/^password: format parley is an argon2id hash/) });
  });
});

describe('the Keycloak reader', () => {
  it('maps a realm export\'s users to line records, with their credentials, identities, locale and creation time', async () => {
    const items = await read('keycloak', fixture('keycloak-realm.json'));
    const good = records(items);
    expect([...good.keys()]).toEqual(['users[0]', 'users[1]', 'users[2]']);
    expect(good.get('users[0]')).toMatchObject({
      externalId: '5b0f6c1e-0d4a-4a55-9f39-1c7f0e6d2a01', email: 'ann@example.com', emailVerified: true, name: 'Ann Lee', locale: 'de',
      createdAt: new Date(1600000000000), identities: [{ provider: 'google', subject: '108234' }],
    });
    expect(await passwordOk(good.get('users[0]'), 'passwd')).toBe(true);     // pbkdf2-sha256
    expect(await passwordOk(good.get('users[1]'), 'password')).toBe(true);   // argon2, after an OTP credential
    expect(await passwordOk(good.get('users[2]'), 'password')).toBe(true);   // the pre-Keycloak 10 credential fields
    expect(good.get('users[2]')!.createdAt).toBeUndefined();
  });

  it('refuses plain-text passwords, disabled users, service accounts, users without email and unknown hashes, naming Keycloak\'s keys', async () => {
    expect(failures(await read('keycloak', fixture('keycloak-realm.json')))).toEqual({
      'users[3]': expect.stringMatching(/^credentials\[0\]: a plain-text password is not imported/),
      'users[4]': expect.stringMatching(/^enabled: false: the user is disabled in Keycloak/),
      'users[5]': expect.stringMatching(/service account, not a person/),
      'users[6]': expect.stringMatching(/^email: the user has no email address/),
      'users[7]': expect.stringMatching(/^credentials\[0\]: Keycloak hash algorithm "sha1-legacy" is not supported/),
      'users[8]': 'federatedIdentities[0].subject: must not be empty',
    });
  });

  it('reads the users-only files of a multi-file export', async () => {
    const good = records(await read('keycloak', fixture('keycloak-users-0.json')));
    expect(good.get('users[0]')).toMatchObject({ email: 'ivy@example.com', createdAt: new Date(1650000000000) });
  });

  it('reports a file that breaks off after the last good user, and a realm without users', async () => {
    const items = await read('keycloak', fixture('keycloak-truncated.json'));
    expect(records(items).get('users[0]')).toMatchObject({ email: 'jo@example.com' });
    expect(failures(items)).toEqual({ file: expect.stringMatching(/^not valid JSON after users\[0\], reading stopped: /) });
    expect(failures(await read('keycloak', text('{"realm":"shop","clients":[]}')))).toEqual({ file: expect.stringMatching(/^no users\[\] in the file/) });
  });
});

describe('the Auth0 readers', () => {
  it('map a bulk import file: password_hash and custom_password_hash (bcrypt, sha256/512, pbkdf2, argon2)', async () => {
    const items = await read('auth0', fixture('auth0-import.json'));
    const good = records(items);
    expect([...good.keys()]).toEqual(['[0]', '[1]', '[2]', '[3]', '[7]']);
    expect(good.get('[0]')).toMatchObject({ externalId: 'auth0|5f1c9e2a', email: 'ann@example.com', emailVerified: true, name: 'Ann Lee' });
    expect(await passwordOk(good.get('[0]'), 'U*U')).toBe(true);
    expect(await passwordOk(good.get('[1]'), 'bc')).toBe(true);
    expect(await passwordOk(good.get('[2]'), 'password')).toBe(true);
    expect(await passwordOk(good.get('[3]'), 'password')).toBe(true);
    expect(failures(items)).toEqual({
      '[4]': expect.stringMatching(/^custom_password_hash\.algorithm: "md5" is not supported \(bcrypt, argon2, pbkdf2, sha256, sha512\)/),
      '[5]': expect.stringMatching(/^blocked: the user is blocked in Auth0/),
      '[6]': 'password_hash and custom_password_hash: give one or the other',
    });
  });

  it('tells hex from base64 by its length when hash.encoding is missing, and needs the salt\'s position', async () => {
    const hal = records(await read('auth0', fixture('auth0-import.json'))).get('[7]');
    expect(await passwordOk(hal, 'a')).toBe(true);   // SHA-512 of "a" + salt "bc": FIPS 180-2's "abc"
    const unplaced = JSON.stringify([{
      email: 'a@example.com',
      custom_password_hash: { algorithm: 'sha512', hash: { value: 'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f' }, salt: { value: 'bc' } },
    }]);
    expect(failures(await read('auth0', text(unplaced)))).toEqual({ '[0]': 'custom_password_hash: salt_position is required with a salt: prefix or suffix' });
  });

  it('map an export\'s lines: users of other connections bring their identity, the hash export its bcrypt hash', async () => {
    const items = await read('auth0-export', fixture('auth0-export.ndjson'));
    const good = records(items);
    expect(good.get('line 1')).toMatchObject({ externalId: 'auth0|5f1c9e2a', name: 'Ann Lee', identities: [], createdAt: new Date('2020-09-13T12:26:40Z') });
    expect(good.get('line 2')).toMatchObject({ externalId: 'google-oauth2|108234', name: 'Bo Berg', locale: 'sv', identities: [{ provider: 'google-oauth2', subject: '108234' }] });
    expect(good.get('line 3')).toMatchObject({ identities: [{ provider: 'acme', subject: 'cy@acme.example' }] });
    expect(good.get('line 4')).toMatchObject({ externalId: 'auth0|60425dc43519d90068f82973', email: 'dee@example.com', emailVerified: false });
    expect(await passwordOk(good.get('line 4'), 'U*U')).toBe(true);
    expect(failures(items)).toEqual({
      'line 5': expect.stringMatching(/^email: the user has no email address/),
      'line 6': expect.stringMatching(/^blocked: /),
    });
  });
});
