// What a signed-in user can see and do with their own data: answers, consents, communication
// preferences, the apps holding a grant, a full export, and deleting the account. Every change
// writes its history or ledger row and its outbox event in the same transaction. Knows nothing of
// HTTP; the grants come in as functions, since only src/oidc knows how they are stored.
import type { Transaction } from 'kysely';
import type { Config } from '../config/schema.ts';
import { answerEntries as storedEntries, exportRows } from '../answers/repository.ts';
import { changeAnswer, eraseAnswers, eraseAnswersUnder } from '../answers/service.ts';
import { ACCOUNT_CLIENT_ID } from '../config/derived.ts';
import { recordEvent } from '../events/outbox.ts';
import { validateAnswer, type AnswerRejection, type AnswerValue } from '../screensets/engine.ts';
import type { Question, ScreenSet } from '../screensets/format.ts';
import type { DB } from '../storage/database.ts';
import type { Account, AnswerSource, Database } from '../storage/schema.ts';
import { consentStates, pseudonymizeConsents, recordConsent, type ConsentState } from './ledger.ts';
import { pseudonymizeTermsAcceptances, termsAcceptances } from './terms.ts';

export interface GrantStore {
  /** The account's live grants; in the caller's transaction when one is given. */
  list(accountId: string, trx?: Transaction<Database>): Promise<{ grantId: string; clientId: string; scopes: string[] }[]>;
  /** Removes a grant and every token issued under it, in the caller's transaction. */
  revoke(trx: Transaction<Database>, grantId: string): Promise<void>;
  /** Ends every session and removes every grant and token of the account, in the caller's transaction. */
  revokeAll(trx: Transaction<Database>, accountId: string): Promise<void>;
}

export interface PreferenceCenterDeps {
  db: DB;
  config: Config;
  clock: () => Date;
  grants: GrantStore;
  /** The question with this id in the screen-sets now in use. */
  question: (questionId: string) => Question | undefined;
  /** The screen-set now in use that asks this question. */
  screenSetOf: (questionId: string) => Pick<ScreenSet, 'id' | 'version'> | undefined;
  /** Keys the pseudonyms of a deleted account's consent records. */
  pseudonymSecret: string;
}

export interface AnswerEntry {
  questionId: string;
  value: AnswerValue;
  purpose: string;
  updatedAt: Date;
  /** The question as the user last answered it, and where. */
  label: string;
  clientId: string | null;
  /** The question as it is asked now; undefined when no screen-set has it any more. */
  question: Question | undefined;
}

export interface Overview {
  account: Account;
  answers: AnswerEntry[];
  consents: ReadonlyMap<string, ConsentState>;
  /** `<channel>:<topic>` → on; a toggle never set is off. */
  communication: ReadonlyMap<string, boolean>;
  apps: { clientId: string; scopes: string[] }[];
}

export type AnswerUpdate = { ok: true } | { ok: false; reason: 'not_found' } | { ok: false; reason: 'invalid'; rejection: AnswerRejection };

const SOURCE: AnswerSource = 'preference_center';

