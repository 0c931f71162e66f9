// What a signed-in user can see and do with their own data: answers, consents, communication
// preferences, the apps holding a grant, a full export, and deleting the account. Every change
// writes its history or ledger row and its outbox event in the same transaction. Knows nothing of
// HTTP; the grants come in as functions, since only src/oidc knows how they are stored.
import type { Transaction } from 'kysely';
import type { Config } from '../config/schema.ts';
import { recordEvent } from '../events/outbox.ts';
import { validateAnswer, type AnswerRejection, type AnswerValue } from '../screensets/engine.ts';
import { localize } from '../screensets/loader.ts';
import type { Question } from '../screensets/format.ts';
import type { DB } from '../storage/database.ts';
import type { Account, AnswerSource, Database } from '../storage/schema.ts';
import { consentSnapshot, consentStates, pseudonymizeConsents, recordConsent, type ConsentState } from './ledger.ts';
import { pseudonymizeTermsAcceptances, termsAcceptances } from './terms.ts';

export interface GrantStore {
  list(accountId: string): Promise<{ grantId: string; clientId: string; scopes: string[] }[]>;
  /** Removes a grant and every token issued under it. */
  revoke(grantId: string): Promise<void>;
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
    let query = db.selectFrom('answers as a')
      .select(['a.question_id', 'a.value', 'a.purpose', 'a.updated_at'])
      // The latest history row tells how the question read and in which app it was answered.
      .select((eb) => [
        eb.selectFrom('answer_history as h').select('h.label')
          .whereRef('h.account_id', '=', 'a.account_id').whereRef('h.question_id', '=', 'a.question_id')
          .orderBy('h.id', 'desc').limit(1).as('label'),
        eb.selectFrom('answer_history as h').select('h.client_id')
          .whereRef('h.account_id', '=', 'a.account_id').whereRef('h.question_id', '=', 'a.question_id').where('h.source', '=', 'screen')
          .orderBy('h.id', 'desc').limit(1).as('client_id'),
      ])
      .where('a.account_id', '=', accountId)
      .orderBy('a.updated_at', 'desc').orderBy('a.question_id');
    if (questionId !== undefined) query = query.where('a.question_id', '=', questionId);
    const rows = await query.execute();
    return rows.map((r) => ({
      questionId: r.question_id, value: r.value as AnswerValue, purpose: r.purpose, updatedAt: r.updated_at,
      label: r.label ?? r.question_id, clientId: r.client_id ?? null, question: deps.question(r.question_id),
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
      const value = check.value;
      const found = await db.transaction().execute(async (trx) => {
        const before = await trx.selectFrom('answers').select(['value', 'set_id']).where('account_id', '=', input.accountId)
          .where('question_id', '=', input.questionId).forUpdate().executeTakeFirst();
        if (!before) return false;
        const json = JSON.stringify(value);
        await trx.updateTable('answers').set({ value: json, updated_at: now, purpose: question.purpose })
          .where('account_id', '=', input.accountId).where('question_id', '=', input.questionId).execute();
        await trx.insertInto('answer_history').values({
          account_id: input.accountId, question_id: input.questionId, value: json, purpose: question.purpose, set_id: before.set_id,
          set_version: 0, label: localize(question.label, input.locale, config.locales.default), locale: input.locale, client_id: null, source: SOURCE, recorded_at: now,
        }).execute();
        if (JSON.stringify(before.value) !== json) {
          const consent = consentSnapshot(question.purpose, config.purposes[question.purpose], (await consentStates(trx, input.accountId)).get(question.purpose));
          await recordEvent(trx, {
            type: 'answer.changed', accountId: input.accountId,
            payload: {
              account_id: input.accountId, question_id: input.questionId, purpose: question.purpose, value,
              previous_value: before.value, locale: input.locale, source: SOURCE, consent,
            },
          }, now);
        }
        return true;
      });
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
          const under = await trx.selectFrom('answers').select('question_id')
            .where('account_id', '=', input.accountId).where('purpose', '=', input.purpose).execute();
          await eraseAnswers(trx, input.accountId, under.map((r) => r.question_id), { locale: input.locale, source: SOURCE }, now);
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
      const granted = (await grants.list(accountId)).filter((g) => g.clientId === clientId);
      for (const grant of granted) await grants.revoke(grant.grantId);
      return granted.length > 0;
    },

    /** Everything Parley holds about the account, as one JSON-ready object. */
    async exportData(accountId: string): Promise<Record<string, unknown> | undefined> {
      const account = await db.selectFrom('accounts')
        .select(['id', 'email', 'name', 'locale', 'email_verified_at', 'created_at', 'updated_at'])
        .where('id', '=', accountId).executeTakeFirst();
      if (!account) return undefined;
      const [answers, history, consents, communication, rewards, prompts, granted] = await Promise.all([
        db.selectFrom('answers').select(['question_id', 'value', 'purpose', 'set_id', 'created_at', 'updated_at']).where('account_id', '=', accountId).orderBy('question_id').execute(),
        db.selectFrom('answer_history').select(['question_id', 'value', 'purpose', 'set_id', 'set_version', 'label', 'locale', 'client_id', 'source', 'recorded_at'])
          .where('account_id', '=', accountId).orderBy('id').execute(),
        db.selectFrom('consent_ledger').select(['purpose', 'purpose_version', 'action', 'client_id', 'source', 'locale', 'text_hash', 'at'])
          .where('subject', '=', accountId).orderBy('id').execute(),
        db.selectFrom('communication_ledger').select(['channel', 'topic', 'enabled', 'source', 'at']).where('account_id', '=', accountId).orderBy('id').execute(),
        db.selectFrom('rewards').select(['question_id', 'points', 'label', 'granted_at']).where('account_id', '=', accountId).orderBy('question_id').execute(),
        db.selectFrom('prompt_log').select(['set_id', 'set_version', 'question_id', 'outcome', 'client_id', 'at']).where('account_id', '=', accountId).orderBy('id').execute(),
        grants.list(accountId),
      ]);
      const current = await communicationState(db, accountId);
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
        terms_acceptances: await termsAcceptances(db, accountId),
        // Upstream providers that sign in to the account, as each asserted the address.
        identities: await db.selectFrom('identities').select(['provider', 'subject', 'email', 'email_verified', 'linked_at', 'last_used_at'])
          .where('account_id', '=', accountId).orderBy('linked_at').execute(),
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
/** Deletes answers in the caller's transaction, with a history row and an answer.deleted event each. */
export async function eraseAnswers(
  trx: Transaction<Database>, accountId: string, questionIds: string[],
  how: { locale: string; source: AnswerSource | 'retention' }, now: Date,
): Promise<void> {
  if (questionIds.length === 0) return;
  const deleted = await trx.deleteFrom('answers').where('account_id', '=', accountId).where('question_id', 'in', questionIds)
    .returning(['question_id', 'purpose', 'set_id']).execute();
  if (deleted.length === 0) return;
  // Erased means erased: the history keeps when the question was answered, not what the answer was.
  await trx.updateTable('answer_history').set({ value: null })
    .where('account_id', '=', accountId).where('question_id', 'in', deleted.map((r) => r.question_id)).execute();
  for (const row of deleted) {
    await trx.insertInto('answer_history').values({
      account_id: accountId, question_id: row.question_id, value: null, purpose: row.purpose, set_id: row.set_id, set_version: 0,
      label: row.question_id, locale: how.locale, client_id: null, source: how.source, recorded_at: now,
    }).execute();
    await recordEvent(trx, {
      type: 'answer.deleted', accountId,
      payload: { account_id: accountId, question_id: row.question_id, purpose: row.purpose, source: how.source },
    }, now);
  }
}

async function communicationState(db: DB | Transaction<Database>, accountId: string): Promise<Map<string, boolean>> {
  const rows = await db.selectFrom('communication_ledger').select(['channel', 'topic', 'enabled'])
    .distinctOn(['channel', 'topic'])
    .where('account_id', '=', accountId)
    .orderBy('channel').orderBy('topic').orderBy('id', 'desc')
    .execute();
  return new Map(rows.map((r) => [`${r.channel}:${r.topic}`, r.enabled]));
}

export type PreferenceCenter = ReturnType<typeof createPreferenceCenter>;
