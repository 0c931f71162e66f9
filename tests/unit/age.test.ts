import { describe, expect, it } from 'vitest';
import { ageOn, checkBirthdate } from '../../src/accounts/age.ts';

// The age gate's arithmetic: whole years on UTC calendar dates, the birthday itself counting.

const today = new Date('2026-06-15T23:30:00Z');

describe('the age gate', () => {
  it('counts whole years, the birthday itself included', () => {
    expect(ageOn({ year: 2010, month: 6, day: 15 }, today)).toBe(16);
    expect(ageOn({ year: 2010, month: 6, day: 16 }, today)).toBe(15);
    expect(ageOn({ year: 2010, month: 7, day: 1 }, today)).toBe(15);
    expect(ageOn({ year: 2010, month: 5, day: 31 }, today)).toBe(16);
    // Born on 29 February: 16 on 1 March of a year without one.
    expect(ageOn({ year: 2008, month: 2, day: 29 }, new Date('2024-02-28T12:00:00Z'))).toBe(15);
    expect(ageOn({ year: 2008, month: 2, day: 29 }, new Date('2024-02-29T12:00:00Z'))).toBe(16);
    expect(ageOn({ year: 2009, month: 2, day: 28 }, new Date('2025-03-01T00:00:00Z'))).toBe(16);
  });

  it('lets through the minimum age on the day, and refuses the day before', () => {
    expect(checkBirthdate('2010-06-15', 16, today)).toEqual({ ok: true, value: '2010-06-15' });
    expect(checkBirthdate('2010-06-16', 16, today)).toEqual({ ok: false, reason: 'under_minimum_age' });
    expect(checkBirthdate(' 1970-01-01 ', 16, today)).toEqual({ ok: true, value: '1970-01-01' });
  });

  it('refuses what is no real date in the past as invalid, never as too young', () => {
    for (const raw of ['', '2010-02-30', '2010-13-01', '10-06-2010', '2010/06/15', '1899-12-31', '2026-06-16', '3000-01-01', '2010-6-5', 'x']) {
      expect(checkBirthdate(raw, 16, today), raw).toEqual({ ok: false, reason: 'birthdate_invalid' });
    }
  });
});
