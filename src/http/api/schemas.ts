// The management API's request and response shapes, as zod schemas: the routes parse inputs with
// them, and the OpenAPI document (openapi.ts) is generated from the same objects, so the two
// cannot describe different things.
import { BATCH_LIMIT } from '../../import/batch.ts';
import { z } from 'zod';
import { API_SCOPES } from '../../config/schema.ts';
import { CONSENT_STATES, conditionSchema } from '../../segments/conditions.ts';
import { MAX_PAGE_SIZE } from '../../segments/service.ts';
import { MAX_RANGE_DAYS } from '../../stats/screensets.ts';
import { ID_FORMAT } from '../../storage/schema.ts';

const timestamp = z.iso.datetime().meta({ description: 'An RFC 3339 timestamp in UTC' });
const day = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'expected a date such as 2026-01-31');
const localizedText = z.union([z.string(), z.record(z.string(), z.string())])
  .meta({ description: 'Text, or a map of locale to text' });

export const answerValue = z.union([z.string(), z.number(), z.boolean(), z.array(z.string())])
  .meta({ description: 'An answer: text, a date (YYYY-MM-DD), a number, true/false, or the options chosen' });

export const errorBody = z.strictObject({
  error: z.string().meta({ description: 'A stable error code: invalid_token, insufficient_scope, invalid_request, invalid_condition, purpose_not_allowed, not_found, ...' }),
  error_description: z.string(),
  details: z.array(z.strictObject({
    path: z.string().meta({ description: 'Where in the request, e.g. all[0].in[1], or query.limit' }),
    message: z.string(),
  })).optional(),
});

export const apiAccount = z.strictObject({
  id: z.string(),
  email: z.string(),
  email_verified: z.boolean(),
  created_at: timestamp,
  answers: z.record(z.string(), answerValue).meta({
    description: 'Question id → answer: only answers under the calling client\'s purposes whose consent is current',
  }),
  consents: z.array(z.strictObject({
    purpose: z.string(),
    legal_basis: z.string(),
    state: z.enum([...CONSENT_STATES, 'not_required']).meta({
      description: 'granted (at the current version), outdated (granted to an earlier version), withdrawn, none (never asked), not_required (another legal basis)',
    }),
    version: z.number().int().nullable().meta({ description: 'The version of the purpose the latest choice was made for' }),
    changed_at: timestamp.nullable(),
  })).meta({ description: 'The account\'s consent to each of the calling client\'s purposes' }),
});

// The preference center's "download my data", described loosely: it is a document for people,
// and its parts are listed here so that a consumer knows where to look.
export const accountExport = z.looseObject({
  format: z.literal('parley.export.v1'),
  exported_at: timestamp,
  account: z.looseObject({ id: z.string(), email: z.string() }),
  answers: z.array(z.looseObject({ question_id: z.string(), value: answerValue, purpose: z.string() })),
  answer_history: z.array(z.looseObject({ question_id: z.string() })),
  consents: z.array(z.looseObject({ purpose: z.string(), action: z.enum(['granted', 'withdrawn']) })),
  communication_preferences: z.looseObject({ current: z.array(z.looseObject({})), history: z.array(z.looseObject({})) }),
  rewards: z.array(z.looseObject({ question_id: z.string() })),
  prompt_log: z.array(z.looseObject({ question_id: z.string() })),
  connected_apps: z.array(z.looseObject({ client_id: z.string() })),
  terms_acceptances: z.array(z.looseObject({ document_id: z.string(), document_version: z.number().int(), accepted_at: timestamp }))
    .meta({ description: 'Every terms document the account accepted: which version, when, where (registration or sign_in), in which language and app, and the hash of what was shown' }),
});

export const segmentCount = z.strictObject({ count: z.number().int().min(0) });

export const accountPage = z.strictObject({
  accounts: z.array(z.strictObject({ id: z.string() })),
  next_cursor: z.string().nullable().meta({ description: 'Pass as `cursor` to get the next page; null on the last page' }),
});

export const pageQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).optional()
    .meta({ description: `Accounts per page, at most ${MAX_PAGE_SIZE} (default 100)` }),
  cursor: z.string().max(512).optional().meta({ description: 'The next_cursor of the previous page' }),
});

const outcomeCounts = {
  shown: z.number().int().min(0),
  answered: z.number().int().min(0),
  skipped: z.number().int().min(0).meta({ description: '"Not now"' }),
  declined: z.number().int().min(0).meta({ description: '"Don\'t ask me again"' }),
  answer_rate: z.number().min(0).nullable().meta({ description: 'answered / shown; null when not shown' }),
};

