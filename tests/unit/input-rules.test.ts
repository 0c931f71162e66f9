import { describe, expect, it } from 'vitest';
import { emailProblem, isValidEmail, normalizeEmail } from '../../src/accounts/email.ts';
import { nameProblem } from '../../src/accounts/names.ts';
import { requestParamProblem } from '../../src/oidc/request-params.ts';

// What Parley accepts as an address, a name and an authorization parameter: the rules behind the
// input limits in the README, checked character by character.

const problemOf = (raw: string) => emailProblem(normalizeEmail(raw));

describe('an email address', () => {
  it.each([
    ['zero-width space', '\u200B'],
    ['soft hyphen', '\u00AD'],
    ['zero-width joiner', '\u200D'],
    ['zero-width non-joiner', '\u200C'],
    ['right-to-left override', '\u202E'],
    ['left-to-right mark', '\u200E'],
    ['right-to-left isolate', '\u2067'],
    ['Arabic letter mark', '\u061C'],
    ['word joiner', '\u2060'],
    ['byte order mark', '\uFEFF'],
    ['combining grapheme joiner', '\u034F'],
    ['Hangul filler', '\u3164'],
    ['variation selector', '\uFE0F'],
    ['tag character', '\u{E0041}'],
  ])('with a %s survives normalization and is refused as invisible', (_name, char) => {
    const address = `look${char}@example.com`;
    expect(normalizeEmail(address)).not.toBe('look@example.com');
    expect(problemOf(address)).toBe('email_invisible_characters');
    expect(problemOf(`look@exa${char}mple.com`)).toBe('email_invisible_characters');
    expect(isValidEmail(normalizeEmail(address))).toBe(false);
  });

  it('with a NUL byte or another control character is not an address', () => {
    for (const char of ['\u0000', '\u0001', '\u007F', '\u0085', '\u009B', '\uD800']) expect(problemOf(`a${char}b@example.com`)).toBe('invalid_email');
  });

  it('holds at most 254 octets, and 64 before the @, counted in UTF-8 as RFC 5321 counts them', () => {
    const domain = '@example.com';
    expect(problemOf(`${'a'.repeat(64)}${domain}`)).toBeUndefined();
    expect(problemOf(`${'a'.repeat(65)}${domain}`)).toBe('invalid_email');
    // 32 two-octet letters are 64 octets; 33 are 66, though only 33 UTF-16 units.
    expect(problemOf(`${'é'.repeat(32)}${domain}`)).toBeUndefined();
    expect(problemOf(`${'é'.repeat(33)}${domain}`)).toBe('invalid_email');
    const label = 'd'.repeat(63);
    const longest = `a@${label}.${label}.${label}.${'d'.repeat(57)}.io`;
    expect(Buffer.byteLength(longest)).toBe(254);
    expect(problemOf(longest)).toBeUndefined();
    expect(problemOf(`a${longest}`)).toBe('email_too_long');
    // Three octets each: 100 of them are 300 octets, beyond any address.
    expect(problemOf(`${'東'.repeat(100)}@example.jp`)).toBe('email_too_long');
    expect(problemOf(`${'東'.repeat(1500)}@example.jp`)).toBe('email_too_long');
    expect(problemOf(`${'東京'}@example.jp`)).toBeUndefined();
  });

  it('keeps accepting ordinary and internationalized addresses', () => {
    for (const address of ['ann@example.com', 'Ann.Lee+news@Example.COM', 'ﾊﾟﾘ@example.jp', 'مستخدم@مثال.مصر', 'δοκιμή@παράδειγμα.δοκιμή', 'user@xn--mller-kva.de']) {
      expect(problemOf(address), address).toBeUndefined();
    }
  });
});

describe('a name', () => {
  it('keeps the joiners that scripts and emoji need, and direction marks', () => {
    for (const name of [
      'Ann Lee', 'O’Brien', 'José Ñúñez', 'محمد علي', 'نیما‌رضایی' /* ZWNJ in Persian */, 'क्‍ष' /* ZWJ in Devanagari */,
      '👨‍👩‍👧 family' /* ZWJ sequence */, '❤️', 'Ali \u200Fعلي\u200F', '山田 太郎', 'a'.repeat(200), '👍'.repeat(200),
    ]) {
      expect(nameProblem(name), JSON.stringify(name)).toBeUndefined();
    }
  });

  it('refuses embeddings, overrides and isolates, which reorder the text around the name', () => {
    for (const char of ['\u202A', '\u202B', '\u202C', '\u202D', '\u202E', '\u2066', '\u2067', '\u2068', '\u2069']) {
      expect(nameProblem(`Ann${char}Lee`)).toBe('name_invalid_characters');
    }
  });

  it('refuses control characters, line breaks and half surrogate pairs', () => {
    for (const char of ['\u0000', '\u0007', '\n', '\r', '\t', '\u007F', '\u0085', '\u2028', '\u2029', '\uDC00']) {
      expect(nameProblem(`Ann${char}Lee`)).toBe('name_invalid_characters');
    }
  });

  it('holds at most 200 characters, counted as code points', () => {
    expect(nameProblem('a'.repeat(201))).toBe('name_too_long');
    expect(nameProblem('👍'.repeat(201))).toBe('name_too_long');
  });
});

describe('an authorization request parameter', () => {
  it('refuses control characters in any parameter, and says which', () => {
    expect(requestParamProblem({ state: 'a\u0000b', nonce: 'n' })).toBe('state must not contain control characters');
    expect(requestParamProblem({ nonce: 'n\u0001' })).toBe('nonce must not contain control characters');
    expect(requestParamProblem({ login_hint: 'ann\u0000@example.com' })).toBe('login_hint must not contain control characters');
    expect(requestParamProblem({ state: 'abc', nonce: undefined, login_hint: 'ann@example.com' })).toBeUndefined();
  });

  it('holds at most 2048 characters, and longer tokens where the protocol sends them', () => {
    expect(requestParamProblem({ state: 'a'.repeat(2048) })).toBeUndefined();
    expect(requestParamProblem({ state: 'a'.repeat(2049) })).toBe('state is too long: at most 2048 characters');
    expect(requestParamProblem({ id_token_hint: 'a'.repeat(8192) })).toBeUndefined();
    expect(requestParamProblem({ id_token_hint: 'a'.repeat(8193) })).toBe('id_token_hint is too long: at most 8192 characters');
  });

  it('lets a claims request be laid out on several lines, as JSON may be', () => {
    expect(requestParamProblem({ claims: '{\n  "userinfo": {\t"email": null }\r\n}' })).toBeUndefined();
    expect(requestParamProblem({ claims: '{"userinfo":{"em\u0000ail":null}}' })).toBe('claims must not contain control characters');
  });
});
