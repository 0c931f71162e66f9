// One account as the management API shows it to a calling client: the same release rule as the
// ID token and userinfo (releaseAnswers: the client's purposes AND the user's current consent),
// and the consent state of each of the client's purposes. Plain functions in, no Koa.
import type { Config } from '../../config/schema.ts';
import { consentStatus, type ConsentStatus } from '../../consent/ledger.ts';
import type { Release } from '../../consent/release.ts';
import type { Account } from '../../storage/schema.ts';
import type { AnswerValue } from '../../screensets/engine.ts';

export interface ApiAccountView {
  id: string;
  email: string;
  email_verified: boolean;
  created_at: string;
  answers: Record<string, AnswerValue>;
  consents: { purpose: string; legal_basis: string; state: ConsentStatus; version: number | null; changed_at: string | null }[];
}

export interface ApiAccountsDeps {
  config: Pick<Config, 'purposes'>;
  findAccount(accountId: string): Promise<Account | undefined>;
  release: Release;
  /** The preference center's "download my data". */
  exportData(accountId: string): Promise<Record<string, unknown> | undefined>;
  /** The preference center's deletion: data, sessions, tokens; the consent proof stays pseudonymized. */
  deleteAccount(accountId: string): Promise<boolean>;
}

export function createApiAccounts(deps: ApiAccountsDeps) {
  const { config } = deps;
  return {
    async read(accountId: string, clientPurposes: readonly string[]): Promise<ApiAccountView | undefined> {
      const [account, released] = await Promise.all([deps.findAccount(accountId), deps.release.forClient(accountId, clientPurposes)]);
      if (!account) return undefined;
      const { consents } = released;
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
          return [{
            purpose, legal_basis: definition.legal_basis, state: consentStatus(definition, current),
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
