// What of a user's answers an app receives. The one place the release rule lives, so that the
// ID token, userinfo and (later) event payloads all apply the same rule: an answer is released
// only when its purpose is one the client is registered for, and the purpose allows release for
// this user now (the consent ledger joins here through `purposeAllows`).
import type { AnswerValue } from '../screensets/engine.ts';
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
