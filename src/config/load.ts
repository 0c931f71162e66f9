import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMap, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import { DomainError } from '../errors.ts';
import { baseUrlOf, completeConfig } from './derived.ts';
import { configSchema, type Config } from './schema.ts';

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const DEFAULT_CONFIG_FILE = path.join(PROJECT_ROOT, 'config/default.yaml');

export const CONFIG_ERROR_CODES = ['invalid_config'] as const;
declare module '../errors.ts' {
  interface ErrorCodes { config: (typeof CONFIG_ERROR_CODES)[number] }
}

/** Every problem found in the configuration, each naming where it is and what is expected. */
export class ConfigError extends DomainError<'config'> {
  readonly problems: string[];
  constructor(problems: string[]) {
    super('config', 'invalid_config', { message: `invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}` });
    this.problems = problems;
  }
}

export type KeyPath = (string | number)[];

interface Source {
  name: string;
  has(path: KeyPath): boolean;
  line(path: KeyPath): number | undefined;
}

export interface YamlFile extends Source { value: unknown }

/** Parses a YAML file keeping positions, so that problems can name their line. */
export function readYamlFile(file: string, problems: string[]): YamlFile | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    problems.push(`${file}: cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    return undefined;
  }
  const lineCounter = new LineCounter();
  const doc: Document = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const name = path.relative(process.cwd(), file) || file;
  if (doc.errors.length > 0) {
    for (const error of doc.errors) {
      const { line } = lineCounter.linePos(error.pos[0]);
      problems.push(`${name}:${line}: ${error.message.split('\n')[0]}`);
    }
    return undefined;
  }
  return {
    name,
    value: doc.toJS() ?? {},
    has: (p) => doc.hasIn(p),
    line: (p) => {
      // The nearest key or item that exists along the path gives the line of the problem. A key's
      // own line comes first: its value may be a block that starts on the next line.
      for (let n = p.length; n > 0; n--) {
        const parent = n === 1 ? doc.contents : doc.getIn(p.slice(0, n - 1), true);
        if (isMap(parent)) {
          const pair = parent.items.find((item) => (item.key as { value?: unknown } | null)?.value === p[n - 1]);
          const keyRange = (pair?.key as { range?: [number, number, number] } | undefined)?.range;
          if (keyRange) return lineCounter.linePos(keyRange[0]).line;
        }
        const node = doc.getIn(p.slice(0, n), true) as { range?: [number, number, number] } | undefined;
        if (node && typeof node === 'object' && node.range) return lineCounter.linePos(node.range[0]).line;
      }
      return isMap(doc.contents) || isSeq(doc.contents) ? 1 : undefined;
    },
  };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Objects merge key by key; arrays and scalars from the later source replace the earlier. */
export function deepMerge(base: unknown, over: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(over)) return over === undefined ? base : over;
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) merged[key] = deepMerge(base[key], value);
  return merged;
}

/** Environment variables that override a config key, with how their text becomes a value. */
const ENVIRONMENT: Record<string, { path: KeyPath; parse: (text: string) => unknown }> = {
  PORT: { path: ['port'], parse: (t) => Number(t) },
  ISSUER: { path: ['issuer'], parse: (t) => t },
  DATABASE_URL: { path: ['database', 'url'], parse: (t) => t },
  PARLEY_COOKIE_KEYS: { path: ['secrets', 'cookie_keys'], parse: (t) => t.split(',').map((k) => k.trim()).filter(Boolean) },
  PARLEY_KEY_ENCRYPTION_SECRET: { path: ['secrets', 'key_encryption'], parse: (t) => t },
  SMTP_URL: { path: ['mail', 'smtp_url'], parse: (t) => t },
  LOG_LEVEL: { path: ['logging', 'level'], parse: (t) => t },
  PARLEY_FIREBASE_SIGNER_KEY: { path: ['import', 'firebase_scrypt', 'signer_key'], parse: (t) => t },
  PARLEY_LEGACY_VERIFY_SECRET: { path: ['legacy_verify', 'secret'], parse: (t) => t },
};

function setIn(target: Record<string, unknown>, p: KeyPath, value: unknown): void {
  let node = target;
  for (const key of p.slice(0, -1)) {
    if (!isPlainObject(node[key])) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[p[p.length - 1] as string] = value;
}

function startsWith(p: KeyPath, prefix: KeyPath): boolean {
  return prefix.every((k, i) => p[i] === k);
}

function environmentOverrides(env: NodeJS.ProcessEnv): { overrides: Record<string, unknown>; variableFor(p: KeyPath): string | undefined } {
  const overrides: Record<string, unknown> = {};
  const used: string[] = [];
  for (const [name, { path: p, parse }] of Object.entries(ENVIRONMENT)) {
    const text = env[name];
    if (text === undefined || text === '') continue;
    setIn(overrides, p, parse(text));
    used.push(name);
  }
  if (env.NODE_ENV === 'production') setIn(overrides, ['env'], 'production');
  return {
    overrides,
    variableFor: (p) => used.find((name) => startsWith(p, ENVIRONMENT[name]!.path)),
  };
}

export function formatPath(p: readonly PropertyKey[]): string {
  return p.map((k, i) => (typeof k === 'number' ? `[${k}]` : `${i === 0 ? '' : '.'}${String(k)}`)).join('') || '(top level)';
}

function substituteIssuer(value: unknown, issuer: string): unknown {
  if (typeof value === 'string') return value.replaceAll('${issuer}', baseUrlOf(issuer));
  if (Array.isArray(value)) return value.map((v) => substituteIssuer(v, issuer));
  if (isPlainObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substituteIssuer(v, issuer)]));
  return value;
}

function hasIn(value: unknown, p: KeyPath): boolean {
  let node = value;
  for (const key of p) {
    if (!isPlainObject(node) && !Array.isArray(node)) return false;
    if (!(key in (node as object))) return false;
    node = (node as Record<string | number, unknown>)[key];
  }
  return true;
}

export interface LoadOptions {
  /** A config file merged over the defaults; PARLEY_CONFIG when not given. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Applied last: tests and benchmarks use this instead of files. */
  overrides?: Record<string, unknown>;
}

/**
 * Reads defaults, the PARLEY_CONFIG file and the environment; throws ConfigError listing every
 * problem. The result is frozen: settings change by loading again (a restart), never in place.
 */
export function loadConfig(options: LoadOptions = {}): Config {
  const env = options.env ?? process.env;
  const problems: string[] = [];
  const files: YamlFile[] = [];
  let merged: unknown = {};
  for (const file of [DEFAULT_CONFIG_FILE, options.file ?? env.PARLEY_CONFIG]) {
    if (!file) continue;
    const source = readYamlFile(path.resolve(file), problems);
    if (!source) continue;
    if (!isPlainObject(source.value)) {
      problems.push(`${source.name}: expected a mapping of settings at the top level`);
      continue;
    }
    files.push(source);
    merged = deepMerge(merged, source.value);
  }
  const environment = environmentOverrides(env);
  merged = deepMerge(merged, environment.overrides);
  if (options.overrides) merged = deepMerge(merged, options.overrides);
  if (problems.length > 0) throw new ConfigError(problems);

  // Whoever set a key last is the one to blame for it.
  const describe = (p: KeyPath, message: string): string => {
    if (options.overrides && hasIn(options.overrides, p)) return `overrides: ${formatPath(p)}: ${message}`;
    const variable = environment.variableFor(p);
    if (variable) return `environment ${variable}: ${formatPath(p)}: ${message}`;
    const file = [...files].reverse().find((f) => f.has(p)) ?? files[files.length - 1];
    if (!file) return `${formatPath(p)}: ${message}`;
    const line = file.line(p);
    return `${file.name}${line ? `:${line}` : ''}: ${formatPath(p)}: ${message}`;
  };

  if (isPlainObject(merged) && typeof merged.issuer === 'string') merged = substituteIssuer(merged, merged.issuer);
  const result = configSchema.safeParse(merged);
  if (!result.success) {
    for (const issue of result.error.issues) {
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) {
          problems.push(describe([...issue.path as KeyPath, key], 'unknown key; check its spelling and place (config/default.yaml lists every key)'));
        }
      } else {
        problems.push(describe(issue.path as KeyPath, issue.message));
      }
    }
    throw new ConfigError(problems);
  }
  return completeConfig(result.data);
}

const DEVELOPMENT_SECRETS = ['development-cookie-key-change-me', 'development-key-encryption-secret-change-me'];

/** Settings that are fine on a laptop and dangerous anywhere else. */
export function developmentDefaultsInUse(config: Config): string[] {
  const warnings: string[] = [];
  if (config.secrets.cookie_keys.some((k) => DEVELOPMENT_SECRETS.includes(k))) {
    warnings.push('secrets.cookie_keys is the public development default: set PARLEY_COOKIE_KEYS');
  }
  if (DEVELOPMENT_SECRETS.includes(config.secrets.key_encryption)) {
    warnings.push('secrets.key_encryption is the public development default: set PARLEY_KEY_ENCRYPTION_SECRET');
  }
  for (const c of config.clients) {
    if (c.client_secret?.endsWith('change-me')) warnings.push(`clients: "${c.client_id}" uses a development client_secret`);
  }
  // Verification and reset links written to a local directory reach nobody in production.
  if (config.mail.smtp_url === '') warnings.push('mail.smtp_url is empty, so emails go to the development mailbox: set SMTP_URL');
  return warnings;
}
