// The payload of every event type, as written to the outbox (src/**/recordEvent calls) and as a
// receiver gets it. The source of the JSON Schemas committed in events/schemas/<type>.json
// (tests/unit/webhook-schemas.test.ts keeps them in step: run it with -u after a change here).
//
// Versioning: fields are added without a version bump, so receivers must ignore fields they do
// not know (the published schemas allow them); `version` changes when a field is removed or
// changes meaning. Tests hold the writers to these schemas strictly, so a new field cannot be
// written without being documented here.
import { z } from 'zod';
import { LEGAL_BASES } from '../config/schema.ts';
import type { ConsentSnapshot } from '../consent/ledger.ts';
import { EVENTS_MODES } from '../import/run.ts';
import { IMPORT_FORMATS } from '../import/read.ts';
import { SECURITY_CHANGES } from '../accounts/security-notices.ts';
import { EVENT_TYPES, type EventType } from './outbox.ts';
import { eventUri } from './signing.ts';

const version = z.literal(1).describe('The payload version.');
const accountId = z.string().min(1).describe('The account the event is about: the OIDC `sub` Parley issues for it.');
const questionId = z.string().min(1).describe('The question (the profile key), unique across screen-sets.');
const purpose = z.string().min(1).describe('The purpose the data was given under (the `purposes:` of the configuration).');
const answerValue = z.union([z.string(), z.number(), z.boolean(), z.array(z.string())])
  .describe('The answer: a string (single choice, text, date as YYYY-MM-DD), a number, a boolean, or a list of strings (multi choice).');
const changeSource = z.enum(['screen', 'preference_center', 'api', 'import'])
  .describe('Where the change was made: the question screen after sign-in, the preference center, the management API, or an import from another system (parley import users --events all).');
const locale = z.string().min(2).describe('The language the user saw (BCP 47).');
const clientId = z.string().min(1).describe('The app the user was signing in to.');
const screensetId = z.string().min(1).describe('The screen-set the question was asked from.');
const screensetVersion = z.number().int().describe('The version of that screen-set.');

const CONSENT_STATES = ['granted', 'withdrawn', 'none', 'outdated', 'not_required'] as const satisfies readonly ConsentSnapshot['state'][];
// Fails to compile when the ledger gains a state that is not documented here.
const everyStateListed: Exclude<ConsentSnapshot['state'], (typeof CONSENT_STATES)[number]> extends never ? true : never = true;
void everyStateListed;

/**
 * The consent state an answer was given under, written with the event (consentSnapshot in
 * src/consent/ledger.ts). Whatever it says, an answer is sent only while the user's consent
 * *at sending time* allows it (granted, or a legal basis other than consent); otherwise the
 * delivery is withheld, so a withdrawal stops answers still waiting to go out.
 */
const consent = z.strictObject({
  purpose,
  legal_basis: z.union([z.enum(LEGAL_BASES), z.literal('unknown')]).describe('The purpose\'s legal basis; unknown if the purpose was not configured.'),
  version: z.number().int().min(0).describe('The version of the purpose text then in force (0 if the purpose was not configured).'),
  state: z.enum(CONSENT_STATES).describe(
    'granted: consent given to the current version of the purpose text; withdrawn; none: never asked or answered; '
    + 'outdated: given to an earlier version of the text; not_required: the legal basis is not consent.',
  ),
}).describe('The consent state the answer was given under, when it was given. Parley sends an answer only while the user\'s consent at sending time still allows it.');

const consentPayload = (action: string) => z.strictObject({
  version,
  account_id: accountId,
  purpose,
  purpose_version: z.number().int().positive().describe('The version of the purpose text the user answered.'),
  legal_basis: z.enum(LEGAL_BASES),
  client_id: clientId.nullable().describe('The app the user was signing in to; null in the preference center.'),
  source: changeSource,
  locale,
  text_hash: z.string().regex(/^[0-9a-f]{64}$/).describe('SHA-256 (hex) of the purpose title and description as shown: proof of what the user agreed to.'),
}).describe(`Consent to a purpose was ${action}.`);

