// The management API at /api/v1, for systems rather than people: a CRM reading an account, a data
// platform counting a segment, a product team's dashboard reading statistics.
//
// Every operation is one entry of a table (apiOperations): method, path, the scope it needs, the
// zod schemas of its inputs and responses, and its handler. The router and the OpenAPI document
// (openapi.ts) are both built from that table. A request goes through the same short list of
// steps: authenticate the bearer token → check the scope → parse path, query and body → handle →
// log one line with the client id. Errors are JSON `{ error, error_description }`, never pages.
import { Router } from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { formatPath } from '../../config/load.ts';
import type { ApiScope, Config } from '../../config/schema.ts';
import { InvalidApiTokenError, type ApiCaller, type ApiTokenVerifier } from '../../oidc/api-tokens.ts';
import type { Segments } from '../../segments/service.ts';
import { SegmentQueryError } from '../../segments/query.ts';
import { conditionBoundsProblem } from '../../segments/conditions.ts';
import type { Stats } from '../../stats/screensets.ts';
import type { ApiAccounts } from './accounts.ts';
import type { BatchImport } from '../../import/batch.ts';
import {
  accountExport, accountIdParams, accountPage, apiAccount, conditionSchema, deadEvents, deadEventsQuery, errorBody,
  importRequest, importResponse, pageQuery, replayRequest, replayResult, segmentCount, statsQuery, statsReport,
} from './schemas.ts';
import { readBody } from '../body.ts';
import { state } from '../context.ts';
import { classify, logFailure, problemBody, retryAfter } from '../errors.ts';
import { BodyTooLargeError, RequestError } from '../request-errors.ts';

export const API_PREFIX = '/api/v1';

/**
 * Dead-letter administration of webhook delivery (src/events). Optional: until it is wired in,
 * the events routes answer 501.
 */
export interface EventsAdmin {
  /** Events that ran out of delivery attempts, oldest first. */
  listDead(opts: { limit: number }): Promise<unknown[]>;
  /** Puts dead events back into delivery; resolves with how many. */
  replay(opts: { ids: string[] } | { all: true; endpoint?: string | undefined }): Promise<number>;
}

export interface ApiDependencies {
  config: Config;
  tokens: ApiTokenVerifier;
  accounts: ApiAccounts;
  segments: Segments;
  stats: Stats;
  events?: EventsAdmin | undefined;
  /** POST /accounts/import (src/import/batch.ts). */
  imports: BatchImport;
  /** The OpenAPI document, built once from the same operations. */
  openApi: () => Record<string, unknown>;
}

export interface ApiResult { status: number; body?: unknown }

type Schema = z.ZodType;
type Out<S> = S extends z.ZodType ? z.output<S> : undefined;

export interface ApiOperation<P extends Schema | undefined = Schema | undefined, Q extends Schema | undefined = Schema | undefined, B extends Schema | undefined = Schema | undefined> {
  method: 'get' | 'post' | 'delete';
  /** Relative to /api/v1, with OpenAPI path templates: /accounts/{id}. */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  tag: string;
  /** The scope the call needs; null: no token (the OpenAPI document itself). */
  scope: ApiScope | null;
  params?: P;
  query?: Q;
  body?: B;
  /** The largest body taken, in bytes (default 64 KiB). */
  bodyLimit?: number;
  /** Every status the operation answers besides the generic errors (400, 401, 403, 500, 503; 413, 415 with a body). */
  responses: Record<number, { description: string; schema?: Schema }>;
  handle(input: { caller: ApiCaller; params: Out<P>; query: Out<Q>; body: Out<B> }): Promise<ApiResult>;
}

/** Keeps each operation's handler typed by its own schemas. */
function operation<P extends Schema | undefined = undefined, Q extends Schema | undefined = undefined, B extends Schema | undefined = undefined>(
  spec: ApiOperation<P, Q, B>,
): ApiOperation {
  return spec as unknown as ApiOperation;
}

const notFound = (what: string) => new RequestError('not_found', { message: what });
const ACCOUNT_NOT_FOUND = { description: 'No account has this id', schema: errorBody };

