// A batch of records in the line format, as the management API takes it
// (POST /api/v1/accounts/import): checked and written exactly as a file's lines are, through the
// same writer, each record answered with its index in the batch; one account.imported event per
// batch.
import { randomUUID } from 'node:crypto';
import { foreignHashSettings } from '../accounts/password-verifier.ts';
import type { Config } from '../config/schema.ts';
import type { ReadItem } from './read.ts';
import { createRecordParser } from './record.ts';
import type { EventsMode, ImportCounts, RecordOutcome } from './run.ts';
import type { ImportWriter } from './writer.ts';

/** The most records one request may carry: a batch is held in memory whole. */
export const BATCH_LIMIT = 1000;

export interface BatchResult {
  index: number;
  outcome: RecordOutcome;
  account_id?: string;
  error?: string;
}

export interface BatchImport {
  importBatch(records: readonly unknown[], options: { dryRun: boolean; events: EventsMode }): Promise<{ counts: ImportCounts; results: BatchResult[] }>;
}

export function createBatchImport(deps: { writer: ImportWriter; config: Config; clock: () => Date }): BatchImport {
  const { writer, config, clock } = deps;
  const firebaseScrypt = foreignHashSettings(config).firebaseScrypt !== undefined;
  return {
    async importBatch(records, options) {
      if (records.length > BATCH_LIMIT) throw new RangeError(`at most ${BATCH_LIMIT} records per batch`);
      const startedAt = clock();
      const parse = createRecordParser({ now: startedAt, firebaseScrypt });
      const items: ReadItem[] = records.map((value, index) => {
        const at = { index, where: `records[${index}]` };
        const parsed = parse(value);
        return parsed.ok ? { ok: true, at, record: parsed.record } : { ok: false, at, error: parsed.error };
      });
      const results: BatchResult[] = [];
      const counts = await writer.write(items, options, (report) => {
        results.push({
          index: report.at.index!, outcome: report.outcome,
          // A dry run's new accounts have no id yet.
          ...(report.accountId && report.outcome !== 'failed' && !(options.dryRun && report.outcome === 'created') ? { account_id: report.accountId } : {}),
          ...(report.error ? { error: report.error } : {}),
        });
      });
      if (!options.dryRun) await writer.recordRun({ id: randomUUID(), format: 'parley', source: 'api', events: options.events, startedAt, counts });
      return { counts, results };
    },
  };
}
