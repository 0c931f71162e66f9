// One account as the management API shows it to a calling client: the same release rule as the
// ID token and userinfo (releaseAnswers: the client's purposes AND the user's current consent),
// and the consent state of each of the client's purposes. Plain functions in, no Koa.
import type { Config } from '../config/schema.ts';
import { consentStates, purposeAllows } from '../consent/ledger.ts';
import { releaseAnswers, type ReleasableAnswer } from '../consent/release.ts';
import type { DB } from '../storage/database.ts';
import type { Account } from '../storage/schema.ts';
import type { AnswerValue } from '../screensets/engine.ts';

export interface ApiAccountView {
  id: string;
  email: string;
  email_verified: boolean;
  created_at: string;
  answers: Record<string, AnswerValue>;
  consents: { purpose: string; legal_basis: string; state: 'granted' | 'withdrawn' | 'none' | 'outdated' | 'not_required'; version: number | null; changed_at: string | null }[];
}

export interface ApiAccountsDeps {
  db: DB;
  config: Pick<Config, 'purposes'>;
  findAccount(accountId: string): Promise<Account | undefined>;
  currentAnswers(accountId: string): Promise<ReleasableAnswer[]>;
  /** The preference center's "download my data". */
  exportData(accountId: string): Promise<Record<string, unknown> | undefined>;
  /** The preference center's deletion: data, sessions, tokens; the consent proof stays pseudonymized. */
  deleteAccount(accountId: string): Promise<boolean>;
}

export function createApiAccounts(deps: ApiAccountsDeps) {
  const { db, config } = deps;
  return {
    async read(accountId: string, clientPurposes: readonly string[]): Promise<ApiAccountView | undefined> {
      const [account, answers, consents] = await Promise.all([
        deps.findAccount(accountId), deps.currentAnswers(accountId), consentStates(db, accountId),
      ]);
      if (!account) return undefined;
      const released = releaseAnswers(answers, {
        clientPurposes,
        purposeAllows: (purpose) => purposeAllows(config.purposes[purpose], consents.get(purpose)),
        claimOf: () => undefined,
      });
      return {
        id: account.id,
        email: account.email,
        email_verified: account.email_verified_at !== null,
        created_at: account.created_at.toISOString(),
        answers: released.preferences,
        consents: clientPurposes.flatMap((purpose) => {
          const definition = config.purposes[purpose];
          if (!definition) return [];
          const current = consents.get(purpose);
          const state = definition.legal_basis !== 'consent' ? 'not_required' as const
            : !current ? 'none' as const
              : current.action === 'withdrawn' ? 'withdrawn' as const
                : current.version === definition.version ? 'granted' as const : 'outdated' as const;
          return [{
            purpose, legal_basis: definition.legal_basis, state,
            version: current?.version ?? null, changed_at: current ? current.at.toISOString() : null,
          }];
        }),
      };
    },
    export: (accountId: string) => deps.exportData(accountId),
    delete: (accountId: string) => deps.deleteAccount(accountId),
  };
}

export type ApiAccounts = ReturnType<typeof createApiAccounts>;