/** What the writers store, and receivers get as `data`. */
export const storedPayloadSchemas = {
  'account.created': z.strictObject({
    version, account_id: accountId,
    email_verified: z.boolean().describe('Whether the email address was verified at registration.'),
  }).describe('An account was registered.'),
  'account.deleted': z.strictObject({ version, account_id: accountId })
    .describe('An account was deleted with its personal data. Receivers should erase what they hold about it.'),
  'account.imported': z.strictObject({
    version,
    run_id: z.uuid().describe('The import run.'),
    format: z.enum(IMPORT_FORMATS).describe('The file format read (parley: the line format, which the API takes too).'),
    source: z.enum(['cli', 'api']).describe('`parley import users`, or POST /api/v1/accounts/import (one event per batch).'),
    events: z.enum(EVENTS_MODES).describe('none: no per-account events were written for this run; all: every account\'s events were too.'),
    started_at: z.iso.datetime().describe('When the run started.'),
    finished_at: z.iso.datetime().describe('When it ended.'),
    created: z.number().int().min(0).describe('Accounts created.'),
    updated: z.number().int().min(0).describe('Existing accounts that changed.'),
    unchanged: z.number().int().min(0).describe('Records that changed nothing (already imported).'),
    failed: z.number().int().min(0).describe('Records refused, each reported to whoever ran the import with its line and reason.'),
  }).describe('Accounts were imported from another system: one event per run (not per account), with its counts.'),
  'answer.recorded': z.strictObject({
    version, account_id: accountId, question_id: questionId, screenset_id: screensetId, screenset_version: screensetVersion,
    purpose, value: answerValue, client_id: clientId, locale, source: changeSource, consent,
  }).describe('A question was answered for the first time.'),
  'answer.changed': z.strictObject({
    version, account_id: accountId, question_id: questionId,
    screenset_id: screensetId.optional().describe('Present when changed on the question screen.'),
    screenset_version: screensetVersion.optional().describe('Present when changed on the question screen.'),
    purpose, value: answerValue, previous_value: answerValue.describe('The answer before the change.'),
    client_id: clientId.optional().describe('Present when changed on the question screen.'),
    locale, source: changeSource, consent,
  }).describe('An answer was changed to a different value.'),
  'answer.deleted': z.strictObject({
    version, account_id: accountId, question_id: questionId, purpose,
    source: z.enum(['screen', 'preference_center', 'api', 'retention'])
      .describe('Who deleted it: the user (preference center), the management API, or the retention job when the purpose\'s retention ran out.'),
  }).describe('An answer was deleted. Receivers should erase their copy.'),
  'consent.granted': consentPayload('granted'),
  'consent.withdrawn': consentPayload('withdrawn'),
  'preferences.changed': z.strictObject({
    version, account_id: accountId, source: changeSource,
    changes: z.array(z.strictObject({
      channel: z.string().min(1).describe('email, sms or push.'),
      topic: z.string().min(1).describe('A topic of the configuration\'s communication.topics.'),
      enabled: z.boolean().describe('The toggle\'s new state.'),
    })).min(1).describe('Only the toggles that changed.'),
  }).describe('Communication preferences (channel × topic toggles) were changed.'),
  'reward.granted': z.strictObject({
    version, account_id: accountId, question_id: questionId,
    points: z.number().int().nullable().describe('Loyalty points, if the reward has any.'),
    label: z.string().describe('The reward as the user read it, in their language.'),
    client_id: clientId,
  }).describe('A reward for answering a question was granted (once per account and question).'),
  'terms.accepted': z.strictObject({
    version, account_id: accountId,
    document_id: z.string().min(1).describe('The document accepted (the id of its entry under `terms:` in the configuration).'),
    document_version: z.number().int().positive().describe('The version of the document accepted.'),
    client_id: clientId.nullable().describe('The app the user was registering with or signing in to.'),
    source: z.enum(['registration', 'sign_in']).describe('Where it was accepted: on the registration form, or on the step of a sign-in after the document changed.'),
    locale,
    text_hash: z.string().regex(/^[0-9a-f]{64}$/).describe('SHA-256 (hex) of the document title and address as shown: proof of what the user agreed to.'),
  }).describe('A terms document (terms of service, privacy policy) was accepted, one event per document.'),
  'app.revoked': z.strictObject({
    version, account_id: accountId,
    client_id: z.string().min(1).describe('The app whose access was taken away.'),
    source: changeSource,
  }).describe('The user took an app\'s access away: its grants and every token issued under them were revoked.'),
  'identity.linked': z.strictObject({
    version, account_id: accountId,
    provider: z.string().min(1).describe('The upstream identity provider (the id of its entry under `identity_providers:`).'),
    source: z.enum(['registration', 'sign_in', 'account']).describe(
      'Where it was linked: registering with the provider, signing in with it after proving the account is theirs, or on the account page.',
    ),
  }).describe('An upstream identity (a Google, Apple, Microsoft … account) was linked to the account: it can sign in with it.'),
  'identity.unlinked': z.strictObject({
    version, account_id: accountId,
    provider: z.string().min(1).describe('The upstream identity provider (the id of its entry under `identity_providers:`).'),
    source: z.enum(['account', 'reclaim']).describe(
      'account: the user unlinked it on the account page; reclaim: removed when the owner of the address reclaimed an account nobody had proven it for.',
    ),
  }).describe('An upstream identity was unlinked from the account: it no longer signs in to it.'),
  'account.security_changed': z.strictObject({
    version, account_id: accountId,
    change: z.enum(SECURITY_CHANGES).describe(
      'What changed: a passkey or an authenticator app added or removed, the password set (there was none) or changed, '
      + 'new recovery codes made, or a recovery code used to sign in.',
    ),
  }).describe('A way to sign in or a second factor of the account changed. The account holder is also told by email.'),
  'session.revoked': z.strictObject({
    version, account_id: accountId,
    scope: z.enum(['one', 'all_others']).describe('one: the person signed out one session; all_others: every session but the one they used (their apps\' grants and refresh tokens were revoked too).'),
    sessions: z.number().int().min(0).describe('How many sessions ended.'),
  }).describe('The person ended signed-in sessions of their account from /account/security.'),
} satisfies Record<EventType, z.ZodObject>;

