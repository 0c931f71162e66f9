// The screen-sets in use: loaded once at start, where an invalid directory stops the server, and
// in development reloaded when a file changes, where an invalid edit keeps the last good version.
import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { DomainError } from '../errors.ts';
import type { ScreenSet } from './format.ts';
import { loadScreenSets, type ScreenSetContext } from './loader.ts';

export const SCREENSETS_ERROR_CODES = ['invalid_screensets'] as const;
declare module '../errors.ts' {
  interface ErrorCodes { screensets: (typeof SCREENSETS_ERROR_CODES)[number] }
}

export class ScreenSetsInvalidError extends DomainError<'screensets'> {
  readonly problems: string[];
  constructor(dir: string, problems: string[]) {
    super('screensets', 'invalid_screensets', {
      message: `invalid screen-sets in ${dir}:\n${problems.map((p) => `  - ${p}`).join('\n')}\nRun "parley screensets validate ${dir}" to check them again.`,
    });
    this.problems = problems;
  }
}

export interface ScreenSetLibrary {
  /** The sets to use now. The array is replaced, never changed, so the engine can cache by it. */
  current(): readonly ScreenSet[];
  find(id: string): ScreenSet | undefined;
  /** Stops watching the directory, if it was. */
  close(): void;
}

/** Debounce: editors write a file in several steps (truncate, write, rename). */
const RELOAD_DELAY_MS = 100;

export function openScreenSetLibrary(options: { dir: string; context: ScreenSetContext; watch: boolean; logger: Logger }): ScreenSetLibrary {
  const dir = path.resolve(options.dir);
  const { logger } = options;
  const first = loadScreenSets(dir, options.context);
  if (first.errors.length > 0) throw new ScreenSetsInvalidError(options.dir, first.errors);
  for (const warning of first.warnings) logger.warn(`screen-sets: ${warning}`);
  let sets: readonly ScreenSet[] = first.sets;
  let byId = new Map(sets.map((s) => [s.id, s]));
  logger.info({ dir: options.dir, screensets: sets.length }, 'screen-sets loaded');

  let watcher: FSWatcher | undefined;
  let timer: NodeJS.Timeout | undefined;
  const reload = () => {
    const loaded = loadScreenSets(dir, options.context);
    if (loaded.errors.length > 0) {
      logger.error({ errors: loaded.errors }, 'screen-sets: the edit is invalid; still using the last good version');
      return;
    }
    for (const warning of loaded.warnings) logger.warn(`screen-sets: ${warning}`);
    sets = loaded.sets;
    byId = new Map(sets.map((s) => [s.id, s]));
    logger.info({ screensets: sets.length }, 'screen-sets reloaded');
  };
  if (options.watch) {
    watcher = watch(dir, () => {
      clearTimeout(timer);
      timer = setTimeout(reload, RELOAD_DELAY_MS);
    });
    watcher.on('error', (error) => logger.warn({ err: { message: error.message } }, 'screen-sets: watching the directory stopped'));
    watcher.unref();
  }

  return {
    current: () => sets,
    find: (id) => byId.get(id),
    close() {
      clearTimeout(timer);
      watcher?.close();
    },
  };
}
