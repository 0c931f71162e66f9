// Webhook endpoints as the worker sees them: the config entries with a stable id, what each one
// subscribes to, its signing keys (kept inside a closure so that no log line can print them), and
// the disabled state that a 410 Gone persists in webhook_endpoints.
import { createHash, createHmac } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import type { WebhookConfig } from '../config/schema.ts';
import type { Logger } from '../logger.ts';
import type { Database } from '../storage/schema.ts';
import type { EventType } from './outbox.ts';

export type EndpointFormat = WebhookConfig['format'];

export interface Endpoint {
  readonly id: string;
  readonly url: string;
  readonly format: EndpointFormat;
  readonly events: ReadonlySet<string>;
  readonly purposes: ReadonlySet<string>;
  /** Changes when url, format, events or purposes change (not the secrets): re-enables a disabled endpoint. */
  readonly configHash: string;
  /** Standard Webhooks signatures of `content`, one `v1,<base64>` per configured secret, current first. */
  sign(content: string): string[];
}

/** Events that carry data collected under a purpose: an endpoint gets them only for its purposes. */
const PURPOSE_SCOPED: ReadonlySet<EventType> = new Set<EventType>([
  'answer.recorded', 'answer.changed', 'answer.deleted', 'consent.granted', 'consent.withdrawn',
]);

export function isPurposeScoped(type: string): boolean {
  return PURPOSE_SCOPED.has(type as EventType);
}

/** The configured id, or one derived from the url: the same on every node and across restarts. */
export function endpointId(webhook: Pick<WebhookConfig, 'id' | 'url'>): string {
  return webhook.id ?? `wh_${createHash('sha256').update(webhook.url).digest('hex').slice(0, 16)}`;
}

/** The HMAC key of a `whsec_` secret: the bytes its base64 part encodes (validated at config load). */
export function webhookSecretKey(secret: string): Buffer {
  return Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
}

/** Signs with every `whsec_` secret given, current first; the keys stay inside the closure. */
export function standardWebhookSigner(secrets: readonly string[]): (content: string) => string[] {
  const keys = secrets.map(webhookSecretKey);
  return (content) => keys.map((key) => `v1,${createHmac('sha256', key).update(content).digest('base64')}`);
}

export function endpointsFromConfig(webhooks: readonly WebhookConfig[]): Endpoint[] {
  return webhooks.map((w) => {
    const events = [...new Set(w.events)].sort();
    const purposes = [...new Set(w.purposes)].sort();
    return {
      id: endpointId(w),
      url: w.url,
      format: w.format,
      events: new Set(events),
      purposes: new Set(purposes),
      configHash: createHash('sha256').update(JSON.stringify({ url: w.url, format: w.format, events, purposes })).digest('hex'),
      sign: standardWebhookSigner(w.secrets),
    };
  });
}

/** Whether the endpoint is to receive this event at all (decided at fan-out, and again before sending). */
export function subscribes(endpoint: Endpoint, type: string, payload: Record<string, unknown>): boolean {
  if (!endpoint.events.has(type)) return false;
  if (!isPurposeScoped(type)) return true;
  return typeof payload.purpose === 'string' && endpoint.purposes.has(payload.purpose);
}

/** Where a url may be logged: scheme, host and path; a query string can hold a token. */
export function loggableUrl(url: string): string {
  const { origin, pathname } = new URL(url);
  return `${origin}${pathname}`;
}

type Executor = Kysely<Database> | Transaction<Database>;

/**
 * Records the configured endpoints. An endpoint whose definition changed since it was disabled is
 * enabled again (the operator fixed it); one still disabled is reported, since nothing is sent to
 * it until its deliveries are replayed.
 */
export async function syncEndpoints(db: Executor, endpoints: readonly Endpoint[], now: Date, logger: Logger): Promise<void> {
  for (const endpoint of endpoints) {
    const before = await db.selectFrom('webhook_endpoints').select(['config_hash', 'disabled_at', 'disabled_reason'])
      .where('id', '=', endpoint.id).executeTakeFirst();
    const changed = before !== undefined && before.config_hash !== endpoint.configHash;
    await db.insertInto('webhook_endpoints').values({
      id: endpoint.id, url: loggableUrl(endpoint.url), config_hash: endpoint.configHash, disabled_at: null, disabled_reason: null, updated_at: now,
    }).onConflict((oc) => oc.column('id').doUpdateSet((eb) => ({
      url: eb.ref('excluded.url'),
      config_hash: eb.ref('excluded.config_hash'),
      updated_at: eb.ref('excluded.updated_at'),
      ...(changed ? { disabled_at: null, disabled_reason: null } : {}),
    }))).execute();
    if (before?.disabled_at && changed) {
      logger.info({ endpoint_id: endpoint.id, url: loggableUrl(endpoint.url) }, 'webhook endpoint re-enabled: its configuration changed since it was disabled');
    } else if (before?.disabled_at) {
      logger.warn({ endpoint_id: endpoint.id, url: loggableUrl(endpoint.url), disabled_at: before.disabled_at, reason: before.disabled_reason },
        'webhook endpoint is DISABLED: its events are kept but not sent; replay its deliveries to re-enable it');
    }
  }
}

export async function disabledEndpointIds(db: Executor): Promise<Set<string>> {
  const rows = await db.selectFrom('webhook_endpoints').select('id').where('disabled_at', 'is not', null).execute();
  return new Set(rows.map((r) => r.id));
}

/**
 * Disables the endpoint and every delivery still pending for it, in one transaction. Leases are
 * left alone: a delivery another batch has in flight and that succeeds is still recorded as such.
 */
export async function disableEndpoint(
  db: Kysely<Database>, endpoint: Endpoint, cause: { eventId: string; status: number; reason: string }, now: Date,
): Promise<number> {
  return db.transaction().execute(async (trx) => {
    await trx.insertInto('webhook_endpoints').values({
      id: endpoint.id, url: loggableUrl(endpoint.url), config_hash: endpoint.configHash,
      disabled_at: now, disabled_reason: cause.reason, updated_at: now,
    }).onConflict((oc) => oc.column('id').doUpdateSet({ disabled_at: now, disabled_reason: cause.reason, updated_at: now })).execute();
    const result = await trx.updateTable('deliveries')
      .set({ status: 'disabled', updated_at: now })
      .where('endpoint_id', '=', endpoint.id).where('status', '=', 'pending')
      .executeTakeFirst();
    await trx.updateTable('deliveries').set({ last_status: cause.status, last_error: cause.reason })
      .where('event_id', '=', cause.eventId).where('endpoint_id', '=', endpoint.id).execute();
    return Number(result.numUpdatedRows);
  });
}
