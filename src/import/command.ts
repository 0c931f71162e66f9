// `parley import users FILE`: reads the file as a stream (memory stays flat however big it is),
// writes it through the import writer, shows progress on standard error (a bar on a terminal,
// plain lines elsewhere) with every failed record as a line of its own, and ends with the counts
// on standard output. Exit codes: 0 every record went in (or was already there), 1 some failed,
// 2 the command line is wrong (or the file cannot be read).
import { createReadStream, statSync } from 'node:fs';
import { Transform, type Readable } from 'node:stream';
import { randomUUID } from 'node:crypto';
import { foreignHashSettings } from '../accounts/password-verifier.ts';
import type { Config } from '../config/schema.ts';
import { createLogger } from '../logger.ts';
import { ScreenSetsInvalidError } from '../screensets/library.ts';
import { loadScreenSets, screenSetContext } from '../screensets/loader.ts';
import { migrateToLatest, openStorage } from '../storage/database.ts';
import { createProgressReporter, type ProgressOutput } from './progress.ts';
import { readImport } from './read.ts';
import { exitCode, IMPORT_USAGE, ImportUsageError, parseImportArguments, summaryLine } from './run.ts';
import { createImportWriter } from './writer.ts';

export interface CommandIo {
  stdout: (text: string) => void;
  stderr: ProgressOutput;
  stdin: Readable;
  clock: () => Date;
}

/** Counts the bytes that pass, for the progress bar's percentage. */
function byteCounter() {
  let bytes = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  return { stream, bytes: () => bytes };
}

/** The arguments after "import"; answers the exit code. */
export async function importCommand(args: string[], config: Config, io: CommandIo): Promise<number> {
  let options;
  try {
    if (args[0] !== 'users') throw new ImportUsageError('parley import users FILE: "users" is all there is to import');
    options = parseImportArguments(args.slice(1));
  } catch (error) {
    if (!(error instanceof ImportUsageError)) throw error;
    io.stderr.write(`parley import: ${error.message}\n\nusage: ${IMPORT_USAGE}\n`);
    return 2;
  }

  let input: Readable;
  let totalBytes: number | undefined;
  if (options.file === '-') {
    input = io.stdin;
  } else {
    try {
      totalBytes = statSync(options.file).size;
    } catch (error) {
      io.stderr.write(`parley import: cannot read ${options.file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}\n`);
      return 2;
    }
    input = createReadStream(options.file);
  }

  const loaded = loadScreenSets(config.screensets.dir, screenSetContext(config));
  if (loaded.errors.length > 0) throw new ScreenSetsInvalidError(config.screensets.dir, loaded.errors);
  // Only warnings and errors: standard output is the command's own.
  const logger = createLogger({ ...config, logging: { ...config.logging, level: 'warn' } });
  const storage = await openStorage(config.database, logger);
  try {
    await migrateToLatest(storage.db);
    const writer = createImportWriter({ db: storage.db, config, clock: io.clock, screenSets: () => loaded.sets });
    const progress = createProgressReporter(io.stderr, { totalBytes, clock: () => performance.now() });
    const counter = byteCounter();
    const startedAt = io.clock();
    let records = 0;
    let failed = 0;
    const items = readImport(input.pipe(counter.stream), options.format, {
      now: startedAt, firebaseScrypt: foreignHashSettings(config).firebaseScrypt !== undefined,
    });
    const counts = await writer.write(items, { dryRun: options.dryRun, events: options.events }, (report) => {
      records += 1;
      if (report.outcome === 'failed') {
        failed += 1;
        progress.note(`${report.at.where}: ${report.error}`);
      }
      progress.update({ records, failed, bytes: counter.bytes() });
    });
    progress.finish({ records, failed, bytes: counter.bytes() });
    if (!options.dryRun) {
      await writer.recordRun({ id: randomUUID(), format: options.format, source: 'cli', events: options.events, startedAt, counts });
    }
    io.stdout(`${summaryLine(counts, options.dryRun)}\n`);
    return exitCode(counts);
  } finally {
    await storage.close();
  }
}