/** The operations of the API. Metadata only is read when the document is built. */
export function apiOperations(deps: Omit<ApiDependencies, 'openApi'> & { openApi?: () => Record<string, unknown> }): ApiOperation[] {
  const { accounts, segments, stats, imports } = deps;
  const eventsMissing = () => new RequestError('not_implemented', {
    message: 'webhook delivery is not part of this server yet: there are no dead events to list or replay',
  });

  return [
    operation({
      method: 'get', path: '/openapi.json', operationId: 'getOpenApiDocument', tag: 'meta', scope: null,
      summary: 'This document',
      responses: { 200: { description: 'The OpenAPI 3.1 document of this API' } },
      handle: async () => ({ status: 200, body: deps.openApi?.() }),
    }),
    operation({
      method: 'get', path: '/accounts/{id}', operationId: 'getAccount', tag: 'accounts', scope: 'accounts:read',
      summary: 'Read an account',
      description: 'The profile, the answers the calling client may receive (the same rule as the `preferences` claim: '
        + 'its purposes AND the user\'s current consent), and the consent state of each of its purposes.',
      params: accountIdParams,
      responses: { 200: { description: 'The account', schema: apiAccount }, 404: ACCOUNT_NOT_FOUND },
      handle: async ({ caller, params }) => {
        const view = await accounts.read(params.id, caller.purposes);
        if (!view) throw notFound('no account has this id');
        return { status: 200, body: view };
      },
    }),
    operation({
      method: 'get', path: '/accounts/{id}/export', operationId: 'exportAccount', tag: 'accounts', scope: 'accounts:export',
      summary: 'Export everything held about an account',
      description: 'The same JSON document as "Download my data" in the preference center: every answer under every '
        + 'purpose, their history, the consent ledger, the prompt log and the connected apps. It is NOT limited to the '
        + 'client\'s purposes: it exists to answer a data subject\'s access request (GDPR article 15) on their behalf, '
        + 'so it has its own scope, `accounts:export`, for systems trusted with all of a person\'s data.',
      params: accountIdParams,
      responses: { 200: { description: 'The export', schema: accountExport }, 404: ACCOUNT_NOT_FOUND },
      handle: async ({ params }) => {
        const data = await accounts.export(params.id);
        if (!data) throw notFound('no account has this id');
        return { status: 200, body: data };
      },
    }),
    operation({
      method: 'delete', path: '/accounts/{id}', operationId: 'deleteAccount', tag: 'accounts', scope: 'accounts:write',
      summary: 'Delete an account',
      description: 'As "Delete my account" in the preference center: the account, its answers, history, sessions and '
        + 'tokens go; the consent records stay under a pseudonym as proof; an account.deleted event tells downstream systems.',
      params: accountIdParams,
      responses: { 204: { description: 'Deleted' }, 404: ACCOUNT_NOT_FOUND },
      handle: async ({ params }) => {
        if (!(await accounts.delete(params.id))) throw notFound('no account has this id');
        return { status: 204 };
      },
    }),
    operation({
      method: 'post', path: '/accounts/import', operationId: 'importAccounts', tag: 'accounts', scope: 'accounts:import',
      summary: 'Import accounts from another system',
      description: 'Up to 1,000 records in the import line format (README: Moving to Parley), checked and written exactly as '
        + '`parley import users` writes a file: matched by external_id, else email; password hashes kept in their old format '
        + 'until the first sign-in; answers, consents and communication settings with their original times and source '
        + '`import`. A bad record never stops the others: each gets its result with its index (and the reason when it '
        + 'failed). Sending the same batch again changes nothing. One account.imported event reports the batch.',
      body: importRequest,
      bodyLimit: IMPORT_BODY_LIMIT,
      responses: {
        200: { description: 'One result per record, and the counts', schema: importResponse },
        413: { description: `The body is larger than ${IMPORT_BODY_LIMIT / 1024 / 1024} MiB`, schema: errorBody },
      },
      handle: async ({ body }) => {
        const { counts, results } = await imports.importBatch(body.records, { dryRun: body.dry_run, events: body.events });
        return { status: 200, body: { dry_run: body.dry_run, counts, results } };
      },
    }),
    operation({
      method: 'post', path: '/segments/count', operationId: 'countSegment', tag: 'segments', scope: 'segments:read',
      summary: 'Count the accounts matching a condition',
      description: 'Conditions on answers match only answers the client may receive (its purposes and the user\'s current '
        + 'consent). A condition naming a question or purpose outside the client\'s purposes is refused with 403 '
        + 'purpose_not_allowed; an unknown question or an impossible value with 400 invalid_condition.',
      body: conditionSchema,
      responses: {
        200: { description: 'The number of matching accounts', schema: segmentCount },
        403: { description: 'The condition names a question or purpose outside the client\'s purposes (purpose_not_allowed), or the token lacks the scope', schema: errorBody },
      },
      handle: async ({ caller, body }) => ({ status: 200, body: { count: await segments.count(body, caller) } }),
    }),
    operation({
      method: 'post', path: '/segments/accounts', operationId: 'listSegment', tag: 'segments', scope: 'segments:read',
      summary: 'List the accounts matching a condition, a page at a time',
      description: 'Account ids in a stable order; pass `next_cursor` back as `cursor` with the same condition for the next page.',
      query: pageQuery,
      body: conditionSchema,
      responses: {
        200: { description: 'One page of account ids', schema: accountPage },
        403: { description: 'The condition names a question or purpose outside the client\'s purposes (purpose_not_allowed), or the token lacks the scope', schema: errorBody },
      },
      handle: async ({ caller, query, body }) => {
        const page = await segments.accounts(body, caller, { limit: query.limit ?? 100, cursor: query.cursor });
        return { status: 200, body: { accounts: page.accountIds.map((id) => ({ id })), next_cursor: page.nextCursor } };
      },
    }),
    operation({
      method: 'get', path: '/stats/screensets', operationId: 'screenSetStats', tag: 'stats', scope: 'stats:read',
      summary: 'How each screen-set and question performs, per day',
      description: 'Per screen-set, question and day (UTC): shown, answered, skipped ("Not now"), declined ("Don\'t ask me '
        + 'again") and the answer rate; and the distribution of current answers under the client\'s purposes.',
      query: statsQuery,
      responses: { 200: { description: 'The statistics', schema: statsReport } },
      handle: async ({ caller, query }) => ({
        status: 200, body: await stats.screenSets({ from: query.from, to: query.to, purposes: caller.purposes }),
      }),
    }),
    operation({
      method: 'get', path: '/events/dead', operationId: 'listDeadEvents', tag: 'events', scope: 'events:replay',
      summary: 'List webhook events that ran out of delivery attempts',
      query: deadEventsQuery,
      responses: {
        200: { description: 'Dead events', schema: deadEvents },
        501: { description: 'Webhook delivery is not part of this server', schema: errorBody },
      },
      handle: async ({ query }) => {
        if (!deps.events) throw eventsMissing();
        return { status: 200, body: { events: await deps.events.listDead({ limit: query.limit ?? 100 }) } };
      },
    }),
    operation({
      method: 'post', path: '/events/replay', operationId: 'replayDeadEvents', tag: 'events', scope: 'events:replay',
      summary: 'Deliver dead events again',
      body: replayRequest,
      responses: {
        200: { description: 'How many events went back into delivery', schema: replayResult },
        501: { description: 'Webhook delivery is not part of this server', schema: errorBody },
      },
      handle: async ({ body }) => {
        if (!deps.events) throw eventsMissing();
        return { status: 200, body: { replayed: await deps.events.replay(body) } };
      },
    }),
  ];
}

