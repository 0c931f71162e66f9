import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const LOCALES_DIR = fileURLToPath(new URL('./locales', import.meta.url));

/** The locale the others are translated from. A unit test keeps every locale on its key set. */
const SOURCE_LOCALE = 'en';

/** locale → message key → message text. Keys are flat ("login.submit") so they are easy to grep. */
export type Messages = Record<string, Record<string, string>>;

export type MessageVars = Record<string, string | number>;

/** Reads every `<locale>.json` in the locales folder; a malformed file stops the start. */
export function loadMessages(dir: string = LOCALES_DIR): Messages {
  const messages: Messages = {};
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
    const where = path.join(dir, file);
    const parsed: unknown = JSON.parse(readFileSync(where, 'utf8'));
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error(`${where}: expected an object of message key → text`);
    for (const [key, text] of Object.entries(parsed)) {
      if (typeof text !== 'string') throw new Error(`${where}: "${key}" must be a string`);
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
 * Messages use a small subset of ICU MessageFormat: `{name}` inserts a variable, and
 * `{count, plural, one {# item} other {# items}}` picks a branch by the locale's plural rules
 * (`=N` branches match exactly; `#` is the number). Arabic needs all six plural categories, so
 * counts are never glued to a fixed noun form in the source text.
 */
export function translate(locale: string, key: string, vars: MessageVars = {}, fallback: string = SOURCE_LOCALE): string {
  const all = bundledMessages();
  for (const candidate of [locale, fallback, SOURCE_LOCALE]) {
    const text = all[candidate]?.[key];
    if (text !== undefined) return format(candidate, text, vars);
  }
  return key;
}

// One pass over the text, so a variable's value is never itself scanned for placeholders.
const PLACEHOLDER = /\{(\w+), plural,((?:\s*(?:=\d+|zero|one|two|few|many|other)\s*\{[^{}]*\})+)\s*\}|\{(\w+)\}/g;
const PLURAL_BRANCH = /(=\d+|zero|one|two|few|many|other)\s*\{([^{}]*)\}/g;

// Unicode "first strong isolate" … "pop directional isolate": an email address or a name inside an
// Arabic sentence keeps its own direction and does not drag neighbouring punctuation with it
// (Fluent isolates its placeables the same way).
const FSI = '\u2068';
const PDI = '\u2069';

// Intl formatters are costly to build and every page formats dozens of messages: one per locale.
const numberFormats = new Map<string, Intl.NumberFormat>();
const pluralRules = new Map<string, Intl.PluralRules>();
const cached = <T>(cache: Map<string, T>, locale: string, make: () => T): T => {
  let value = cache.get(locale);
  if (value === undefined) cache.set(locale, value = make());
  return value;
};

function format(locale: string, text: string, vars: MessageVars): string {
  if (!text.includes('{')) return text;
  const numbers = cached(numberFormats, locale, () => new Intl.NumberFormat(locale));
  const show = (value: string | number) => (typeof value === 'number' ? numbers.format(value) : FSI + value + PDI);
  return text.replace(PLACEHOLDER, (whole, pluralName: string | undefined, branches: string | undefined, name: string | undefined) => {
    if (name !== undefined) return Object.hasOwn(vars, name) ? show(vars[name]!) : whole;
    const count = vars[pluralName!];
    if (typeof count !== 'number') return whole;
    const options = new Map([...branches!.matchAll(PLURAL_BRANCH)].map((m) => [m[1]!, m[2]!]));
    const branch = options.get(`=${count}`) ?? options.get(cached(pluralRules, locale, () => new Intl.PluralRules(locale)).select(count)) ?? options.get('other');
    return branch === undefined ? whole : branch.replaceAll('#', numbers.format(count));
  });
}

/** A BCP 47 language tag as it may appear in ui_locales or Accept-Language. */
const LANGUAGE_TAG = /^[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*$/;

export interface LocaleRequest {
  /** OIDC `ui_locales`: space-separated tags in order of preference (OIDC Core 3.1.2.1). */
  uiLocales?: string | undefined;
  /** The Accept-Language header, with q-values (RFC 9110 12.5.4). */
  acceptLanguage?: string | undefined;
  supported: readonly string[];
  fallback: string;
}

/**
 * The first supported locale the request asks for: ui_locales in order, then Accept-Language by
 * q-value, then the fallback. A region or script the project does not have falls back to its
 * language ("ar-EG" → "ar"), and a bare language finds its regional variant ("pt" → "pt-BR").
 */
export function pickLocale({ uiLocales, acceptLanguage, supported, fallback }: LocaleRequest): string {
  for (const tag of [...parseUiLocales(uiLocales), ...parseAcceptLanguage(acceptLanguage)]) {
    const match = matchSupported(tag, supported);
    if (match) return match;
  }
  return fallback;
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

function matchSupported(tag: string, supported: readonly string[]): string | undefined {
  const wanted = tag.toLowerCase();
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
