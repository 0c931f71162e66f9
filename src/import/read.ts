// Reading an import file record by record, however large: JSON Lines through readline, JSON
// arrays through stream-json's token stream, so that only the record at hand is ever in memory.
// A bad record never stops the rest: it comes out as {ok: false, at, error} and reading goes on.
// Only a JSON array that breaks off or is not JSON ends the file early (there is no next record
// to find in a broken document); that comes out as a last failure "at" the whole file.
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import chain from 'stream-chain';
import { parser } from 'stream-json';
import { pick } from 'stream-json/filters/pick.js';
import { streamArray } from 'stream-json/streamers/stream-array.js';
import { mapAuth0ExportUser, mapAuth0ImportUser } from './auth0.ts';
import { mapKeycloakUser } from './keycloak.ts';
import type { Mapped } from './mapped.ts';
import { createRecordParser, type ImportRecord, type RecordOptions } from './record.ts';

export const IMPORT_FORMATS = ['parley', 'keycloak', 'auth0', 'auth0-export'] as const;
export type ImportFormat = (typeof IMPORT_FORMATS)[number];

/** Where a record is in its file: a line of JSON Lines, or an element of a JSON array. */
export interface Position {
  /** 1-based line number (JSON Lines formats). */
  line?: number;
  /** 0-based element index (JSON array formats). */
  index?: number;
  /** "line 12", "users[3]", "[3]", or "file" for a problem with the file as a whole. */
  where: string;
}

export type ReadItem =
  | { ok: true; at: Position; record: ImportRecord }
  | { ok: false; at: Position; error: string };

type RawItem = { at: Position; value: unknown } | { at: Position; error: string };

async function* jsonLines(input: Readable): AsyncGenerator<RawItem> {
  const lines = createInterface({ input, crlfDelay: Infinity });
  let line = 0;
  for await (const text of lines) {
    line += 1;
    // A byte order mark some editors put before the first line is not part of the JSON.
    const json = line === 1 ? text.replace(/^\uFEFF/, '') : text;
    if (json.trim() === '') continue;
    const at = { line, where: `line ${line}` };
    try {
      yield { at, value: JSON.parse(json) as unknown };
    } catch (error) {
      yield { at, error: `not valid JSON: ${(error as Error).message}` };
    }
  }
}

async function* jsonArray(input: Readable, key: string | undefined): AsyncGenerator<RawItem> {
  // Whole strings and numbers as one token each, not also in pieces (streamValues: false): about
  // 40% faster on a Keycloak export, and nothing here needs a value in pieces.
  const pipeline = chain([input, parser({ streamValues: false }), ...(key ? [pick({ filter: key })] : []), streamArray()]);
  const label = (index: number) => `${key ?? ''}[${index}]`;
  let next = 0;
  try {
    for await (const item of pipeline as AsyncIterable<{ key: number; value: unknown }>) {
      next = item.key + 1;
      yield { at: { index: item.key, where: label(item.key) }, value: item.value };
    }
  } catch (error) {
    const after = next > 0 ? ` after ${label(next - 1)}` : '';
    yield { at: { where: 'file' }, error: `not valid JSON${after}, reading stopped: ${(error as Error).message}` };
    return;
  }
  if (next === 0 && key) {
    yield { at: { where: 'file' }, error: `no ${key}[] in the file (a Keycloak realm exported without its users? kc.sh export --users realm_file)` };
  }
}

interface FormatReader {
  source(input: Readable): AsyncGenerator<RawItem>;
  map(value: unknown): Mapped;
}

const READERS: Record<ImportFormat, FormatReader> = {
  parley: { source: jsonLines, map: (value) => ({ ok: true, value: value as Record<string, unknown> }) },
  keycloak: { source: (input) => jsonArray(input, 'users'), map: mapKeycloakUser },
  auth0: { source: (input) => jsonArray(input, undefined), map: mapAuth0ImportUser },
  'auth0-export': { source: jsonLines, map: mapAuth0ExportUser },
};

/** Every record of the file in order, checked against the line format, each with where it was. */
export async function* readImport(input: Readable, format: ImportFormat, options: RecordOptions): AsyncGenerator<ReadItem> {
  const reader = READERS[format];
  const parse = createRecordParser(options);
  for await (const raw of reader.source(input)) {
    if ('error' in raw) {
      yield { ok: false, at: raw.at, error: raw.error };
      continue;
    }
    const mapped = reader.map(raw.value);
    if (!mapped.ok) {
      yield { ok: false, at: raw.at, error: mapped.error };
      continue;
    }
    const result = parse(mapped.value, mapped.sourceKeys);
    yield result.ok ? { ok: true, at: raw.at, record: result.record } : { ok: false, at: raw.at, error: result.error };
  }
}