/** OpenAPI `/accounts/{id}` → koa-router `/accounts/:id`. */
export function routerPath(path: string): string {
  return path.replace(/\{(\w+)\}/g, ':$1');
}

const JSON_LIMIT = 64 * 1024;
/** 1,000 records with their answers and hashes: a few KiB each at most, usually. */
const IMPORT_BODY_LIMIT = 16 * 1024 * 1024;

async function readJson(ctx: Context, limit = JSON_LIMIT): Promise<unknown> {
  const declared = Number(ctx.get('content-length') || 0);
  if (declared > limit) throw new BodyTooLargeError(limit);
  if (!ctx.is('application/json')) throw new RequestError('unsupported_media_type', { message: 'send the body as application/json' });
  const raw = await readBody(ctx, limit);
  let body: unknown;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new RequestError('malformed_body', { message: 'the body is not valid JSON' });
  }
  // Validators recurse; a body nested thousands deep would exhaust the stack before any limit of
  // theirs is checked. Nothing the API takes is nested anywhere near this deep.
  if (nestingDepth(body) > MAX_JSON_DEPTH) {
    throw new RequestError('malformed_body', { message: `the body is nested more than ${MAX_JSON_DEPTH} levels deep` });
  }
  return body;
}

const MAX_JSON_DEPTH = 32;

