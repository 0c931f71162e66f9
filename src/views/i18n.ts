import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, TYPE, type MessageFormatElement } from '@formatjs/icu-messageformat-parser';
import IntlMessageFormat from 'intl-messageformat';

const LOCALES_DIR = fileURLToPath(new URL('./locales', import.meta.url));

/** The locale the others are translated from. A unit test keeps every locale on its key set. */
const SOURCE_LOCALE = 'en';

/** locale → message key → message text. Keys are flat ("login.submit") so they are easy to grep. */
export type Messages = Record<string, Record<string, string>>;

export type MessageVars = Record<string, string | number>;

// Our messages are plain text (templates escape them); "<" is a character, never a tag. Every
// plural and select needs its `other` branch: a count no branch covers must still say something.
const PARSE_OPTIONS = { ignoreTag: true, requiresOtherClause: true } as const;

/** Parses one message as ICU MessageFormat; throws with the file and key when it is malformed. */
export function parseMessage(text: string, where = 'message'): MessageFormatElement[] {
  try {
    return parse(text, PARSE_OPTIONS);
  } catch (error) {
    throw new Error(`${where}: not valid ICU MessageFormat (${(error as Error).message})`, { cause: error });
  }
}

/**
 * Reads every `<locale>.json` in the locales folder. A malformed file, or a message that does not
 * parse, stops the start: a translation mistake is found when it is made, not by the person who
 * meets the broken page.
 */
export function loadMessages(dir: string = LOCALES_DIR): Messages {
  const messages: Messages = {};
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
    const where = path.join(dir, file);
    const parsed: unknown = JSON.parse(readFileSync(where, 'utf8'));
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error(`${where}: expected an object of message key → text`);
    for (const [key, text] of Object.entries(parsed)) {
      if (typeof text !== 'string') throw new Error(`${where}: "${key}" must be a string`);
      parseMessage(text, `${where}: "${key}"`);
    }
    messages[path.basename(file, '.json')] = parsed as Record<string, string>;
  }
  return messages;
}

let loaded: Messages | undefined;

/** The shipped messages, read once on first use. */
export function bundledMessages(): Messages {
  loaded ??= loadMessages();
  return loaded;
}

/**
 * The message for `key` in `locale`, else in `fallback`, else in the source locale, else the key
 * itself (so a missing translation shows up as a key, never as a crash).
 *
 * Messages are ICU MessageFormat, formatted by FormatJS's intl-messageformat in the language the
 * text is written in: `{name}` inserts a variable, `{count, plural, one {# item} other {# items}}`
 * picks a branch by that language's CLDR plural rules (Arabic has six categories, Hebrew uses
 * one/two/other), `{choice, select, …}` picks by value, and `{n, number}` / `{d, date, medium}`
 * format through Intl. A variable that is missing stays visible ("{seconds}"); a plural, select or
 * number whose variable is missing leaves the whole message unformatted, never a crash.
 */
export function translate(locale: string, key: string, vars: MessageVars = {}, fallback: string = SOURCE_LOCALE): string {
  const all = bundledMessages();
  for (const candidate of [locale, fallback, SOURCE_LOCALE]) {
    const text = all[candidate]?.[key];
    if (text !== undefined) return format(candidate, key, text, vars);
  }
  return key;
}

// Unicode "first strong isolate" … "pop directional isolate": an email address or a name inside an
// Arabic or Hebrew sentence keeps its own direction and does not drag neighbouring punctuation
// with it (Fluent isolates its placeables the same way). intl-messageformat inserts values as
// they are, so the isolation is ours to add.
const FSI = '\u2068';
const PDI = '\u2069';

// A plain `{name}` is shown through a name of its own: the same variable can then feed a plural
// or a number format unchanged and be inserted as text (isolated, or as a number in the
// locale's digits and grouping, as ICU formats a number in a plain argument and
// intl-messageformat does not).
const SHOWN = 'shown:';

interface CompiledMessage {
  formatter: IntlMessageFormat;
  /** Variables inserted as plain `{name}`. */
  shown: string[];
  /** Variables a plural, select, number or date element reads as they are. */
  raw: string[];
}

/** One formatter per locale and key, built on first use: every page formats dozens of messages. */
const compiled = new Map<string, CompiledMessage>();
const numberFormats = new Map<string, Intl.NumberFormat>();

function compile(locale: string, text: string): CompiledMessage {
  const shown = new Set<string>();
  const raw = new Set<string>();
  const rewrite = (elements: MessageFormatElement[]): MessageFormatElement[] => elements.map((element) => {
    if (element.type === TYPE.argument) {
      shown.add(element.value);
      return { ...element, value: SHOWN + element.value };
    }
    if (element.type === TYPE.plural || element.type === TYPE.select) {
      raw.add(element.value);
      const options = Object.fromEntries(Object.entries(element.options).map(([branch, option]) => [branch, { ...option, value: rewrite(option.value) }]));
      return { ...element, options };
    }
    if (element.type === TYPE.number || element.type === TYPE.date || element.type === TYPE.time) raw.add(element.value);
    return element;
  });
  const ast = rewrite(parseMessage(text));
  return { formatter: new IntlMessageFormat(ast, locale), shown: [...shown], raw: [...raw] };
}

function format(locale: string, key: string, text: string, vars: MessageVars): string {
  const id = `${locale}\u0000${key}`;
  let message = compiled.get(id);
  if (message === undefined) compiled.set(id, message = compile(locale, text));
  const values: Record<string, string | number> = {};
  for (const name of message.raw) {
    if (!Object.hasOwn(vars, name)) return text;
    values[name] = vars[name]!;
  }
  for (const name of message.shown) {
    const value = Object.hasOwn(vars, name) ? vars[name]! : undefined;
    values[SHOWN + name] = value === undefined ? `{${name}}`
      : typeof value === 'number' ? formatNumber(locale, value)
        : FSI + value + PDI;
  }
  return message.formatter.format(values) as string;
}

