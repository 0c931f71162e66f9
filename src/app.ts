import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import type Koa from 'koa';
import { createAccounts, type Accounts } from './accounts/service.ts';
import { withHashingSlots } from './accounts/hashing-slots.ts';
import { createPasswordHasher } from './accounts/passwords.ts';
import { createPasswordVerifier, foreignHashSettings } from './accounts/password-verifier.ts';
import { createBatchImport } from './import/batch.ts';
import { createLegacyVerifier } from './import/legacy-verify.ts';
import { createImportWriter } from './import/writer.ts';
import { createThrottle, purgeStaleThrottles } from './accounts/throttle.ts';
import { ConfigError, developmentDefaultsInUse } from './config/load.ts';
import type { Config } from './config/schema.ts';
import { createHttpApp, requestStateOf } from './http/app.ts';
import { createPageResponder } from './http/context.ts';
import { createMetrics } from './http/metrics.ts';
import { providerScriptHashes } from './http/security-headers.ts';
import { providerPages, providerRequestMiddleware, providerUnavailableMiddleware } from './http/provider-pages.ts';
import { createLogger, type Logger } from './logger.ts';
import { createMailer } from './mail/mailer.ts';
import { createMailOutbox } from './mail/outbox.ts';
import { accountGrants, purgeExpired, revokeAccountSessions, revokeGrant, revokeSessionsOf } from './oidc/adapter.ts';
import { createSessionReader } from './oidc/sessions.ts';
import { createPreferenceCenter } from './consent/preference-center.ts';
import { eraseExpiredAnswers } from './consent/retention.ts';
import { createInteractions } from './oidc/interactions.ts';
import { loadSigningKeys } from './oidc/keys.ts';
import { createClaims } from './oidc/claims.ts';
import { createProvider } from './oidc/provider.ts';
import { errorSummary, isDatabaseUnavailable, migrateToLatest, openStorage, pendingMigrations, ping, whenDatabaseAnswers, type Storage } from './storage/database.ts';
import type { Account } from './storage/schema.ts';
import { createRenderer } from './views/render.ts';
import { negotiateLocale } from './views/i18n.ts';
import { createRelease } from './consent/release.ts';
import { openScreenSetLibrary } from './screensets/library.ts';
import { screenSetContext } from './screensets/loader.ts';
import { createProfiling } from './screensets/profiling.ts';
import { profilePrompt } from './oidc/profile-prompt.ts';
import { termsPrompt } from './oidc/terms-prompt.ts';
import { mfaPrompt, type MfaSignIn } from './oidc/mfa-prompt.ts';
import { enrolmentOf, isAcrValue } from './accounts/authentication-methods.ts';
import { decideMfa } from './accounts/mfa-policy.ts';
import { createRecoveryCodes } from './accounts/recovery-codes.ts';
import { createSecondFactorThrottle } from './accounts/second-factor-throttle.ts';
import { createTotp } from './accounts/totp.ts';
import { createPasskeys } from './accounts/passkeys.ts';
import { createSecurityNotices } from './accounts/security-notices.ts';
import { createPasskeyOffers } from './accounts/passkey-offers.ts';
import { createEmailCodes } from './accounts/email-codes.ts';
import { recordSessionSeen } from './accounts/session-devices.ts';
import { passkeyOfferPrompt } from './oidc/passkey-offer-prompt.ts';
import { createTerms } from './consent/terms.ts';
import { DATE_OF_BIRTH_QUESTION } from './screensets/format.ts';
import { ACCOUNT_CLIENT_ID } from './config/derived.ts';
import { createApiTokenVerifier } from './oidc/api-tokens.ts';
import { createDeadLetters } from './events/dead-letters.ts';
import { endpointId } from './events/endpoints.ts';
import { createSetSigner } from './events/signing.ts';
import { createDeliveryWorker, type DeliveryWorker } from './events/worker.ts';
import { createApiAccounts } from './http/api/accounts.ts';
import { createSegments } from './segments/service.ts';
import { createStats } from './stats/screensets.ts';
import { createIdentities } from './federation/identities.ts';
import { resolveUpstreamSettings } from './federation/settings.ts';
import { createUpstreamSignIns, purgeExpiredUpstreamSignIns } from './federation/sign-ins.ts';
import { createUpstreamClients } from './federation/upstream.ts';