export function createPreferenceCenter(deps: PreferenceCenterDeps) {
  const { db, config, clock, grants } = deps;
  const toggleIds = new Set(config.communication.channels.flatMap((channel) => Object.keys(config.communication.topics).map((topic) => `${channel}:${topic}`)));

  /** The account's answers, or the one answer to `questionId`. */
  async function answerEntries(accountId: string, questionId?: string): Promise<AnswerEntry[]> {
    return (await storedEntries(db, accountId, questionId)).map((entry) => ({
      ...entry, label: entry.label ?? entry.questionId, question: deps.question(entry.questionId),
    }));
  }

  return {
    async overview(accountId: string): Promise<Overview | undefined> {
      const account = await db.selectFrom('accounts').selectAll().where('id', '=', accountId).executeTakeFirst();
      if (!account) return undefined;
      const [answers, consents, communication, granted] = await Promise.all([
        answerEntries(accountId), consentStates(db, accountId), communicationState(db, accountId), grants.list(accountId),
      ]);
      const apps = new Map<string, Set<string>>();
      for (const grant of granted) {
        const scopes = apps.get(grant.clientId) ?? new Set();
        for (const scope of grant.scopes) scopes.add(scope);
        apps.set(grant.clientId, scopes);
      }
      return {
        account, answers, consents, communication,
        apps: [...apps].map(([clientId, scopes]) => ({ clientId, scopes: [...scopes] })).sort((a, b) => a.clientId.localeCompare(b.clientId)),
      };
    },

    /** One of the account's answers, as the overview lists it. */
    async answer(accountId: string, questionId: string): Promise<AnswerEntry | undefined> {
      return (await answerEntries(accountId, questionId))[0];
    },

    /** Changes an answer, validated as on the question screen. */
    async updateAnswer(input: { accountId: string; questionId: string; raw: string[]; locale: string }): Promise<AnswerUpdate> {
      const question = deps.question(input.questionId);
      const now = clock();
      if (!question) return { ok: false, reason: 'not_found' };
      const check = validateAnswer(question, input.raw, now);
      if (!check.ok) return { ok: false, reason: 'invalid', rejection: check };
      // Blank means "no answer": the same as deleting it.
      if (check.value === null) {
        await db.transaction().execute((trx) => eraseAnswers(trx, input.accountId, [input.questionId], { locale: input.locale, source: SOURCE }, now));
        return { ok: true };
      }
      const set = deps.screenSetOf(input.questionId);
      if (!set) return { ok: false, reason: 'not_found' };
      const value = check.value;
      const found = await db.transaction().execute((trx) => changeAnswer(trx, config, {
        accountId: input.accountId, question, set: { id: set.id, version: set.version }, value, locale: input.locale, source: SOURCE,
        // The preference center is an app like the others, signed in through its built-in client:
        // the history names it, as a question screen names the app it was shown in (the source
        // still says which surface). Its own "answered in" line reads question-screen rows only.
        clientId: ACCOUNT_CLIENT_ID,
      }, now));
      return found ? { ok: true } : { ok: false, reason: 'not_found' };
    },

    async deleteAnswer(accountId: string, questionId: string, locale: string): Promise<void> {
      await db.transaction().execute((trx) => eraseAnswers(trx, accountId, [questionId], { locale, source: SOURCE }, clock()));
    },

    /** Grants or withdraws a consent-based purpose; a withdrawal may erase the answers given under it. */
    async setConsent(input: { accountId: string; purpose: string; action: 'granted' | 'withdrawn'; deleteAnswers: boolean; locale: string }): Promise<boolean> {
      const purpose = config.purposes[input.purpose];
      if (!purpose || purpose.legal_basis !== 'consent') return false;
      const now = clock();
      await db.transaction().execute(async (trx) => {
        await recordConsent(trx, config, {
          accountId: input.accountId, purpose: input.purpose, action: input.action, clientId: null, source: SOURCE, locale: input.locale,
        }, now);
        if (input.action === 'withdrawn' && input.deleteAnswers) {
          await eraseAnswersUnder(trx, input.accountId, input.purpose, { locale: input.locale, source: SOURCE }, now);
        }
      });
      return true;
    },

    /** Sets every channel × topic toggle at once; only the ones that change are recorded. */
    async setCommunication(accountId: string, enabled: ReadonlySet<string>): Promise<string[]> {
      const now = clock();
      return db.transaction().execute(async (trx) => {
        const current = await communicationState(trx, accountId);
        const changes = [...toggleIds].filter((id) => (current.get(id) ?? false) !== enabled.has(id));
        if (changes.length === 0) return [];
        await trx.insertInto('communication_ledger').values(changes.map((id) => {
          const [channel, topic] = id.split(':') as [string, string];
          return { account_id: accountId, channel, topic, enabled: enabled.has(id), source: SOURCE, at: now };
        })).execute();
        await recordEvent(trx, {
          type: 'preferences.changed', accountId,
          payload: {
            account_id: accountId, source: SOURCE,
            changes: changes.map((id) => {
              const [channel, topic] = id.split(':') as [string, string];
              return { channel, topic, enabled: enabled.has(id) };
            }),
          },
        }, now);
        return changes;
      });
    },

    /** Takes an app's access away: its grants and every token under them. */
    async revokeApp(accountId: string, clientId: string): Promise<boolean> {
      const now = clock();
      // All of the app's grants or none, with the event that records it (the audit trail, and
      // the word to downstream systems that the app lost access).
      return db.transaction().execute(async (trx) => {
        const granted = (await grants.list(accountId, trx)).filter((g) => g.clientId === clientId);
        if (granted.length === 0) return false;
        for (const grant of granted) await grants.revoke(trx, grant.grantId);
        await recordEvent(trx, { type: 'app.revoked', accountId, payload: { account_id: accountId, client_id: clientId, source: SOURCE } }, now);
        return true;
      });
    },

    /**
     * Everything Parley holds about the account, as one JSON-ready object. Read in one
     * repeatable-read transaction: every table as of the same moment, so an answer changed while
     * the export runs is in it with its history row, or not at all.
     */
    async exportData(accountId: string): Promise<Record<string, unknown> | undefined> {
      const read = await db.transaction().setIsolationLevel('repeatable read').execute(async (trx) => {
        const account = await trx.selectFrom('accounts')
          .select(['id', 'email', 'name', 'locale', 'email_verified_at', 'created_at', 'updated_at'])
          .where('id', '=', accountId).executeTakeFirst();
        if (!account) return undefined;
        const { answers, history, rewards } = await exportRows(trx, accountId);
        const consents = await trx.selectFrom('consent_ledger').select(['purpose', 'purpose_version', 'action', 'client_id', 'source', 'locale', 'text_hash', 'at'])
          .where('subject', '=', accountId).orderBy('id').execute();
        const communication = await trx.selectFrom('communication_ledger').select(['channel', 'topic', 'enabled', 'source', 'at'])
          .where('account_id', '=', accountId).orderBy('id').execute();
        const prompts = await trx.selectFrom('prompt_log').select(['set_id', 'set_version', 'question_id', 'outcome', 'client_id', 'at'])
          .where('account_id', '=', accountId).orderBy('id').execute();
        const current = await communicationState(trx, accountId);
        const granted = await grants.list(accountId, trx);
        const terms = await termsAcceptances(trx, accountId);
        return { account, answers, history, consents, communication, rewards, prompts, current, granted, terms };
      });
      if (!read) return undefined;
      const { account, answers, history, consents, communication, rewards, prompts, current, granted, terms } = read;
      return {
        format: 'parley.export.v1',
        exported_at: clock().toISOString(),
        account,
        answers,
        answer_history: history,
        consents: consents,
        communication_preferences: {
          current: [...toggleIds].map((id) => {
            const [channel, topic] = id.split(':') as [string, string];
            return { channel, topic, enabled: current.get(id) ?? false };
          }),
          history: communication,
        },
        rewards,
        prompt_log: prompts,
        connected_apps: granted.map((g) => ({ client_id: g.clientId, scopes: g.scopes })),
        terms_acceptances: terms,
      };
    },

    /**
     * Deletes the account and its personal data (answers, history, preferences, rewards, prompt
     * log, tokens, sessions and grants) in one transaction. The consent ledger stays, as proof,
     * under a pseudonym; the account.deleted event tells downstream systems to erase their copies.
     */
    async deleteAccount(accountId: string): Promise<boolean> {
      const now = clock();
      return db.transaction().execute(async (trx) => {
        const account = await trx.selectFrom('accounts').select(['id', 'email']).where('id', '=', accountId).forUpdate().executeTakeFirst();
        if (!account) return false;
        await grants.revokeAll(trx, accountId);
        await pseudonymizeConsents(trx, accountId, deps.pseudonymSecret);
        await pseudonymizeTermsAcceptances(trx, accountId, deps.pseudonymSecret);
        await trx.deleteFrom('login_throttle').where('key', '=', `account:${account.email}`).execute();
        // Earlier events carry answers and the account id (which would tie the pseudonymized
        // consents back to it): they go, delivered or not. account.deleted tells receivers to erase.
        await trx.deleteFrom('deliveries').where('account_id', '=', accountId).execute();
        await trx.deleteFrom('outbox_events').where('account_id', '=', accountId).execute();
        // Answers, history, prompt log, rewards, preferences and email tokens go with the account (cascade).
        await trx.deleteFrom('accounts').where('id', '=', accountId).execute();
        await recordEvent(trx, { type: 'account.deleted', accountId, payload: { account_id: accountId } }, now);
        return true;
      });
    },
  };
}

/** The current toggles: the latest ledger row per channel and topic. */
async function communicationState(db: DB | Transaction<Database>, accountId: string): Promise<Map<string, boolean>> {
  const rows = await db.selectFrom('communication_ledger').select(['channel', 'topic', 'enabled'])
    .distinctOn(['channel', 'topic'])
    .where('account_id', '=', accountId)
    .orderBy('channel').orderBy('topic').orderBy('id', 'desc')
    .execute();
  return new Map(rows.map((r) => [`${r.channel}:${r.topic}`, r.enabled]));
}

export type PreferenceCenter = ReturnType<typeof createPreferenceCenter>;
