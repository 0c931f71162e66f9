import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NO_PASSWORD_HASH } from '../../src/accounts/password-verifier.ts';
import { accountChanges, applyChanges, type AccountChanges, type AccountSnapshot } from '../../src/import/changes.ts';
import type { AnswerValue, ImportRecord } from '../../src/import/record.ts';

// The import's promises about an existing account, stated as properties over generated records
// and accounts: a second run of the same record changes nothing; nothing the account has is
// removed or replaced by something older; Parley's own password hash is never replaced.

const NOW = new Date('2026-11-01T00:00:00Z');
const RUNS = { numRuns: 500 };
const PARLEY_HASH = '$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g';
const FOREIGN_A = '$foreign$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW';
const FOREIGN_B = '$foreign$2a$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK';

// Few distinct questions, purposes and times, so that entries collide and the rules interact.
const time = fc.integer({ min: 0, max: 6 }).map((day) => new Date(Date.UTC(2024, 0, 1 + day)));
const question = fc.constantFrom('q1', 'q2', 'q3');
const value: fc.Arbitrary<AnswerValue> = fc.oneof(fc.constantFrom('a', 'b'), fc.constant<string[]>(['x', 'y']), fc.boolean(), fc.constantFrom(1, 2));
const purpose = fc.constantFrom('personalization', 'offers');
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });

const importedAnswer = fc.record({ questionId: question, value, answeredAt: time, purpose });
const consent = fc.record({ purpose, version: fc.constantFrom(1, 2), action: fc.constantFrom('granted' as const, 'withdrawn' as const), at: time });
const communication = fc.record({ channel: fc.constantFrom('email', 'sms'), topic: fc.constantFrom('news', 'offers'), enabled: fc.boolean(), at: time });
const identity = fc.record({ provider: fc.constantFrom('google', 'apple'), subject: fc.constantFrom('1', '2') });

const record: fc.Arbitrary<ImportRecord> = fc.record({
  externalId: maybe(fc.constant('legacy-1')),
  email: fc.constantFrom('ann@example.com', 'ann.lee@example.com'),
  emailVerified: fc.boolean(),
  name: maybe(fc.constantFrom('Ann', 'Ann Lee')),
  locale: maybe(fc.constantFrom('de', 'en')),
  createdAt: maybe(time),
  passwordHash: maybe(fc.constantFrom(FOREIGN_A, FOREIGN_B)),
  identities: fc.array(identity, { maxLength: 3 }),
  answers: fc.array(importedAnswer, { maxLength: 6 }),
  consents: fc.array(consent, { maxLength: 4 }),
  communication: fc.array(communication, { maxLength: 4 }),
});

const snapshot: fc.Arbitrary<AccountSnapshot> = fc.record({
  externalId: fc.constantFrom(null, 'legacy-1'),
  email: fc.constantFrom('ann@example.com', 'ann.lee@example.com'),
  emailVerified: fc.boolean(),
  name: fc.constantFrom(null, 'Ann'),
  locale: fc.constantFrom(null, 'en'),
  createdAt: time,
  passwordHash: fc.constantFrom(null, NO_PASSWORD_HASH, PARLEY_HASH, FOREIGN_A, FOREIGN_B),
  identities: fc.array(identity, { maxLength: 2 }).map((ids) => [...new Map(ids.map((i) => [`${i.provider}|${i.subject}`, i])).values()]),
  answerHistory: fc.array(fc.record({ questionId: question, value: fc.option(value, { nil: null }), purpose, at: time }), { maxLength: 5 }),
  consentLedger: fc.array(consent, { maxLength: 3 }),
  communicationLedger: fc.array(communication, { maxLength: 3 }),
}).map((account) => {
  // The current answers are what the history says last, as Parley keeps them.
  const current = new Map<string, AccountSnapshot['answers'][number] | null>();
  for (const entry of [...account.answerHistory].sort((a, b) => a.at.getTime() - b.at.getTime())) {
    current.set(entry.questionId, entry.value === null ? null : { questionId: entry.questionId, value: entry.value, purpose: entry.purpose, answeredAt: entry.at });
  }
  return { ...account, answers: [...current.values()].filter((a) => a !== null) };
});

function changesOf(r: ImportRecord, existing: AccountSnapshot | undefined): AccountChanges {
  const result = accountChanges(r, existing, NOW);
  if (!result.ok) throw new Error(result.error);
  return result.changes;
}

/** Records whose external id cannot clash with the account's (the writer matched them). */
const matching = fc.tuple(record, snapshot).filter(([r, s]) => !(r.externalId && s.externalId && r.externalId !== s.externalId));

const latest = (times: Date[]) => Math.max(-Infinity, ...times.map((t) => t.getTime()));

