import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from '../../src/config/load.ts';
import { thrown } from './thrown.ts';

/** A config file with this text, in a directory of its own. */
export function configFile(text: string): string {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'parley-config-')), 'parley.yaml');
  writeFileSync(file, text);
  return file;
}

/** The problems of the ConfigError that `load` throws; fails if it throws none. */
export function problemsOf(load: () => unknown): string[] {
  return thrown(load, ConfigError).problems;
}