/** How deeply arrays and objects nest in a parsed JSON value, measured without recursion. */
function nestingDepth(value: unknown): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [current, depth] = stack.pop()!;
    if (typeof current !== 'object' || current === null) continue;
    deepest = Math.max(deepest, depth + 1);
    if (deepest > MAX_JSON_DEPTH) return deepest;
    for (const child of Object.values(current)) stack.push([child, depth + 1]);
  }
  return deepest;
}

type Issue = z.core.$ZodIssue;

/**
 * Path-qualified messages. A union (a segment condition) reports the problems of the one form
 * the input was evidently meant to be — the only form without unknown keys — or, when no single
 * form fits, says which forms there are.
 */
export function describeIssues(issues: readonly Issue[], prefix: (string | number)[] = [], unionHint = UNION_HINT): { path: string; message: string }[] {
  return issues.flatMap((issue) => {
    const path = [...prefix, ...(issue.path as (string | number)[])];
    if (issue.code === 'invalid_union' && issue.errors.length > 0) {
      const plausible = issue.errors.filter((branch) => !branch.some((i) => i.code === 'unrecognized_keys' && i.path.length === 0));
      if (plausible.length === 1) return describeIssues(plausible[0]!, path, unionHint);
      return [{ path: formatPath(path), message: unionHint }];
    }
    if (issue.code === 'unrecognized_keys') return [{ path: formatPath(path), message: `unknown ${issue.keys.length === 1 ? 'key' : 'keys'} ${issue.keys.map((k) => `"${k}"`).join(', ')}` }];
    return [{ path: formatPath(path), message: issue.message }];
  });
}

const UNION_HINT = 'does not match any of the accepted forms (see /api/v1/openapi.json)';
const CONDITION_HINT = 'expected one condition: { "all": [...] }, { "any": [...] }, { "not": {...} }, '
  + '{ "answer": "<question>", "in"?: [...], "answered_within"?: "180d" }, { "answered": "<question>" }, '
  + '{ "not_answered": "<question>" } or { "consent": "<purpose>", "state": "granted" | "withdrawn" | "none" | "outdated" }';

function parse<S extends Schema>(schema: S, value: unknown, where: string | undefined): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = describeIssues(result.error.issues, where ? [where] : [], schema === conditionSchema ? CONDITION_HINT : UNION_HINT);
  throw new RequestError('invalid_parameters', { message: issues.map((d) => `${d.path}: ${d.message}`).join('; '), issues });
}

