import { readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/config/load.ts';
import { envelopeSchema, eventJsonSchema, EVENT_TYPES } from '../../src/events/schemas.ts';

// The JSON Schemas receivers read are generated from src/events/schemas.ts and committed in
// events/schemas/. After changing a payload schema, regenerate them:
//   npx vitest run tests/unit/webhook-schemas.test.ts -u
// Real payloads, written by the real services, are checked against the schemas in
// tests/integration/webhooks-payloads.test.ts.

const SCHEMA_DIR = path.join(PROJECT_ROOT, 'events/schemas');

describe('the event JSON Schemas', () => {
  it.each(EVENT_TYPES)('events/schemas/%s.json is up to date', async (type) => {
    await expect(`${JSON.stringify(eventJsonSchema(type), null, 2)}\n`).toMatchFileSnapshot(path.join(SCHEMA_DIR, `${type}.json`));
  });

  it('has one file per event type and no other', () => {
    expect(readdirSync(SCHEMA_DIR).sort()).toEqual(EVENT_TYPES.map((t) => `${t}.json`).sort());
  });

  it('are draft 2020-12 and let receivers accept fields added later', () => {
    const schema = eventJsonSchema('answer.recorded');
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(JSON.stringify(schema)).not.toContain('"additionalProperties":false');
    expect(schema).toMatchObject({
      required: ['id', 'type', 'timestamp', 'version', 'data'],
      properties: { type: { const: 'answer.recorded' }, version: { const: 1 } },
    });
  });
});

describe('the envelope schema', () => {
  const event = {
    id: '0b8f5a55-4a8e-4c1e-9a51-6f2f0e7c9d10', type: 'answer.deleted', timestamp: '2026-11-23T10:00:00.000Z', version: 1,
    data: { version: 1, account_id: 'a1', question_id: 'birthday', purpose: 'offers', source: 'retention' },
  };
  const recorded = {
    id: '0b8f5a55-4a8e-4c1e-9a51-6f2f0e7c9d11', type: 'answer.recorded', timestamp: '2026-11-23T10:00:00.000Z', version: 1,
    data: {
      version: 1, account_id: 'a1', question_id: 'birthday', screenset_id: 'welcome', screenset_version: 3, purpose: 'offers',
      value: '1990-01-31', client_id: 'spa', locale: 'ja', source: 'screen',
      consent: { purpose: 'offers', legal_basis: 'consent', version: 2, state: 'granted' },
    },
  };

  it('accepts what the worker sends', () => {
    expect(envelopeSchema('answer.deleted').parse(event)).toEqual(event);
    expect(envelopeSchema('answer.recorded').parse(recorded)).toEqual(recorded);
  });

  it('holds Parley itself to the documented fields: an undocumented one fails the tests', () => {
    expect(envelopeSchema('answer.deleted').safeParse({ ...event, data: { ...event.data, email: 'x@example.com' } }).success).toBe(false);
    expect(envelopeSchema('answer.deleted').safeParse({ ...event, type: 'answer.recorded' }).success).toBe(false);
    const { consent: _, ...withoutConsent } = recorded.data;
    expect(envelopeSchema('answer.recorded').safeParse({ ...recorded, data: withoutConsent }).success).toBe(false);
  });
});
