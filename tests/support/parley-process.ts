import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { deepMerge, PROJECT_ROOT } from '../../src/config/load.ts';
import { freePort, TEST_CLIENTS } from './server.ts';

// Parley as operators run it: `parley start` in a process of its own, so a test can see whether
// the process survives what happens to it (an in-process server would take the test runner down
// with it, or have its crash caught by the runner).

export interface ParleyProcess {
  issuer: string;
  /** The JSON log lines written so far. */
  logs(): Record<string, unknown>[];
  /** How the process ended, if it has. */
  exited(): { code: number | null; signal: string | null } | undefined;
  /** Resolves once /readyz answers 200; rejects if the process exits first or time runs out. */
  ready(timeoutMs?: number): Promise<void>;
  /** SIGTERM, and the exit. */
  stop(): Promise<void>;
}

export async function startParleyProcess(overrides: Record<string, unknown>): Promise<ParleyProcess> {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'parley-process-'));
  const configFile = path.join(dir, 'parley.yaml');
  // JSON is YAML.
  writeFileSync(configFile, JSON.stringify(deepMerge({
    env: 'test',
    issuer,
    port,
    host: '127.0.0.1',
    secrets: { cookie_keys: ['test-cookie-key-0123456789abcdef'], key_encryption: 'test-key-encryption-secret-0123456789' },
    mail: { mailbox_dir: path.join(dir, 'mail') },
    logging: { level: 'info', pretty: false },
    accounts: { argon2: { memory_kib: 8192, iterations: 1, parallelism: 1 } },
    clients: TEST_CLIENTS(issuer),
    screensets: { dir: 'tests/fixtures/screensets-none', watch: false },
  }, overrides)));

  const child: ChildProcess = spawn(process.execPath, [path.join(PROJECT_ROOT, 'bin/parley.js'), 'start'], {
    cwd: PROJECT_ROOT,
    env: { PATH: process.env.PATH, PARLEY_CONFIG: configFile },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Record<string, unknown>[] = [];
  let partial = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    partial += chunk;
    const complete = partial.split('\n');
    partial = complete.pop()!;
    for (const line of complete) {
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        lines.push({ msg: line });
      }
    }
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
  let exit: { code: number | null; signal: string | null } | undefined;
  const exited = new Promise<void>((resolve) => child.once('exit', (code, signal) => {
    exit = { code, signal };
    if (stderr) lines.push({ level: 60, msg: `stderr: ${stderr}` });
    resolve();
  }));

  return {
    issuer,
    logs: () => lines,
    exited: () => exit,
    async ready(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if (exit) throw new Error(`parley exited (${JSON.stringify(exit)}):\n${stderr}`);
        const status = await fetch(`${issuer}/readyz`, { signal: AbortSignal.timeout(2000) }).then((r) => r.status, () => 0);
        if (status === 200) return;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      throw new Error(`parley was not ready within ${timeoutMs} ms`);
    },
    async stop() {
      if (!exit) {
        child.kill('SIGTERM');
        // A shutdown that hangs is cut, so the test reports rather than times out.
        const kill = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(kill);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