// The composition root: config → database → services → provider → Koa app. Nothing else
// constructs services; everything else receives them.

export interface Parley {
  config: Config;
  logger: Logger;
  storage: Storage;
  accounts: Accounts;
  /** Sends webhooks and mail from the outbox; tests drive it (runOnce, drainMail). */
  deliveryWorker: DeliveryWorker;
  app: Koa;
  /** Starts listening; resolves with the bound port. */
  listen(port?: number, host?: string): Promise<number>;
  /** Stops accepting, lets requests in flight finish, then closes the database. */
  close(): Promise<void>;
}

export interface ParleyOptions {
  config: Config;
  logger?: Logger;
  /**
   * Parley's one clock, read wherever Parley decides by time: every record it writes, what is
   * still valid (emailed links, codes, throttles and limits, stored sessions, grants and tokens,
   * a sign-in's time and how recent it is), profiling, retries. Tests move it forward. The
   * provider itself checks the times inside tokens and cookies (exp, iat) with the real time.
   */
  clock?: () => Date;
  /**
   * The delivery target mail is queued for ("mail"). Parleys that share a database also share
   * their queued mail, which is right for the nodes of one deployment; the test suite runs many
   * differently configured Parleys on one database and gives each its own.
   */
  mailEndpointId?: string;
  /**
   * How requests reach the upstream identity providers (default: the global fetch). Tests send
   * the real providers' host names to stand-ins on loopback.
   */
  upstreamFetch?: typeof fetch;
}

/** The real time: Parley's clock outside tests. */
export const systemClock = (): Date => new Date();

const PURGE_EVERY_MS = 10 * 60 * 1000;

