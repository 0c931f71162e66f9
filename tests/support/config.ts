import { ConfigError, loadConfig } from '../../src/config/load.ts';

/** Every problem loadConfig reports for these overrides of the defaults (it must report some). */
export function problemsOf(overrides: Record<string, unknown>): string[] {
  try {
    loadConfig({ env: {}, overrides });
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}