function formatNumber(locale: string, value: number): string {
  let numbers = numberFormats.get(locale);
  if (numbers === undefined) numberFormats.set(locale, numbers = new Intl.NumberFormat(locale));
  return numbers.format(value);
}

/** A BCP 47 language tag as it may appear in ui_locales or Accept-Language. */
const LANGUAGE_TAG = /^[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*$/;

export interface LocaleRequest {
  /** The language the person picked with the switcher on a page: their own word outranks every guess. */
  chosen?: string | null | undefined;
  /** OIDC `ui_locales`: space-separated tags in order of preference (OIDC Core 3.1.2.1). */
  uiLocales?: string | undefined;
  /** The locale saved on the signed-in account (its `locale` claim). */
  accountLocale?: string | null | undefined;
  /** The Accept-Language header, with q-values (RFC 9110 12.5.4). */
  acceptLanguage?: string | undefined;
  supported: readonly string[];
  fallback: string;
}

/**
 * The first supported locale the request asks for: the person's own choice, then ui_locales in
 * order, then the account's saved locale, then Accept-Language by q-value, then the fallback. A
 * region or script the project does not have falls back to its language ("he-IL" → "he"), a bare
 * language finds its regional variant ("pt" → "pt-BR"), and a language the project does not
 * speak at all ("pt-BR" with no Portuguese) is passed over.
 */
export function pickLocale(request: LocaleRequest): string {
  return preferredLocale(request) ?? request.fallback;
}

/** Like pickLocale, but undefined instead of the fallback: so a caller can look further (the account) only when needed. */
export function preferredLocale({ chosen, uiLocales, accountLocale, acceptLanguage, supported }: Omit<LocaleRequest, 'fallback'>): string | undefined {
  const single = (tag: string | null | undefined) => (tag && LANGUAGE_TAG.test(tag) ? [tag] : []);
  for (const tag of [...single(chosen), ...parseUiLocales(uiLocales), ...single(accountLocale), ...parseAcceptLanguage(acceptLanguage)]) {
    const match = matchSupported(tag, supported);
    if (match) return match;
  }
  return undefined;
}

/**
 * pickLocale, reading the account's saved locale only when the person's choice and ui_locales
 * leave the question open: it costs a database read, and most requests never need it.
 */
export async function negotiateLocale(
  request: Omit<LocaleRequest, 'accountLocale'> & { accountLocale?: (() => Promise<string | null | undefined>) | undefined },
): Promise<string> {
  const { chosen, uiLocales, acceptLanguage, supported, fallback } = request;
  const early = preferredLocale({ chosen, uiLocales, supported });
  if (early) return early;
  const accountLocale = await request.accountLocale?.();
  return pickLocale({ accountLocale, acceptLanguage, supported, fallback });
}

function parseUiLocales(header: string | undefined): string[] {
  return (header ?? '').split(/\s+/).filter((tag) => LANGUAGE_TAG.test(tag));
}

function parseAcceptLanguage(header: string | undefined): string[] {
  const ranked: { tag: string; q: number }[] = [];
  for (const part of (header ?? '').split(',')) {
    const [tag = '', ...params] = part.split(';').map((s) => s.trim());
    if (!LANGUAGE_TAG.test(tag)) continue; // also drops "*": the fallback already covers "anything"
    const qParam = params.find((p) => /^q=/i.test(p));
    const q = qParam === undefined ? 1 : /^q=(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/i.test(qParam) ? Number(qParam.slice(2)) : Number.NaN;
    if (q > 0) ranked.push({ tag, q }); // q=0 means "not this one"; a malformed q is ignored
  }
  // Array.prototype.sort is stable, so equal q-values keep the order the client sent.
  return ranked.sort((a, b) => b.q - a.q).map((r) => r.tag);
}

/** The canonical form of a tag: case, and deprecated codes replaced ("iw" → "he", as older Android sends). */
function canonical(tag: string): string {
  try {
    return Intl.getCanonicalLocales(tag)[0]!.toLowerCase();
  } catch {
    return tag.toLowerCase(); // well-formed by our pattern yet not valid BCP 47: matched as written
  }
}

function matchSupported(tag: string, supported: readonly string[]): string | undefined {
  const wanted = canonical(tag);
  const byLower = new Map(supported.map((s) => [s.toLowerCase(), s]));
  // RFC 4647 lookup: drop subtags from the end until something matches.
  const subtags = wanted.split('-');
  for (let n = subtags.length; n > 0; n--) {
    const match = byLower.get(subtags.slice(0, n).join('-'));
    if (match) return match;
  }
  const language = subtags[0];
  return supported.find((s) => s.toLowerCase().split('-')[0] === language);
}

// Languages written right to left in their usual script.
const RTL_LANGUAGES = new Set(['ar', 'ckb', 'dv', 'fa', 'he', 'ps', 'ur', 'yi']);

export function direction(locale: string): 'rtl' | 'ltr' {
  return RTL_LANGUAGES.has(locale.toLowerCase().split('-')[0]!) ? 'rtl' : 'ltr';
}

/** The language's name in itself ("עברית", "ไทย"), as a language switcher lists it. */
export function languageName(locale: string): string {
  try {
    return new Intl.DisplayNames([locale], { type: 'language' }).of(locale) ?? locale;
  } catch {
    return locale;
  }
}
