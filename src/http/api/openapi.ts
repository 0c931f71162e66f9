// The OpenAPI 3.1 document of the management API, generated from the operation table that also
// builds the router (routes.ts), with JSON Schemas generated from the zod schemas the routes
// parse with. tests/e2e/api.test.ts checks the document against the router and validates real
// responses against it.
import { z } from 'zod';
import { API_SCOPES, type Config } from '../../config/schema.ts';
import { API_PREFIX, type ApiOperation } from './routes.ts';
import {
  accountExport, accountPage, apiAccount, conditionSchema, deadEvents, errorBody, replayRequest, replayResult,
  SCOPE_DESCRIPTIONS, segmentCount, statsReport,
} from './schemas.ts';

type JsonSchema = Record<string, unknown>;

/** The named schemas of components.schemas; everything else is inlined. */
const COMPONENTS: Record<string, z.ZodType> = {
  Error: errorBody,
  Account: apiAccount,
  AccountExport: accountExport,
  Condition: conditionSchema,
  SegmentCount: segmentCount,
  AccountPage: accountPage,
  ScreenSetStats: statsReport,
  DeadEvents: deadEvents,
  ReplayRequest: replayRequest,
  ReplayResult: replayResult,
};

const REF = (name: string) => `#/components/schemas/${name}`;

function clean(schema: JsonSchema): JsonSchema {
  const { $schema: _schema, $id: _id, ...rest } = schema;
  return rest;
}

const GENERIC_ERRORS: Record<number, string> = {
  400: 'The request is invalid: `details` lists each problem with its path',
  401: 'No access token, or one that is malformed, expired, or not for this API',
  403: 'The access token lacks the scope this call needs',
  413: 'The body is too large',
  415: 'The body is not application/json',
  500: 'Something went wrong on the server',
  503: 'The database is unavailable; retry after the Retry-After seconds',
};

export function buildOpenApiDocument(config: Config, operations: readonly ApiOperation[]): Record<string, unknown> {
  const registry = z.registry<{ id: string }>();
  const names = new Map<z.ZodType, string>();
  for (const [name, schema] of Object.entries(COMPONENTS)) {
    registry.add(schema, { id: name });
    names.set(schema, name);
  }
  const generated = z.toJSONSchema(registry, { uri: REF, io: 'input', unrepresentable: 'any' }).schemas as Record<string, JsonSchema>;
  const schemas = Object.fromEntries(Object.entries(generated).map(([name, schema]) => [name, clean(schema)]));
  const schemaOf = (schema: z.ZodType): JsonSchema => {
    const name = names.get(schema);
    if (name) return { $ref: REF(name) };
    return clean(z.toJSONSchema(schema, { io: 'output', unrepresentable: 'any' }) as JsonSchema);
  };
  const json = (schema: z.ZodType | undefined) => ({ 'application/json': { schema: schema ? schemaOf(schema) : {} } });

  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of operations) {
    const parameters: unknown[] = [];
    for (const [where, schema] of [['path', op.params], ['query', op.query]] as const) {
      if (!schema) continue;
      const object = clean(z.toJSONSchema(schema, { io: 'output' }) as JsonSchema) as { properties?: Record<string, JsonSchema>; required?: string[] };
      for (const [name, property] of Object.entries(object.properties ?? {})) {
        const { description, ...rest } = property;
        parameters.push({
          name, in: where, required: where === 'path' || (object.required ?? []).includes(name),
          ...(description ? { description } : {}), schema: rest,
        });
      }
    }
    const responses: Record<string, unknown> = {};
    for (const [status, response] of Object.entries(op.responses)) {
      // Every answer but 204 has a JSON body; the document itself is described as any JSON.
      responses[status] = { description: response.description, ...(Number(status) === 204 ? {} : { content: json(response.schema) }) };
    }
    const generic = op.scope ? [400, 401, 403, 500, 503] : [500];
    if (op.body) generic.push(413, 415);
    for (const status of generic) {
      responses[String(status)] ??= { description: GENERIC_ERRORS[status], content: json(errorBody) };
    }
    const sorted = Object.fromEntries(Object.entries(responses).sort(([a], [b]) => Number(a) - Number(b)));
    paths[op.path] ??= {};
    paths[op.path]![op.method] = {
      operationId: op.operationId,
      summary: op.summary,
      ...(op.description ? { description: op.description } : {}),
      tags: [op.tag],
      security: op.scope ? [{ oauth2: [op.scope] }] : [],
      ...(parameters.length > 0 ? { parameters } : {}),
      ...(op.body ? { requestBody: { required: true, content: json(op.body) } } : {}),
      responses: sorted,
    };
  }

  const issuer = config.baseUrl;
  return {
    openapi: '3.1.0',
    info: {
      title: 'Parley management API',
      version: '1.0.0',
      description: 'Accounts, segments, statistics and event replay for trusted systems. Every call needs an access '
        + `token from the OAuth 2.0 client credentials grant at ${issuer}/token, for the resource ${config.api.audience}; `
        + 'data in responses is limited to the calling client\'s purposes and each user\'s current consent.',
    },
    servers: [{ url: `${issuer}${API_PREFIX}` }],
    tags: [
      { name: 'accounts', description: 'One account: read, export, delete' },
      { name: 'segments', description: 'Accounts matching conditions on answers and consents' },
      { name: 'stats', description: 'How screen-sets perform' },
      { name: 'events', description: 'Webhook events that ran out of delivery attempts' },
      { name: 'meta', description: 'About this API' },
    ],
    paths,
    components: {
      schemas,
      securitySchemes: {
        oauth2: {
          type: 'oauth2',
          description: `Client credentials; the token is a JWT (RFC 9068) for the audience ${config.api.audience}, valid ${config.api.access_token_ttl} seconds.`,
          flows: {
            clientCredentials: {
              tokenUrl: `${issuer}/token`,
              scopes: Object.fromEntries(API_SCOPES.map((scope) => [scope, SCOPE_DESCRIPTIONS[scope]])),
            },
          },
        },
      },
    },
  };
}
