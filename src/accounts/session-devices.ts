import { isIPv4, isIPv6 } from 'node:net';
import type { Transaction } from 'kysely';
import { recordEvent } from '../events/outbox.ts';
import type { DB } from '../storage/database.ts';
import type { Database } from '../storage/schema.ts';

// The signed-in sessions a person can see and end in /account/security: which browser on which
// system (from the user agent), a coarse place (the address's /24 or /48: no lookup service, and
// the whole address is never kept), first and last seen. Ending sessions is the provider's
// (revoke, passed in); the session.revoked event goes in the same transaction.

export interface SessionView {
  uid: string;
  browser: string | undefined;
  os: string | undefined;
  place: string | undefined;
  firstSeen: Date | undefined;
  lastSeen: Date | undefined;
}

const BROWSERS: [RegExp, string][] = [
  [/\bEdg(?:e|A|iOS)?\//, 'Edge'], [/\bOPR\//, 'Opera'], [/\bSamsungBrowser\//, 'Samsung Internet'], [/\bFirefox\/|\bFxiOS\//, 'Firefox'],
  [/\bChrome\/|\bCriOS\//, 'Chrome'], [/\bVersion\/[\d.]+.*\bSafari\//, 'Safari'],
];
const SYSTEMS: [RegExp, string][] = [
  [/\b(iPhone|iPad|iPod)\b/, 'iOS'], [/\bAndroid\b/, 'Android'], [/\bCrOS\b/, 'ChromeOS'], [/\bWindows\b/, 'Windows'],
  [/\bMac OS X\b|\bMacintosh\b/, 'macOS'], [/\bLinux\b/, 'Linux'],
];

/** The browser and the system a user agent names, as far as the common ones go. */
export function describeUserAgent(userAgent: string): { browser: string | undefined; os: string | undefined } {
  return { browser: BROWSERS.find(([re]) => re.test(userAgent))?.[1], os: SYSTEMS.find(([re]) => re.test(userAgent))?.[1] };
}

/** The network an address is in: its /24 for IPv4, its /48 for IPv6; undefined for anything else. */
export function ipPrefix(ip: string): string | undefined {
  const address = ip.startsWith('::ffff:') && isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
  if (isIPv4(address)) return `${address.split('.').slice(0, 3).join('.')}.0/24`;
  if (!isIPv6(address)) return undefined;
  const [head = '', tail = ''] = address.split('::');
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const groups = address.includes('::') ? [...headGroups, ...Array(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups] : headGroups;
  return `${groups.slice(0, 3).map((g) => Number.parseInt(g || '0', 16).toString(16)).join(':')}::/48`;
}

/** Notes that a signed-in session was used from this browser and address. */
export async function recordSessionSeen(db: DB, input: { sessionUid: string; accountId: string; userAgent: string; ip: string; now: Date }): Promise<void> {
  const row = { user_agent: input.userAgent.slice(0, 512), ip_prefix: ipPrefix(input.ip) ?? '', last_seen_at: input.now };
  await db.insertInto('session_devices')
    .values({ session_uid: input.sessionUid, account_id: input.accountId, first_seen_at: input.now, ...row })
    .onConflict((oc) => oc.column('session_uid').doUpdateSet({ ...row, account_id: input.accountId }))
    .execute();
}

/** The account's live sessions, most recently seen first. */
export async function listSessions(db: DB, accountId: string, now: Date): Promise<SessionView[]> {
  const rows = await db.selectFrom('oidc_payloads as s')
    .leftJoin('session_devices as d', 'd.session_uid', 's.uid')
    .select(['s.uid', 'd.user_agent', 'd.ip_prefix', 'd.first_seen_at', 'd.last_seen_at'])
    .where('s.model', '=', 'Session').where('s.account_id', '=', accountId).where('s.uid', 'is not', null)
    .where((eb) => eb.or([eb('s.expires_at', 'is', null), eb('s.expires_at', '>', now)]))
    .execute();
  return rows
    .map((r) => ({
      uid: r.uid!, ...describeUserAgent(r.user_agent ?? ''), place: r.ip_prefix || undefined,
      firstSeen: r.first_seen_at ?? undefined, lastSeen: r.last_seen_at ?? undefined,
    }))
    .sort((a, b) => (b.lastSeen?.getTime() ?? 0) - (a.lastSeen?.getTime() ?? 0));
}

/** Which sessions to end: one of them, or every one but this browser's. */
export type SessionSelection = { only: string } | { allBut: string };

/**
 * Ends sessions of the account (`revoke` deletes them, and with allBut the account's grants and
 * refresh tokens), with a session.revoked event in the same transaction. Returns how many ended.
 */
export async function signOutSessions(
  db: DB, accountId: string, selection: SessionSelection, now: Date,
  revoke: (trx: Transaction<Database>, accountId: string, selection: SessionSelection) => Promise<number>,
): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const ended = await revoke(trx, accountId, selection);
    if (ended === 0 && 'only' in selection) return 0;
    await trx.deleteFrom('session_devices').where('account_id', '=', accountId)
      .where('session_uid', 'only' in selection ? '=' : '!=', 'only' in selection ? selection.only : selection.allBut).execute();
    await recordEvent(trx, {
      type: 'session.revoked', accountId,
      payload: { account_id: accountId, scope: 'only' in selection ? 'one' : 'all_others', sessions: ended },
    }, now);
    return ended;
  });
}
