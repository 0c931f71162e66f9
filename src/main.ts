import { parseArgs } from 'node:util';
import type { systemClock as SystemClock } from './app.ts';
import { ConfigError, loadConfig } from './config/load.ts';
import { createLogger } from './logger.ts';
import { rotateSigningKey } from './oidc/keys.ts';
import { createDeadLetters, EventsError } from './events/dead-letters.ts';
import { importCommand } from './import/command.ts';
import { ScreenSetsInvalidError } from './screensets/library.ts';
import { screenSetContext } from './screensets/loader.ts';
import { validateScreenSetsCommand } from './screensets/validate-command.ts';
import { migrateToLatest, openStorage } from './storage/database.ts';

const USAGE = `usage: parley <command>

commands:
  start          run the server (migrates first unless database.migrate_on_start is false)
  migrate        apply pending database migrations and exit
  keys rotate    add a new signing key; the old one stays published until its tokens expire
  events dead [--endpoint <id>] [--limit <n>]
                 list webhook and mail deliveries that ran out of retries (or whose endpoint
                 answered 410); mail is the endpoint "mail"
  events replay --id <event id>... | --endpoint <id> | --all
                 put them back into delivery (re-enables a disabled endpoint)
  screensets validate [dir]
                 check every screen-set file (default: screensets.dir) and exit non-zero on any error
  import users FILE [--format parley|keycloak|auth0|auth0-export] [--dry-run] [--events none|all]
                 import accounts from another system (README: Moving to Parley); exits 1 when
                 some records failed (each is reported with its line), 2 on a usage error

configuration: config/default.yaml, then the file in PARLEY_CONFIG, then environment variables
(PORT, ISSUER, DATABASE_URL, PARLEY_COOKIE_KEYS, PARLEY_KEY_ENCRYPTION_SECRET, SMTP_URL, LOG_LEVEL).`;

/** The real time; the same as app.ts's, which the commands other than start do not load. */
const systemClock: typeof SystemClock = () => new Date();

async function start(): Promise<void> {
  const config = loadConfig();
  // Loaded here: the provider, the pages and the API are the server's, and cost a command (an
  // import of a million accounts, say) memory it has no use for.
  const { createParley } = await import('./app.ts');
  const parley = await createParley({ config });
  const port = await parley.listen();
  parley.logger.info({ port, issuer: config.issuer, database: parley.storage.kind }, `Parley listening on ${config.issuer}${config.demo.enabled ? ` (demo: ${config.baseUrl}/demo)` : ''}`);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    parley.logger.info({ signal }, 'shutting down: finishing requests in flight');
    parley.close().then(
      () => process.exit(0),
      (error: unknown) => {
        parley.logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

async function withStorage(task: (storage: Awaited<ReturnType<typeof openStorage>>, config: ReturnType<typeof loadConfig>) => Promise<void>): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config);
  const storage = await openStorage(config.database, logger);
  try {
    await task(storage, config);
  } finally {
    await storage.close();
  }
}

async function main(argv: string[]): Promise<number> {
  // Its options are its own (src/import/run.ts).
  if (argv[0] === 'import') {
    return importCommand(argv.slice(1), loadConfig(), {
      stdout: (text) => process.stdout.write(text),
      stderr: { write: (text) => process.stderr.write(text), isTTY: process.stderr.isTTY === true, columns: process.stderr.columns },
      stdin: process.stdin,
      clock: systemClock,
    });
  }
  const { positionals, values } = parseArgs({
    args: argv, allowPositionals: true, strict: true,
    options: {
      id: { type: 'string', multiple: true },
      endpoint: { type: 'string' },
      all: { type: 'boolean' },
      limit: { type: 'string' },
    },
  });
  const command = positionals.join(' ');
  if (positionals[0] === 'screensets' && positionals[1] === 'validate' && positionals.length <= 3) {
    const config = loadConfig();
    const { output, exitCode } = validateScreenSetsCommand(positionals[2] ?? config.screensets.dir, screenSetContext(config));
    (exitCode === 0 ? console.log : console.error)(output);
    return exitCode;
  }
  switch (command) {
    case 'start':
      await start();
      return -1;
    case 'migrate':
      await withStorage(async ({ db }) => {
        const applied = await migrateToLatest(db);
        console.log(applied.length ? `applied: ${applied.join(', ')}` : 'the database schema is up to date');
      });
      return 0;
    case 'events dead':
      await withStorage(async ({ db }, config) => {
        await migrateToLatest(db);
        const page = await createDeadLetters({ db, clock: systemClock, logger: createLogger(config) })
          .listDead({ ...(values.endpoint ? { endpointId: values.endpoint } : {}), limit: Number(values.limit ?? 100) });
        if (page.items.length === 0) console.log('no dead or disabled deliveries');
        for (const d of page.items) {
          console.log([d.eventId, d.endpointId, d.type, d.status, `attempts=${d.attempts}`, `last=${d.lastStatus ?? d.lastError ?? '-'}`, d.updatedAt.toISOString()].join('\t'));
        }
        if (page.next) console.log(`(more: the API pages with cursor ${page.next})`);
      });
      return 0;
    case 'events replay': {
      const selection = values.id?.length ? { ids: values.id, endpointId: values.endpoint }
        : values.endpoint ? { endpointId: values.endpoint }
          : values.all ? { all: true as const } : undefined;
      if (!selection) {
        console.error('events replay needs --id <event id> (repeatable), --endpoint <endpoint id>, or --all');
        return 2;
      }
      await withStorage(async ({ db }, config) => {
        await migrateToLatest(db);
        const result = await createDeadLetters({ db, clock: systemClock, logger: createLogger(config) }).replay(selection);
        console.log(`${result.replayed} deliveries back in the queue${result.reenabled.length ? `; re-enabled ${result.reenabled.join(', ')}` : ''}`);
      });
      return 0;
    }
    case 'keys rotate':
      await withStorage(async ({ db }, config) => {
        await migrateToLatest(db);
        // An old key must outlive everything it signed: ID tokens and JWT access tokens.
        const keep = Math.max(config.ttl.id_token, config.ttl.access_token) + 60;
        const { kid, retired } = await rotateSigningKey(db, config.secrets.key_encryption, systemClock(), keep);
        console.log(`new signing key ${kid}; retired ${retired.join(', ') || 'none'} (published ${keep}s more).`);
        console.log('Restart each node (one at a time) to sign with the new key.');
      });
      return 0;
    default:
      console.error(command ? `unknown command "${command}"\n\n${USAGE}` : USAGE);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => { if (code >= 0) process.exit(code); },
  (error: unknown) => {
    if (error instanceof EventsError) {
      // A mistake in the command's options: say what is wrong, as a usage error.
      console.error(`parley: ${error.message}`);
      process.exit(2);
    }
    if (error instanceof ScreenSetsInvalidError) {
      console.error(`Parley cannot start: ${error.message}`);
      process.exit(78);
    }
    if (error instanceof ConfigError) {
      console.error(`Parley cannot start: ${error.message}`);
      process.exit(78);
    }
    console.error(error instanceof Error ? `Parley failed: ${error.message}` : error);
    process.exit(1);
  },
);
