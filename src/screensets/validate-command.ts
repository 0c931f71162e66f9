// `parley screensets validate [dir]`: the same checks as a start, for an author's terminal or CI.
import { loadScreenSets, type ScreenSetContext } from './loader.ts';

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/** Every error and warning, one a line, then a summary; exit code 1 when there is any error. */
export function validateScreenSetsCommand(dir: string, context: ScreenSetContext): { output: string; exitCode: number } {
  const { sets, errors, warnings, files } = loadScreenSets(dir, context);
  const lines = [...errors.map((e) => `error: ${e}`), ...warnings.map((w) => `warning: ${w}`)];
  if (errors.length > 0) {
    lines.push(`${dir}: ${count(errors.length, 'error')} and ${count(warnings.length, 'warning')} in ${count(files.length, 'file')}; nothing was loaded`);
    return { output: lines.join('\n'), exitCode: 1 };
  }
  const questions = sets.reduce((sum, set) => sum + set.questions.length, 0);
  const noted = warnings.length > 0 ? ` (${count(warnings.length, 'warning')})` : '';
  lines.push(`${dir}: ${count(sets.length, 'screen-set')} with ${count(questions, 'question')} in ${count(files.length, 'file')} are valid${noted}`);
  return { output: lines.join('\n'), exitCode: 0 };
}
