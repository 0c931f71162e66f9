// Lazy migration from a system that cannot export its password hashes: for an account without a
// usable hash, Parley asks the old system once whether the typed password is right.
//
//   POST legacy_verify.url
//   content-type: application/json
//   webhook-id, webhook-timestamp, webhook-signature      (Standard Webhooks: HMAC-SHA256 of
//                                                          "<id>.<timestamp>.<body>" with the secret)
//   {"email": "ann@example.com", "password": "…"}
//
//   200 {"verified": true}    the password is right
//   200 {"verified": false}   it is not
//
// Anything else — no answer within the timeout, a refused connection, a redirect, any other
// status, a body that is not exactly that — is "unavailable", which the sign-in counts as a failed
// attempt (throttled like any other), never as an error page. There are no retries: the user is
// waiting, and trying again is theirs to do. The signature lets the old system refuse requests
// that do not come from Parley (with any Standard Webhooks library), the timestamp replays.
//
// The password is in the request body and nowhere else: never in a log line, an error message or
// the returned value.
import { randomUUID } from 'node:crypto';
import type { LegacyVerifyConfig } from '../config/schema.ts';
import { loggableUrl, standardWebhookSigner } from '../events/endpoints.ts';
import { describeFetchError, readBody, type Fetch } from '../events/send.ts';
import { standardWebhookRequest } from '../events/signing.ts';
import type { Logger } from '../logger.ts';

export type LegacyVerdict =
  | { outcome: 'verified' }
  | { outcome: 'rejected' }
  /** Why, for logs: never the email or the password. */
  | { outcome: 'unavailable'; reason: string };

export interface LegacyVerifier {
  verify(email: string, password: string): Promise<LegacyVerdict>;
}

export interface LegacyVerifyDeps {
  fetch?: Fetch;
  clock?: () => Date;
  logger?: Logger;
}

/** An answer is a few bytes; a longer one is cut here and then is not the answer. */
const ANSWER_BYTES = 4096;

/** undefined when legacy_verify.url is empty (the feature is off). */
export function createLegacyVerifier(settings: LegacyVerifyConfig, deps: LegacyVerifyDeps = {}): LegacyVerifier | undefined {
  if (settings.url === '') return undefined;
  const fetch = deps.fetch ?? globalThis.fetch;
  const clock = deps.clock ?? (() => new Date());
  const timeoutMs = settings.timeout * 1000;
  const endpoint = { url: settings.url, sign: standardWebhookSigner([settings.secret]) };
  const where = loggableUrl(settings.url);

  const unavailable = (reason: string): LegacyVerdict => {
    deps.logger?.warn({ url: where, reason }, 'legacy_verify: the old system gave no usable answer; the sign-in fails');
    return { outcome: 'unavailable', reason };
  };

  return {
    async verify(email, password) {
      const request = standardWebhookRequest(endpoint, `msg_${randomUUID()}`, clock(), JSON.stringify({ email, password }));
      let response: Response;
      try {
        response = await fetch(request.url, {
          method: 'POST',
          headers: { ...request.headers, accept: 'application/json' },
          body: request.body,
          // Following a redirect would send the password to a place nobody configured.
          redirect: 'manual',
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (error) {
        return unavailable(describeFetchError(error, timeoutMs));
      }
      // The timeout covers reading the body too; a body cut short is not valid JSON.
      const body = await readBody(response, ANSWER_BYTES);
      if (response.status !== 200) return unavailable(`HTTP ${response.status}`);
      let answer: unknown;
      try {
        answer = JSON.parse(body);
      } catch {
        return unavailable('the answer is not JSON');
      }
      const verified = typeof answer === 'object' && answer !== null ? (answer as { verified?: unknown }).verified : undefined;
      if (typeof verified !== 'boolean') return unavailable('the answer is not {"verified": true | false}');
      return verified ? { outcome: 'verified' } : { outcome: 'rejected' };
    },
  };
}
