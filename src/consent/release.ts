// What of a user's answers an app receives. The one place the release rule lives, so that the
// ID token, userinfo and (later) event payloads all apply the same rule: an answer is released
// only when its purpose is one the client is registered for, and the purpose allows release for
// this user now (the consent ledger joins here through `purposeAllows`).
import type { Config } from '../config/schema.ts';
import type { AnswerValue } from '../screensets/engine.ts';
import type { DB } from '../storage/database.ts';
import { consentStates, purposeAllows, type ConsentState } from './ledger.ts';
import type { StandardClaim } from '../screensets/format.ts';

export interface ReleasableAnswer {
  questionId: string;
  value: AnswerValue;
  /** The purpose the answer was given under. */
  purpose: string;
}

export interface ReleasePolicy {
  /** The purposes the receiving client is registered for. */
  clientPurposes: readonly string[];
  /** Whether this user's data under a purpose may be released now (consent, legal basis). */
  purposeAllows: (purpose: string) => boolean;
  /** The standard claim a question also fills, if any. */
  claimOf: (questionId: string) => StandardClaim | undefined;
}

export interface ReleasedAnswers {
  /** The `preferences` claim: question id → answer. */
  preferences: Record<string, AnswerValue>;
  /** Standard claims filled from answers, such as birthdate. */
  standardClaims: Partial<Record<StandardClaim, AnswerValue>>;
}

export function releaseAnswers(answers: readonly ReleasableAnswer[], policy: ReleasePolicy): ReleasedAnswers {
  const allowed = new Set(policy.clientPurposes);
  const released: ReleasedAnswers = { preferences: {}, standardClaims: {} };
  for (const answer of answers) {
    if (!allowed.has(answer.purpose) || !policy.purposeAllows(answer.purpose)) continue;
    released.preferences[answer.questionId] = answer.value;
    const claim = policy.claimOf(answer.questionId);
    if (claim) released.standardClaims[claim] = answer.value;
  }
  return released;
}

export interface ReleaseDeps {
  db: DB;
  config: Pick<Config, 'purposes'>;
  currentAnswers(accountId: string): Promise<ReleasableAnswer[]>;
  claimOf(questionId: string): StandardClaim | undefined;
}

/**
 * The release rule bound to the database: what a client registered for `clientPurposes` may
 * receive of an account now, and the consents it was decided on. Tokens, userinfo and the
 * management API all ask this one function.
 */
export function createRelease(deps: ReleaseDeps) {
  return {
    async forClient(accountId: string, clientPurposes: readonly string[]): Promise<ReleasedAnswers & { consents: ReadonlyMap<string, ConsentState> }> {
      const [answers, consents] = await Promise.all([deps.currentAnswers(accountId), consentStates(deps.db, accountId)]);
      return {
        ...releaseAnswers(answers, {
          clientPurposes,
          purposeAllows: (purpose) => purposeAllows(deps.config.purposes[purpose], consents.get(purpose)),
          claimOf: deps.claimOf,
        }),
        consents,
      };
    },
  };
}

export type Release = ReturnType<typeof createRelease>;
