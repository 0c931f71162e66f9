import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Context } from 'koa';
import type { Storage } from '../storage/database.ts';

// One registry per app instance (tests run several in one process), exposed at /metrics.
export function createMetrics(storage: Storage) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'parley_' });
  const requests = new Counter({
    name: 'parley_http_requests_total', help: 'HTTP requests by route and status',
    labelNames: ['method', 'route', 'status'] as const, registers: [registry],
  });
  const latency = new Histogram({
    name: 'parley_http_request_duration_seconds', help: 'HTTP request latency by route',
    labelNames: ['method', 'route'] as const, registers: [registry],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  });
  const signIns = new Counter({
    name: 'parley_signins_total', help: 'Sign-in attempts by outcome',
    labelNames: ['outcome'] as const, registers: [registry],
  });
  const throttled = new Counter({
    name: 'parley_signin_throttled_total', help: 'Sign-in attempts refused by throttling', registers: [registry],
  });
  const profilingScreens = new Counter({
    name: 'parley_profiling_screens_total', help: 'Question screens by outcome (shown, answered, skipped, declined, invalid)',
    labelNames: ['outcome'] as const, registers: [registry],
  });
  const profilingFailures = new Counter({
    name: 'parley_profiling_failures_total', help: 'Sign-ins that went on without profiling because deciding or showing it failed',
    registers: [registry],
  });
  new Gauge({
    name: 'parley_db_pool_connections', help: 'Database pool connections by state (PostgreSQL only)',
    labelNames: ['state'] as const, registers: [registry],
    collect() {
      const stats = storage.poolStats();
      if (!stats) return;
      this.set({ state: 'total' }, stats.total);
      this.set({ state: 'idle' }, stats.idle);
      this.set({ state: 'waiting' }, stats.waiting);
    },
  });
  new Counter({
    name: 'parley_db_statements_total', help: 'SQL statements sent to the database, by first word and first table (BEGIN and COMMIT included)',
    labelNames: ['statement'] as const, registers: [registry],
    collect() {
      this.reset();
      for (const [statement, count] of storage.statementCounts()) this.inc({ statement }, count);
    },
  });
  return { registry, requests, latency, signIns, throttled, profilingScreens, profilingFailures };
}

export type Metrics = ReturnType<typeof createMetrics>;

/**
 * The route a request was answered by, as a template without ids, for metrics labels and logs:
 * Parley's routes as its router matched them (/api/v1/accounts/:id), oidc-provider's as its
 * router did (/auth/:uid), static files as one label, anything else as "unmatched", so that no
 * path a client makes up becomes a label or a log line.
 */
export function routeLabel(ctx: Context, providerRoute: string | undefined): string {
  const matched = (ctx._matchedRoute as string | undefined) ?? providerRoute;
  if (matched) return matched;
  if (ctx.path.startsWith('/assets/')) return '/assets/*';
  return 'unmatched';
}