export const statsReport = z.strictObject({
  from: day,
  to: day,
  screensets: z.array(z.strictObject({
    set_id: z.string(),
    title: localizedText.nullable(),
    questions: z.array(z.strictObject({
      question_id: z.string(),
      type: z.enum(['single_choice', 'multi_choice', 'boolean', 'date', 'number', 'scale', 'text']).nullable(),
      purpose: z.string().nullable(),
      label: localizedText.nullable(),
      totals: z.strictObject(outcomeCounts),
      days: z.array(z.strictObject({ date: day, ...outcomeCounts })).meta({ description: 'Every day of the range (UTC), in order' }),
      distribution: z.record(z.string(), z.number().int().min(0)).nullable().meta({
        description: 'Current answers, value → accounts, counting only answers under the client\'s purposes with current consent; '
          + 'null for text and date questions, and for questions under other purposes',
      }),
    })),
  })),
});

export const statsQuery = z.strictObject({
  from: day.optional().meta({ description: 'First day (UTC), inclusive; default: 29 days before `to`' }),
  to: day.optional().meta({ description: `Last day (UTC), inclusive; default: today. At most ${MAX_RANGE_DAYS} days in all` }),
});

export const deadEventsQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).optional().meta({ description: 'At most this many (default 100)' }),
});

export const deadEvents = z.strictObject({
  events: z.array(z.looseObject({})).meta({ description: 'Events that ran out of delivery attempts, oldest first' }),
});

const eventId = z.string().regex(ID_FORMAT, 'event ids are up to 128 letters, digits and . _ ~ -');

export const replayRequest = z.union([
  z.strictObject({ ids: z.array(eventId).min(1).max(1000) }).meta({ description: 'Replay these dead events' }),
  z.strictObject({
    all: z.literal(true),
    endpoint: z.string().min(1).max(2048).regex(/^\P{Cc}*$/u, 'control characters are never part of a URL or an endpoint id').optional(),
  }).meta({ description: 'Replay every dead event (of one endpoint URL or id, at most 2048 characters)' }),
]);

export const replayResult = z.strictObject({ replayed: z.number().int().min(0) });

export const importRequest = z.strictObject({
  records: z.array(z.unknown().meta({ description: 'One account in the import line format (README: Moving to Parley): external_id, email, password, identities, answers, consents, communication, ...' }))
    .min(1, 'send at least one record')
    .max(BATCH_LIMIT, `at most ${BATCH_LIMIT} records per request; send the rest in further requests`),
  dry_run: z.boolean().default(false).meta({ description: 'Check and decide every record, write nothing' }),
  events: z.enum(['none', 'all']).default('none').meta({ description: 'none: only the account.imported event of the batch; all: every account\'s events too' }),
});

const importCount = z.number().int().min(0);
export const importResponse = z.strictObject({
  dry_run: z.boolean(),
  counts: z.strictObject({ created: importCount, updated: importCount, unchanged: importCount, failed: importCount }),
  results: z.array(z.strictObject({
    index: z.number().int().min(0).meta({ description: 'The record\'s position in `records`' }),
    outcome: z.enum(['created', 'updated', 'unchanged', 'failed']),
    account_id: z.string().meta({ description: 'The account the record went to (its `sub`); absent when it failed' }).optional(),
    error: z.string().meta({ description: 'Why the record failed: every problem with its key path, as the command line reports a line' }).optional(),
  })).meta({ description: 'One result per record, in order' }),
});

export const accountIdParams = z.strictObject({ id: z.string().regex(ID_FORMAT, 'account ids are up to 128 letters, digits and . _ ~ -').meta({ description: 'The account id (the `sub` of its tokens)' }) });

export { conditionSchema };

/** What each scope allows, for the OpenAPI security scheme. */
export const SCOPE_DESCRIPTIONS: Record<(typeof API_SCOPES)[number], string> = {
  'accounts:read': 'Read an account, with the answers under the client\'s purposes and the user\'s consent',
  'accounts:export': 'Export all of an account\'s data, under every purpose (for access requests)',
  'accounts:write': 'Delete an account',
  'accounts:import': 'Import accounts from another system, with their password hashes, answers and consents',
  'segments:read': 'Count and list accounts matching conditions on answers and consents',
  'stats:read': 'Read screen-set statistics',
  'events:replay': 'List and replay webhook events that ran out of delivery attempts',
};