export async function createParley(options: ParleyOptions): Promise<Parley> {
  const { config } = options;
  const logger = options.logger ?? createLogger(config);
  const clock = options.clock ?? systemClock;

  const unsafe = developmentDefaultsInUse(config);
  if (unsafe.length > 0 && config.env === 'production') throw new ConfigError(unsafe.map((w) => `${w} (refused in production)`));
  for (const warning of unsafe) logger.warn(`DEVELOPMENT DEFAULT IN USE: ${warning}. Never run like this in production.`);

  // Screen-sets first: an invalid one stops the start before anything is opened.
  const screenSets = openScreenSetLibrary({
    dir: config.screensets.dir, context: screenSetContext(config), logger,
    watch: config.screensets.watch ?? config.env === 'development',
  });
  let storage: Storage;
  try {
    storage = await openStorage(config.database, logger);
  } catch (error) {
    screenSets.close();
    throw error;
  }
  try {
    const { db } = storage;
    const signingKeys = await whenDatabaseAnswers(async () => {
      if (config.database.migrate_on_start) {
        const applied = await migrateToLatest(db);
        if (applied.length > 0) logger.info({ migrations: applied }, 'database migrated');
      }
      return loadSigningKeys(db, config.secrets.key_encryption, clock());
    }, logger);

    // Mail is written to the outbox with the change it is about, and sent by the delivery worker.
    const mailer = createMailer(config.mail, logger, { timeoutSeconds: config.events.timeout, clock });
    const mail = createMailOutbox({ config, endpointId: options.mailEndpointId });
    // Webhook delivery runs in every node (unless events.worker is false); several nodes share the
    // work through row leases. So does mail, always.
    const deliveryWorker = createDeliveryWorker({ db, config, logger, clock, signSet: createSetSigner(signingKeys[0]!), mail: { outbox: mail, mailer } });
    // As many argon2 computations at once as there are cores: more only hold more memory.
    const hasher = withHashingSlots(createPasswordHasher(config.accounts.argon2), availableParallelism());
    const accounts = createAccounts({
      db, config, clock, mail, logger, hasher,
      verifier: createPasswordVerifier(hasher, foreignHashSettings(config)),
      legacyVerifier: createLegacyVerifier(config.legacy_verify, { clock, logger }),
      throttle: createThrottle(db, config.throttle, clock),
      revokeSessions: revokeAccountSessions,
    });
    const metrics = createMetrics(storage);
    const profiling = createProfiling({ db, config, clock, screenSets: screenSets.current });
    const release = createRelease({
      db, config,
      currentAnswers: (accountId) => profiling.currentAnswers(accountId),
      // The date of birth the age gate keeps fills birthdate like a question with claim: birthdate.
      claimOf: (questionId) => profiling.question(questionId)?.claim
        ?? (questionId === DATE_OF_BIRTH_QUESTION.id ? DATE_OF_BIRTH_QUESTION.claim : undefined),
    });
    const terms = createTerms({ db, config, clock });
    // One-time codes by mail: a sign-in ("Email me a code") and proving an address before linking.
    const emailCodes = createEmailCodes({ db, config, clock });
    // "Continue with …": one client per configured provider, its secrets read now (a missing one
    // stops the start, naming its key).
    const upstreams = {
      clients: createUpstreamClients(resolveUpstreamSettings(config.identity_providers, { env: process.env }), {
        redirectUri: (id) => `${config.baseUrl}/federation/${encodeURIComponent(id)}/callback`,
        now: clock, transactionTtl: config.ttl.interaction,
        ...(options.upstreamFetch ? { fetch: options.upstreamFetch } : {}),
      }),
      signIns: createUpstreamSignIns({ db, clock, ttlSeconds: config.ttl.interaction }),
      identities: createIdentities({ db, clock, logger, revokeSessions: revokeAccountSessions }),
      emailCodes,
      mail,
      // A first password for an account made with a provider: the one password writer, with its
      // security notice (mail and event), as /account/security sets one.
      setFirstPassword: async (accountId: string, password: string) => {
        const account = await accounts.findById(accountId);
        if (!account || account.password_hash !== null) return false;
        await accounts.setPassword(accountId, password, (trx, { hadPassword }) =>
          notices.record(trx, accountId, hadPassword ? 'password_changed' : 'password_set'));
        return true;
      },
    };
    // Second factors: one throttle of wrong codes per account, whichever kind of code.
    const secondFactorThrottle = createSecondFactorThrottle(db, config.mfa.throttle, clock);
    // A change to how someone signs in is told to them by mail and downstream by an event.
    const notices = createSecurityNotices({ mail, clock });
    const passkeys = createPasskeys({ db, config, clock, logger });
    const passkeyOffers = createPasskeyOffers({ db, config, clock });
    const credentials = {
      passkeys,
      totp: createTotp({ db, config, clock, throttle: secondFactorThrottle }),
      recoveryCodes: createRecoveryCodes({ db, config, clock, throttle: secondFactorThrottle }),
      passkeyOffers,
      emailCodes,
      mail,
      onPasskeyAdded: (accountId: string) => notices.alongside(accountId, 'passkey_added'),
      onRecoveryCodeUsed: (accountId: string) => notices.alongside(accountId, 'recovery_code_used'),
      onTotpEnrolled: (accountId: string) => notices.alongside(accountId, 'totp_added'),
    };
    /** Whether a sign-in needs a second factor now: the policy (global, the client's), the request, what the account has. */
    const decideSecondFactor = async (signIn: MfaSignIn) => decideMfa({
      policy: config.mfa.policy,
      clientPolicy: config.clientsById.get(signIn.clientId)?.mfa,
      requestedAcr: signIn.requestedAcr,
      acrEssential: signIn.acrEssential,
      maxAge: signIn.maxAge,
      now: clock(),
      // Under `off` with no acr_values nothing can be asked, whatever the account has: no read.
      enrolment: (config.clientsById.get(signIn.clientId)?.mfa ?? config.mfa.policy) === 'off' && !signIn.requestedAcr.some(isAcrValue)
        ? { passkeys: 0, totp: false, recoveryCodes: 0 } : await enrolmentOf(db, signIn.accountId),
      enabled: { passkeys: config.mfa.passkeys.enabled, totp: config.mfa.totp.enabled },
      proofs: signIn.proofs,
    });
    const pages = createPageResponder(createRenderer({ defaultLocale: config.locales.default, supported: config.locales.supported }), config);

    // The parts of one request that need an account (the provider's findAccount, the profile
    // prompt's language) share one read of it; the next request reads it afresh.
    const accountsOfRequest = new WeakMap<http.IncomingMessage, Map<string, Promise<Account | undefined>>>();
    const accountIn = (request: http.IncomingMessage, accountId: string) => {
      const read = accountsOfRequest.get(request) ?? new Map<string, Promise<Account | undefined>>();
      accountsOfRequest.set(request, read);
      if (!read.has(accountId)) read.set(accountId, accounts.findById(accountId));
      return read.get(accountId)!;
    };

    const provider = createProvider({
      config, db, signingKeys, clock,
      findAccount: createClaims({ config, findAccount: (accountId, request) => accountIn(request, accountId), release }),
      pages: providerPages(pages, config.locales.default),
      middleware: [providerRequestMiddleware() as never, providerUnavailableMiddleware(pages) as never, providerScriptHashes() as never],
      // Where each signed-in session is used from, for the sessions list in /account/security.
      onSessionSeen: async ({ sessionUid, accountId, req }) => recordSessionSeen(db, {
        sessionUid, accountId, userAgent: String(req.headers['user-agent'] ?? ''), ip: requestStateOf(req)?.ip ?? req.socket.remoteAddress ?? '', now: clock(),
      }),
      promptsAfterLogin: [mfaPrompt({ decide: decideSecondFactor }), termsPrompt({
        upToDate: (accountId) => terms.upToDate(accountId),
        // The preference center opens without the new terms: seeing, exporting and deleting one's
        // data never waits on accepting them.
        exempt: (clientId) => clientId === ACCOUNT_CLIENT_ID,
      })],
      extraPrompts: [profilePrompt({
        // The screen-sets' audiences see the language the question page will be shown in.
        pendingScreen: async (signIn, request) => profiling.pendingScreen({
          ...signIn,
          locale: await negotiateLocale({
            chosen: requestStateOf(request)?.chosenLocale, uiLocales: signIn.uiLocales, acceptLanguage: signIn.acceptLanguage,
            accountLocale: async () => (await accountIn(request, signIn.accountId))?.locale,
            supported: config.locales.supported, fallback: config.locales.default,
          }),
        }),
        onError: (error) => {
          metrics.profilingFailures.inc();
          logger.error({ err: error }, 'profiling failed; the sign-in goes on without it');
        },
      }), passkeyOfferPrompt({ due: (accountId) => passkeyOffers.due(accountId) })],
      onServerError: (error) => {
        // An outage is not a bug: one line that says so, without the stack of every request.
        if (isDatabaseUnavailable(error)) logger.error({ err: errorSummary(error) }, 'database unavailable');
        else logger.error({ err: error }, 'provider server_error');
      },
    });

    const preferenceCenter = createPreferenceCenter({
      db, config, clock,
      question: (questionId) => profiling.question(questionId),
      screenSetOf: (questionId) => profiling.screenSetOf(questionId),
      grants: {
        list: (accountId, trx) => accountGrants(trx ?? db, accountId, clock()),
        revoke: (trx, grantId) => revokeGrant(trx, grantId),
        revokeAll: revokeAccountSessions,
      },
      pseudonymSecret: config.secrets.key_encryption,
    });

    const deadLetters = createDeadLetters({ db, clock, logger });
    // The API names an endpoint by its URL or its id.
    const endpointOf = (urlOrId: string) => endpointId(config.webhooks.find((w) => w.url === urlOrId) ?? { url: urlOrId, id: urlOrId });

    const app = createHttpApp({
      config, logger, storage, accounts, metrics, pages, profiling, screenSets, clock,
      interactions: createInteractions(provider, config, clock),
      // /account is open to a session whose sign-in is complete: one that still owes its second
      // factor is sent through the sign-in, which asks for it.
      sessions: createSessionReader(provider, {
        complete: async (accountId, proofs) =>
          (await decideSecondFactor({ accountId, clientId: ACCOUNT_CLIENT_ID, requestedAcr: [], acrEssential: false, maxAge: undefined, proofs })).outcome === 'none',
      }),
      credentials,
      signInMethods: { passkeys, notices, revokeSessions: revokeSessionsOf },
      preferenceCenter,
      terms,
      upstreams,
      api: {
        tokens: createApiTokenVerifier({ issuer: config.issuer, audience: config.api.audience, signingKeys, clients: config.clients }),
        accounts: createApiAccounts({
          config, release,
          findAccount: (accountId) => accounts.findById(accountId),
          exportData: (accountId) => preferenceCenter.exportData(accountId),
          deleteAccount: (accountId) => preferenceCenter.deleteAccount(accountId),
        }),
        segments: createSegments({ db, config, question: (questionId) => profiling.question(questionId), clock }),
        stats: createStats({ db, config, screenSets: screenSets.current, clock }),
        imports: createBatchImport({ writer: createImportWriter({ db, config, clock, screenSets: screenSets.current }), config, clock }),
        events: {
          listDead: async ({ limit }) => (await deadLetters.listDead({ limit })).items,
          replay: async (selection) => (await deadLetters.replay('ids' in selection
            ? { ids: selection.ids }
            : selection.endpoint ? { endpointId: endpointOf(selection.endpoint) } : { all: true })).replayed,
        },
      },
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
        .catch((error: unknown) => logger.warn({ err: errorSummary(error) }, 'purge of expired OIDC artifacts failed'));
      purgeStaleThrottles(db, { signIn: config.throttle.window, secondFactor: config.mfa.throttle.window }, clock())
        .catch((error: unknown) => logger.warn({ err: errorSummary(error) }, 'purge of old sign-in throttles failed'));
      purgeExpiredUpstreamSignIns(db, clock())
        .catch((error: unknown) => logger.warn({ err: errorSummary(error) }, 'purge of expired upstream sign-ins failed'));
      eraseExpiredAnswers(db, config, clock())
        .then((count) => { if (count > 0) logger.info({ count }, 'erased answers past their purpose retention'); })
        .catch((error: unknown) => logger.warn({ err: errorSummary(error) }, 'retention job failed'));
    }, PURGE_EVERY_MS);
    purge.unref();

    let server: http.Server | undefined;
    return {
      config, logger, storage, accounts, deliveryWorker, app,
      listen(port = config.port, host = config.host) {
        const headersTimeout = config.http.headers_timeout * 1000;
        const requestTimeout = config.http.request_timeout * 1000;
        server = http.createServer({
          // A client holding a connection with headers or a body trickled in is cut off with a
          // 408: Node's defaults (60 s for headers, 300 s for the request) let a few hundred
          // slow connections tie up a node. Connections are checked a few times per timeout,
          // not every 30 s as by default, so the limits hold within a quarter of their length.
          headersTimeout,
          requestTimeout,
          connectionsCheckingInterval: Math.max(100, Math.min(headersTimeout, requestTimeout) / 4),
        }, app.callback());
        deliveryWorker.start();
        server.keepAliveTimeout = 65_000;
        return new Promise((resolve, reject) => {
          server!.once('error', reject);
          server!.listen(port, host, () => resolve((server!.address() as AddressInfo).port));
        });
      },
      async close() {
        clearInterval(purge);
        screenSets.close();
        if (server) {
          const closing = new Promise<void>((resolve) => server!.close(() => resolve()));
          server.closeIdleConnections();
          // Requests in flight get a few seconds to finish; then their connections are cut.
          const deadline = setTimeout(() => server!.closeAllConnections(), 10_000);
          await closing;
          clearTimeout(deadline);
        }
        // Batches in flight are recorded before the database closes; nothing sent is sent twice needlessly.
        await deliveryWorker.stop();
        await mailer.close();
        await storage.close();
      },
    };
  } catch (error) {
    screenSets.close();
    await storage.close();
    throw error;
  }
}