function quoted(text: string): string {
  return text.replace(/["\\]/g, '');
}

const ANONYMOUS: ApiCaller = { clientId: 'anonymous', scopes: new Set(), purposes: [] };

export function apiRoutes(deps: ApiDependencies): Router {
  const router = new Router({ prefix: API_PREFIX });
  const realm = quoted(deps.config.api.audience);
  const operations = apiOperations(deps);

  async function authenticate(ctx: Context, scope: ApiScope): Promise<ApiCaller> {
    const match = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(ctx.get('authorization'));
    if (!match) throw new InvalidApiTokenError('send an access token: Authorization: Bearer <token> (client credentials grant at the token endpoint)');
    const caller = await deps.tokens.verify(match[1]!);
    (ctx.state as { apiClient?: string }).apiClient = caller.clientId;
    if (!caller.scopes.has(scope)) {
      throw new RequestError('insufficient_scope', { message: `this call needs the scope ${scope}`, params: { scope } });
    }
    return caller;
  }

  /** The bearer token's challenge (RFC 6750 §3) for the two refusals that concern the token. */
  function challenge(error: unknown): string | undefined {
    if (error instanceof InvalidApiTokenError) {
      return `Bearer realm="${realm}", error="invalid_token", error_description="${quoted(error.message)}"`;
    }
    if (error instanceof RequestError && error.code === 'insufficient_scope') {
      return `Bearer realm="${realm}", error="insufficient_scope", scope="${error.params?.scope}"`;
    }
    return undefined;
  }

  /** Every failure as a JSON problem, from the one table (../errors.ts). */
  function respondWithProblem(ctx: Context, error: unknown) {
    const failure = classify(error);
    logFailure(state(ctx).log, failure, 'unhandled error in the management API');
    ctx.status = failure.status;
    if (failure.entry.silent) return;
    const wait = retryAfter(failure);
    if (wait) ctx.set('Retry-After', wait);
    const bearer = challenge(error);
    if (bearer) ctx.set('WWW-Authenticate', bearer);
    const details = error instanceof RequestError ? error.issues
      : error instanceof SegmentQueryError ? [{ path: formatPath(error.path), message: error.message }]
        : undefined;
    ctx.body = { ...problemBody(failure, state(ctx).requestId), ...(details ? { details } : {}) };
  }

  for (const op of operations) {
    const route = `${API_PREFIX}${op.path}`;
    router[op.method](routerPath(op.path), async (ctx) => {
      const started = process.hrtime.bigint();
      ctx.set('Cache-Control', 'no-store');
      try {
        const caller = op.scope ? await authenticate(ctx, op.scope) : ANONYMOUS;
        const params = op.params ? parse(op.params, { ...ctx.params }, 'path') : undefined;
        const query = op.query ? parse(op.query, { ...ctx.query }, 'query') : undefined;
        const body = op.body ? parse(op.body, await readJson(ctx, op.bodyLimit), undefined) : undefined;
        if (op.body === conditionSchema) {
          const bounds = conditionBoundsProblem(body as z.output<typeof conditionSchema>);
          if (bounds) throw new RequestError('invalid_parameters', { message: bounds.message, issues: [{ path: formatPath(bounds.path), message: bounds.message }] });
        }
        const result = await op.handle({ caller, params, query, body });
        ctx.status = result.status;
        if (result.body !== undefined) ctx.body = result.body;
      } catch (error) {
        respondWithProblem(ctx, error);
      } finally {
        // Who called what, never with whom: the route template, not the path (it holds account ids).
        state(ctx).log.info({
          client_id: (ctx.state as { apiClient?: string }).apiClient ?? null, method: ctx.method, route, status: ctx.status,
          ms: Math.round(Number(process.hrtime.bigint() - started) / 1e6),
        }, 'api call');
      }
    });
  }

  // Anything else under /api/v1 is answered in JSON too, never by the sign-in pages.
  router.all('{/*rest}', (ctx) => {
    const allowed = router.stack.filter((layer) => layer.path !== ctx._matchedRoute && layer.match(ctx.path)).flatMap((layer) => layer.methods);
    ctx.set('Cache-Control', 'no-store');
    if (allowed.length > 0) {
      ctx.set('Allow', [...new Set(allowed)].join(', '));
      respondWithProblem(ctx, new RequestError('method_not_allowed', { message: `${ctx.method} is not allowed here; use ${[...new Set(allowed)].join(', ')}` }));
    } else {
      respondWithProblem(ctx, new RequestError('not_found', { message: 'no such API endpoint; see /api/v1/openapi.json' }));
    }
  });
  return router;
}
