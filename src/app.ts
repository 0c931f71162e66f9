import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type Koa from 'koa';
import { createAccounts, type Accounts } from './accounts/service.ts';
import { createPasswordHasher } from './accounts/passwords.ts';
import { createThrottle } from './accounts/throttle.ts';
import { ConfigError, developmentDefaultsInUse } from './config/load.ts';
import type { Config } from './config/schema.ts';
import { createHttpApp } from './http/app.ts';
import { createPageResponder } from './http/context.ts';
import { createMetrics } from './http/metrics.ts';
import { providerPages, providerUnavailableMiddleware } from './http/provider-pages.ts';
import { createLogger, type Logger } from './logger.ts';
import { createMailer } from './mail/mailer.ts';
import { purgeExpired, revokeAccountSessions } from './oidc/adapter.ts';
import { createInteractions } from './oidc/interactions.ts';
import { loadSigningKeys } from './oidc/keys.ts';
import { createProvider } from './oidc/provider.ts';
import { migrateToLatest, openStorage, pendingMigrations, ping, type Storage } from './storage/database.ts';
import { createRenderer } from './views/render.ts';

// The composition root: config → database → services → provider → Koa app. Nothing else
// constructs services; everything else receives them.

export interface Parley {
  config: Config;
  logger: Logger;
  storage: Storage;
  accounts: Accounts;
  app: Koa;
  /** Starts listening; resolves with the bound port. */
  listen(port?: number, host?: string): Promise<number>;
  /** Stops accepting, lets requests in flight finish, then closes the database. */
  close(): Promise<void>;
}

export interface ParleyOptions {
  config: Config;
  logger?: Logger;
  /** Parley's notion of "now" for its own records; tests move it forward. */
  clock?: () => Date;
}

const PURGE_EVERY_MS = 10 * 60 * 1000;

export async function createParley(options: ParleyOptions): Promise<Parley> {
  const { config } = options;
  const logger = options.logger ?? createLogger(config);
  const clock = options.clock ?? (() => new Date());

  const unsafe = developmentDefaultsInUse(config);
  if (unsafe.length > 0 && config.env === 'production') throw new ConfigError(unsafe.map((w) => `${w} (refused in production)`));
  for (const warning of unsafe) logger.warn(`DEVELOPMENT DEFAULT IN USE: ${warning}. Never run like this in production.`);

  const storage = await openStorage(config.database, logger);
  try {
    const { db } = storage;
    if (config.database.migrate_on_start) {
      const applied = await migrateToLatest(db);
      if (applied.length > 0) logger.info({ migrations: applied }, 'database migrated');
    }
    const signingKeys = await loadSigningKeys(db, config.secrets.key_encryption, clock());

    const mailer = createMailer(config.mail, logger);
    const accounts = createAccounts({
      db, config, clock, mailer, logger,
      hasher: createPasswordHasher(config.accounts.argon2),
      throttle: createThrottle(db, config.throttle, clock),
      revokeSessions: revokeAccountSessions,
    });
    const metrics = createMetrics(storage);
    const pages = createPageResponder(createRenderer({ defaultLocale: config.locales.default, supported: config.locales.supported }), config);

    const provider = createProvider({
      config, db, signingKeys,
      accounts: {
        async claimsFor(accountId) {
          const account = await accounts.findById(accountId);
          if (!account) return undefined;
          return {
            email: account.email,
            email_verified: account.email_verified_at !== null,
            ...(account.name ? { name: account.name } : {}),
            ...(account.locale ? { locale: account.locale } : {}),
          };
        },
      },
      pages: providerPages(pages, config.locales.default),
      middleware: [providerUnavailableMiddleware(pages) as never],
      onServerError: (error) => logger.error({ err: error }, 'provider server_error'),
    });

    const app = createHttpApp({
      config, logger, storage, accounts, metrics, pages,
      interactions: createInteractions(provider, config),
      providerCallback: provider.callback() as never,
      isReady: async () => {
        const checks: Record<string, string> = {};
        try {
          await ping(db);
          checks.database = 'ok';
          const pending = await pendingMigrations(db);
          checks.migrations = pending.length === 0 ? 'ok' : `pending: ${pending.join(', ')}`;
        } catch {
          checks.database = 'unreachable';
        }
        checks.signing_keys = signingKeys.length > 0 ? 'ok' : 'missing';
        return { ready: Object.values(checks).every((c) => c === 'ok'), checks };
      },
    });

    const purge = setInterval(() => {
      purgeExpired(db, clock())
        .then((count) => { if (count > 0) logger.info({ count }, 'purged expired OIDC artifacts'); })
        .catch((error: unknown) => logger.warn({ err: { message: (error as Error).message } }, 'purge of expired OIDC artifacts failed'));
    }, PURGE_EVERY_MS);
    purge.unref();

    let server: http.Server | undefined;
    return {
      config, logger, storage, accounts, app,
      listen(port = config.port, host = config.host) {
        server = http.createServer(app.callback());
        server.keepAliveTimeout = 65_000;
        return new Promise((resolve, reject) => {
          server!.once('error', reject);
          server!.listen(port, host, () => resolve((server!.address() as AddressInfo).port));
        });
      },
      async close() {
        clearInterval(purge);
        if (server) {
          const closing = new Promise<void>((resolve) => server!.close(() => resolve()));
          server.closeIdleConnections();
          // Requests in flight get a few seconds to finish; then their connections are cut.
          const deadline = setTimeout(() => server!.closeAllConnections(), 10_000);
          await closing;
          clearTimeout(deadline);
        }
        await mailer.close();
        await storage.close();
      },
    };
  } catch (error) {
    await storage.close();
    throw error;
  }
}
