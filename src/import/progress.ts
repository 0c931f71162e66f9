// Progress of a long import: on a terminal, one line redrawn in place with a bar; anywhere else
// (a log file, CI, a pipe) a plain line every so often, since carriage returns make a mess of
// those. Failures are printed by whoever reads the records, through note(), which keeps them
// from being drawn over by the bar.

export interface ProgressOutput {
  write(text: string): void;
  isTTY: boolean;
  /** Width of the terminal, when known. */
  columns?: number | undefined;
}

export interface ProgressState {
  records: number;
  failed: number;
  /** Bytes of the file read so far, for a percentage when its size is known. */
  bytes?: number | undefined;
}

export interface ProgressReporter {
  update(state: ProgressState): void;
  /** A line of its own (a failed record), printed without breaking the bar. */
  note(line: string): void;
  finish(state: ProgressState): void;
}

export interface ProgressOptions {
  /** The file's size; unknown for standard input. */
  totalBytes?: number | undefined;
  /** Milliseconds, monotonic. */
  clock: () => number;
  /** A terminal redraws at most this often (ms). */
  redrawEvery?: number;
  /** Elsewhere, a line at most this often (ms). */
  lineEvery?: number;
}

const BAR_WIDTH = 24;
const number = new Intl.NumberFormat('en');

export function createProgressReporter(out: ProgressOutput, options: ProgressOptions): ProgressReporter {
  const started = options.clock();
  const interval = out.isTTY ? options.redrawEvery ?? 100 : options.lineEvery ?? 10_000;
  let lastShown = -Infinity;
  let drawn = false;
  let last: ProgressState = { records: 0, failed: 0 };

  const fraction = (state: ProgressState) => (options.totalBytes && state.bytes !== undefined ? Math.min(1, state.bytes / options.totalBytes) : undefined);
  const rate = (state: ProgressState, now: number) => {
    const seconds = (now - started) / 1000;
    return seconds > 0 ? Math.round(state.records / seconds) : 0;
  };

  const barLine = (state: ProgressState, now: number) => {
    const done = fraction(state);
    const bar = done === undefined ? '' : `[${'#'.repeat(Math.round(done * BAR_WIDTH)).padEnd(BAR_WIDTH, '-')}] ${String(Math.floor(done * 100)).padStart(3)}%  `;
    const text = `${bar}${number.format(state.records)} accounts  ${number.format(rate(state, now))}/s${state.failed ? `  ${number.format(state.failed)} failed` : ''}`;
    return out.columns ? text.slice(0, out.columns - 1) : text;
  };

  const plainLine = (state: ProgressState, now: number) => {
    const done = fraction(state);
    return `import: ${state.records} accounts read${done === undefined ? '' : ` (${Math.floor(done * 100)}%)`}, ${rate(state, now)}/s, ${state.failed} failed\n`;
  };

  const draw = (state: ProgressState, now: number) => {
    // \r back to the start of the line, \x1b[K clears what a longer previous line left.
    out.write(`\r${barLine(state, now)}\x1b[K`);
    drawn = true;
  };

  return {
    update(state) {
      last = state;
      const now = options.clock();
      if (now - lastShown < interval) return;
      lastShown = now;
      if (out.isTTY) draw(state, now);
      else out.write(plainLine(state, now));
    },
    note(line) {
      if (out.isTTY && drawn) {
        out.write(`\r\x1b[K${line}\n`);
        draw(last, options.clock());
      } else {
        out.write(`${line}\n`);
      }
    },
    finish(state) {
      const now = options.clock();
      const seconds = ((now - started) / 1000).toFixed(1);
      if (out.isTTY) {
        draw(state, now);
        out.write('\n');
      } else {
        out.write(`import: done, ${state.records} accounts in ${seconds}s (${rate(state, now)}/s), ${state.failed} failed\n`);
      }
    },
  };
}
