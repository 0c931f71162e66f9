// Purposes with a `retention` keep their answers only that long: a scheduled job erases older
// ones, each with its history row and answer.deleted event, in small transactions so that a large
// backlog never holds locks for long. Safe on several nodes at once: a row is deleted only once.
import type { Config } from '../config/schema.ts';
import type { DB } from '../storage/database.ts';
import { answersDueForErasure } from '../answers/repository.ts';
import { eraseAnswers } from '../answers/service.ts';

const BATCH = 500;

/** Erases answers older than their purpose's retention; returns how many. */
export async function eraseExpiredAnswers(db: DB, config: Config, now: Date): Promise<number> {
  let total = 0;
  for (const [purpose, definition] of Object.entries(config.purposes)) {
    if (definition.retention === undefined) continue;
    const cutoff = new Date(now.getTime() - definition.retention * 1000);
    for (;;) {
      const erased = await db.transaction().execute(async (trx) => {
        const due = await answersDueForErasure(trx, purpose, cutoff, BATCH);
        const byAccount = new Map<string, string[]>();
        for (const row of due) byAccount.set(row.accountId, [...(byAccount.get(row.accountId) ?? []), row.questionId]);
        for (const [accountId, questionIds] of byAccount) {
          await eraseAnswers(trx, accountId, questionIds, { locale: config.locales.default, source: 'retention' }, now);
        }
        return due.length;
      });
      total += erased;
      if (erased < BATCH) break;
    }
  }
  return total;
}
