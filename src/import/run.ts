// The bookkeeping of one import run, apart from reading and writing: its options, the counts,
// the closing summary and the one event that reports the run.
//
// --dry-run reads, checks and decides every record exactly as a real run does (the line format,
// the hash formats, the references, the match against the database and the changes), writes
// nothing at all (no account, no event, not even the summary event), and reports the counts as
// "would create / would update".
//
// --events none (the default) records no per-account events: a migration of a million users must
// not flood every webhook receiver with a million account.created. --events all records the same
// events a change in Parley would (account.created, answer.recorded, consent.granted, ...).
// Either way one account.imported event reports the run.
import { parseArgs } from 'node:util';
import { DomainError } from '../errors.ts';
import { IMPORT_FORMATS, type ImportFormat } from './read.ts';

export const EVENTS_MODES = ['none', 'all'] as const;
export type EventsMode = (typeof EVENTS_MODES)[number];

export interface ImportOptions {
  file: string;
  format: ImportFormat;
  dryRun: boolean;
  events: EventsMode;
}

/** usage: the command line of `parley import users` is wrong; the message says how. */
export const IMPORT_ERROR_CODES = ['usage'] as const;
declare module '../errors.ts' {
  interface ErrorCodes { import: (typeof IMPORT_ERROR_CODES)[number] }
}

export class ImportUsageError extends DomainError<'import'> {
  constructor(message: string) {
    super('import', 'usage', { message });
  }
}

export const IMPORT_USAGE = `parley import users FILE [--format parley|keycloak|auth0|auth0-export] [--dry-run] [--events none|all]
  FILE           the file to import; - reads standard input
  --format       parley (default): JSON Lines, one account per line
                 keycloak: a realm export with its users (or a users file of one)
                 auth0: an Auth0 bulk user import file (JSON array)
                 auth0-export: an Auth0 user export or password hash export (JSON Lines)
  --dry-run      check everything, write nothing, report what would change
  --events       none (default): only the account.imported summary event; all: every account's events too`;

/** The arguments after "import users". */
export function parseImportArguments(args: string[]): ImportOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args, allowPositionals: true, strict: true,
      options: { format: { type: 'string' }, 'dry-run': { type: 'boolean' }, events: { type: 'string' } },
    });
  } catch (error) {
    throw new ImportUsageError((error as Error).message);
  }
  const { positionals, values } = parsed;
  if (positionals.length !== 1) throw new ImportUsageError(positionals.length === 0 ? 'name the file to import' : `one file at a time, not ${positionals.length}`);
  const format = values.format ?? 'parley';
  if (!(IMPORT_FORMATS as readonly string[]).includes(format)) throw new ImportUsageError(`--format must be one of ${IMPORT_FORMATS.join(', ')}, not "${format}"`);
  const events = values.events ?? 'none';
  if (!(EVENTS_MODES as readonly string[]).includes(events)) throw new ImportUsageError(`--events must be none or all, not "${events}"`);
  return { file: positionals[0]!, format: format as ImportFormat, dryRun: values['dry-run'] ?? false, events: events as EventsMode };
}

export type RecordOutcome = 'created' | 'updated' | 'unchanged' | 'failed';

export interface ImportCounts {
  created: number;
  updated: number;
  unchanged: number;
  failed: number;
}

export interface ImportTally {
  count(outcome: RecordOutcome): void;
  readonly counts: Readonly<ImportCounts>;
  /** Records seen so far, failed ones included. */
  readonly total: number;
}

export function createTally(): ImportTally {
  const counts: ImportCounts = { created: 0, updated: 0, unchanged: 0, failed: 0 };
  return {
    count(outcome) {
      counts[outcome] += 1;
    },
    get counts() {
      return { ...counts };
    },
    get total() {
      return counts.created + counts.updated + counts.unchanged + counts.failed;
    },
  };
}

/** "created 10, updated 2, unchanged 5, failed 1" (dry run: "would create 10, would update 2, …"). */
export function summaryLine(counts: ImportCounts, dryRun: boolean): string {
  const parts = dryRun
    ? [`would create ${counts.created}`, `would update ${counts.updated}`, `unchanged ${counts.unchanged}`, `failed ${counts.failed}`]
    : [`created ${counts.created}`, `updated ${counts.updated}`, `unchanged ${counts.unchanged}`, `failed ${counts.failed}`];
  return `${dryRun ? 'dry run, nothing written: ' : ''}${parts.join(', ')}`;
}

/** 0 when every record went in; 1 when some failed (so that scripts notice); usage errors are 2. */
export function exitCode(counts: ImportCounts): number {
  return counts.failed > 0 ? 1 : 0;
}

/** The payload of the account.imported event that reports a run (written in the run's last transaction). */
export interface AccountImportedPayload {
  run_id: string;
  format: ImportFormat;
  source: 'cli' | 'api';
  events: EventsMode;
  started_at: string;
  finished_at: string;
  created: number;
  updated: number;
  unchanged: number;
  failed: number;
}

export function accountImportedPayload(run: {
  id: string; format: ImportFormat; source: 'cli' | 'api'; events: EventsMode; startedAt: Date; finishedAt: Date; counts: ImportCounts;
}): AccountImportedPayload {
  return {
    run_id: run.id, format: run.format, source: run.source, events: run.events,
    started_at: run.startedAt.toISOString(), finished_at: run.finishedAt.toISOString(), ...run.counts,
  };
}
