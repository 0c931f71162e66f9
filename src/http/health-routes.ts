import { Router } from '@koa/router';
import { timingSafeEqual } from 'node:crypto';
import type { Config } from '../config/schema.ts';
import { addressMatcher } from '../ip-addresses.ts';
import type { Metrics } from './metrics.ts';

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export function healthRoutes(deps: { config: Config; metrics: Metrics; isReady(): Promise<{ ready: boolean; checks: Record<string, string> }> }): Router {
  const { config, metrics } = deps;
  const scraperAddress = addressMatcher(config.metrics.allow_ips);
  const router = new Router();

  // Alive: the process answers. A load balancer restarts on this one failing.
  router.get('/healthz', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: 'ok' };
  });

  // Ready: database reachable, schema current, keys loaded. A load balancer routes on this one.
  router.get('/readyz', async (ctx) => {
    const { ready, checks } = await deps.isReady();
    ctx.set('Cache-Control', 'no-store');
    ctx.status = ready ? 200 : 503;
    ctx.body = { status: ready ? 'ready' : 'not_ready', checks };
  });

  router.get('/metrics', async (ctx) => {
    if (!config.metrics.enabled) return ctx.throw(404);
    const auth = ctx.get('authorization');
    const token = config.metrics.bearer_token;
    const allowed = scraperAddress(ctx.ip)
      || (token !== '' && auth.startsWith('Bearer ') && sameSecret(auth.slice(7), token));
    if (!allowed) return ctx.throw(403);
    ctx.type = metrics.registry.contentType;
    ctx.body = await metrics.registry.metrics();
  });

  return router;
}