/** The body of a standard webhook; a SET carries `data` under events["https://parley.dev/events/<type>"]. */
export function envelopeSchema(type: EventType): z.ZodObject {
  return z.strictObject({
    id: z.uuid().describe('The event id: the same on every retry (webhook-id, and the SET jti). De-duplicate on it.'),
    type: z.literal(type),
    timestamp: z.iso.datetime().describe('When the event happened (ISO 8601, UTC).'),
    version,
    data: storedPayloadSchemas[type],
  });
}

/** The JSON Schema (draft 2020-12) of one event type, as committed in events/schemas/<type>.json. */
export function eventJsonSchema(type: EventType): Record<string, unknown> {
  const generated = z.toJSONSchema(envelopeSchema(type), {
    io: 'output',
    target: 'draft-2020-12',
    override: ({ jsonSchema }) => {
      // Receivers must accept fields added later (see the versioning note): do not forbid them.
      if (jsonSchema.additionalProperties === false) delete jsonSchema.additionalProperties;
      // zod spells out its own regexes next to standard formats; the format says it.
      if (jsonSchema.format === 'uuid' || jsonSchema.format === 'date-time') delete jsonSchema.pattern;
      if (jsonSchema.maximum === Number.MAX_SAFE_INTEGER) delete jsonSchema.maximum;
      if (jsonSchema.minimum === Number.MIN_SAFE_INTEGER) delete jsonSchema.minimum;
    },
  });
  const { $schema, ...rest } = generated;
  return {
    $schema,
    title: `Parley event ${type}`,
    description: `${storedPayloadSchemas[type].description ?? ''} The body of a webhook (format: standard); with format: set, `
      + `"data" is the value of the SET's events claim under "${eventUri(type)}". `
      + 'Fields may be added without a version change: ignore the ones you do not know. Generated from src/events/schemas.ts.',
    ...rest,
  };
}

export { EVENT_TYPES };
