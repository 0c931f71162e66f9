// The age gate of registration (config registration.minimum_age; e.g. 16 for GDPR Art. 8, 13 for
// COPPA). Registration asks for the date of birth: someone younger than the minimum is told so and
// nothing about them is stored; otherwise the date is kept as an answer, under the configured
// purpose of the legal_obligation basis, written in the transaction that creates the account. As
// an answer it fills the birthdate claim under the release rule of answers (src/consent/release.ts).
import type { Transaction } from 'kysely';
import type { Config } from '../config/schema.ts';
import { consentSnapshot } from '../consent/ledger.ts';
import { recordAnswers } from '../answers/service.ts';
import { DATE_OF_BIRTH_QUESTION as DATE_OF_BIRTH, type Question } from '../screensets/format.ts';
import type { Database } from '../storage/schema.ts';

/** The answer the date of birth is kept as: never a screen-set's question id (the loader refuses it). */
export const DATE_OF_BIRTH_QUESTION = DATE_OF_BIRTH.id;

/** The pseudo screen-set answers given on the registration form are recorded under (as `_reconsent` for re-consent screens). */
export const REGISTRATION_SET = '_registration';

/** The earliest year a date of birth may have: anything before is a typo. */
const EARLIEST_YEAR = 1900;

export type BirthdateCheck =
  | { ok: true; value: string }
  | { ok: false; reason: 'birthdate_invalid' | 'under_minimum_age' };

/** Whole years from a date of birth to `today` (both as UTC calendar dates). */
export function ageOn(birth: { year: number; month: number; day: number }, today: Date): number {
  const years = today.getUTCFullYear() - birth.year;
  const hadBirthday = today.getUTCMonth() + 1 > birth.month || (today.getUTCMonth() + 1 === birth.month && today.getUTCDate() >= birth.day);
  return hadBirthday ? years : years - 1;
}

/**
 * A date of birth as typed (YYYY-MM-DD, as a date input sends it): a real date, not in the
 * future nor before 1900, and at least `minimumAge` years ago.
 */
export function checkBirthdate(raw: string, minimumAge: number, today: Date): BirthdateCheck {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(raw.trim());
  if (!match) return { ok: false, reason: 'birthdate_invalid' };
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const date = new Date(Date.UTC(year, month - 1, day));
  const real = date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
  if (!real || year < EARLIEST_YEAR || ageOn({ year, month, day }, today) < 0) return { ok: false, reason: 'birthdate_invalid' };
  if (ageOn({ year, month, day }, today) < minimumAge) return { ok: false, reason: 'under_minimum_age' };
  return { ok: true, value: `${match[1]}-${match[2]}-${match[3]}` };
}

export interface DateOfBirth {
  accountId: string;
  value: string;
  /** The language of the registration form. */
  locale: string;
  /** The app the person registered with. */
  clientId: string;
  /** The form's label for the date, in that language (the history keeps the question as asked). */
  label: string;
}

/**
 * Keeps the date of birth as an answer under registration.birthdate_purpose, with its history row
 * and answer.recorded event, in the caller's transaction (the one creating the account), through
 * the one writer of answers.
 */
export async function recordDateOfBirth(trx: Transaction<Database>, config: Config, input: DateOfBirth, now: Date): Promise<void> {
  const purposeId = config.registration.birthdate_purpose;
  const question: Question = {
    id: DATE_OF_BIRTH_QUESTION, type: 'date', claim: DATE_OF_BIRTH.claim, purpose: purposeId, required: true,
    label: { [input.locale]: input.label },
  };
  await recordAnswers(trx, config, {
    accountId: input.accountId, clientId: input.clientId, locale: input.locale, source: 'screen',
    set: { id: REGISTRATION_SET, version: 1 },
    answers: [{ question, value: input.value, consent: consentSnapshot(purposeId, config.purposes[purposeId], undefined) }],
  }, now);
}