describe('what an import changes on an account', () => {
  it('changes nothing the second time: importing the same record again is "unchanged"', () => {
    fc.assert(fc.property(record, fc.option(snapshot, { nil: undefined }), (r, s) => {
      fc.pre(!(s && r.externalId && s.externalId && r.externalId !== s.externalId));
      const after = applyChanges(s, changesOf(r, s));
      const again = changesOf(r, after);
      expect(again.outcome).toBe('unchanged');
      expect(applyChanges(after, again)).toEqual(after);
    }), RUNS);
  });

  it('removes nothing: history, ledgers and identities only grow', () => {
    fc.assert(fc.property(matching, ([r, s]) => {
      const after = applyChanges(s, changesOf(r, s));
      expect(after.answerHistory.slice(0, s.answerHistory.length)).toEqual(s.answerHistory);
      expect(after.consentLedger.slice(0, s.consentLedger.length)).toEqual(s.consentLedger);
      expect(after.communicationLedger.slice(0, s.communicationLedger.length)).toEqual(s.communicationLedger);
      expect(after.identities).toEqual(expect.arrayContaining([...s.identities]));
      expect(after.emailVerified || !s.emailVerified).toBe(true);
    }), RUNS);
  });

  it('moves a current answer only forward in time, and never past a later deletion', () => {
    fc.assert(fc.property(matching, ([r, s]) => {
      const changes = changesOf(r, s);
      for (const answer of changes.answers.current) {
        const before = s.answerHistory.filter((e) => e.questionId === answer.questionId).map((e) => e.at);
        expect(answer.answeredAt.getTime()).toBeGreaterThan(latest(before));
      }
    }), RUNS);
  });

  it('never replaces Parley\'s own password hash, and replaces an imported one only with a different import', () => {
    fc.assert(fc.property(matching, ([r, s]) => {
      const changes = changesOf(r, s);
      if (s.passwordHash === PARLEY_HASH) expect(changes.passwordHash).toBeUndefined();
      if (changes.passwordHash !== undefined) expect(changes.passwordHash).not.toBe(s.passwordHash);
    }), RUNS);
  });
});

describe('what an import changes: cases', () => {
  const base: ImportRecord = { email: 'ann@example.com', emailVerified: false, identities: [], answers: [], consents: [], communication: [] };
  const account: AccountSnapshot = {
    externalId: 'legacy-1', email: 'ann@example.com', emailVerified: true, name: 'Ann', locale: 'en', createdAt: new Date('2020-01-01T00:00:00Z'),
    passwordHash: FOREIGN_A, identities: [], answers: [], answerHistory: [], consentLedger: [], communicationLedger: [],
  };

  it('creates a new account with every field, at the record\'s creation time or else now', () => {
    const created = changesOf({ ...base, externalId: 'legacy-9', name: 'Bo', passwordHash: FOREIGN_B }, undefined);
    expect(created).toMatchObject({
      outcome: 'created', createdAt: NOW, passwordHash: FOREIGN_B,
      profile: { externalId: 'legacy-9', email: 'ann@example.com', emailVerified: false, name: 'Bo' },
    });
    expect(changesOf({ ...base, createdAt: new Date('2019-01-01T00:00:00Z') }, undefined).createdAt).toEqual(new Date('2019-01-01T00:00:00Z'));
  });

  it('leaves fields the record does not have alone, and never unverifies an email', () => {
    expect(changesOf({ ...base, externalId: 'legacy-1' }, account)).toMatchObject({ outcome: 'unchanged', profile: {} });
  });

  it('refuses to merge an account imported under another external id', () => {
    expect(accountChanges({ ...base, externalId: 'other-7' }, account, NOW)).toEqual({
      ok: false, error: 'email: an account with this email was imported under another external_id',
    });
  });

  it('adds an older answer to the history without making it current, and a newer one as current', () => {
    const withAnswer: AccountSnapshot = {
      ...account,
      answers: [{ questionId: 'q1', value: 'b', purpose: 'personalization', answeredAt: new Date('2024-06-01T00:00:00Z') }],
      answerHistory: [{ questionId: 'q1', value: 'b', purpose: 'personalization', at: new Date('2024-06-01T00:00:00Z') }],
    };
    const older = { questionId: 'q1', value: 'a', purpose: 'personalization', answeredAt: new Date('2023-01-01T00:00:00Z') };
    const newer = { ...older, value: 'c', answeredAt: new Date('2025-01-01T00:00:00Z') };
    const changes = changesOf({ ...base, answers: [older, newer] }, withAnswer);
    expect(changes.answers.history.map((e) => e.value)).toEqual(['a', 'c']);
    expect(changes.answers.current).toEqual([newer]);
    expect(changesOf({ ...base, answers: [older] }, withAnswer).answers.current).toEqual([]);
  });
});
