import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './server.ts';

// A PostgreSQL cluster of a test's own, in a temporary directory, so that the test may stop and
// restart it: the machine's shared cluster is never touched. initdb refuses to run as root, so
// as root the cluster runs as the `postgres` OS user. Trust authentication on loopback only.

const run = promisify(execFile);

function findBinaries(): string | undefined {
  const candidates = [
    ...(process.env.PG_BIN ? [process.env.PG_BIN] : []),
    ...(existsSync('/usr/lib/postgresql')
      ? readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a)).map((v) => `/usr/lib/postgresql/${v}/bin`)
      : []),
  ];
  return candidates.find((dir) => existsSync(path.join(dir, 'initdb')) && existsSync(path.join(dir, 'pg_ctl')));
}

function osUser(name: string): { uid: number; gid: number } | undefined {
  try {
    return {
      uid: Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim()),
      gid: Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim()),
    };
  } catch {
    return undefined;
  }
}

const BIN = findBinaries();
const RUN_AS = process.getuid?.() === 0 ? osUser('postgres') : undefined;

/** Why a test cannot have a cluster of its own on this machine; undefined when it can. */
export const OWN_CLUSTER_UNAVAILABLE: string | undefined = !BIN
  ? 'initdb and pg_ctl are not installed (e.g. apt-get install postgresql; or set PG_BIN)'
  : process.getuid?.() === 0 && !RUN_AS
    ? 'running as root and there is no `postgres` OS user to run initdb as'
    : undefined;

export class PostgresCluster {
  readonly port: number;
  readonly #dir: string;
  readonly #data: string;

  private constructor(dir: string, port: number) {
    this.#dir = dir;
    this.#data = path.join(dir, 'data');
    this.port = port;
  }

  /** initdb and start a cluster on a free loopback port. */
  static async create(): Promise<PostgresCluster> {
    if (OWN_CLUSTER_UNAVAILABLE) throw new Error(OWN_CLUSTER_UNAVAILABLE);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'parley-pg-'));
    if (RUN_AS) chownSync(dir, RUN_AS.uid, RUN_AS.gid);
    const cluster = new PostgresCluster(dir, await freePort());
    await cluster.#tool('initdb', ['-D', cluster.#data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync', '--no-instructions']);
    await cluster.start();
    return cluster;
  }

  url(database = 'postgres'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  async createDatabase(name: string): Promise<string> {
    const client = new pg.Client({ connectionString: this.url() });
    await client.connect();
    try {
      await client.query(`create database "${name}"`);
    } finally {
      await client.end();
    }
    return this.url(name);
  }

  /** Starts and waits until it accepts connections. */
  async start(): Promise<void> {
    // fsync off: the data only has to survive a clean restart of the server, not of the machine.
    const options = `-p ${this.port} -k ${this.#dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50`;
    await this.#tool('pg_ctl', ['-D', this.#data, '-l', this.#logFile, '-o', options, '-w', '-t', '30', 'start']);
  }

  /**
   * `fast`: what an operator's restart does. Every client session is ended with
   * "terminating connection due to administrator command" (57P01), in a transaction or not.
   */
  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    await this.#tool('pg_ctl', ['-D', this.#data, '-m', mode, '-w', '-t', '30', 'stop']);
  }

  async restart(): Promise<void> {
    // The log file again: restart reuses the server's options but not pg_ctl's own, and a server
    // writing to pg_ctl's output would keep it open.
    await this.#tool('pg_ctl', ['-D', this.#data, '-l', this.#logFile, '-m', 'fast', '-w', '-t', '30', 'restart']);
  }

  /** The server's own log, for a failing test's message. */
  log(): string {
    try {
      return readFileSync(this.#logFile, 'utf8');
    } catch {
      return '';
    }
  }

  async destroy(): Promise<void> {
    await this.stop('immediate').catch(() => undefined);
    rmSync(this.#dir, { recursive: true, force: true });
  }

  get #logFile(): string {
    return path.join(this.#dir, 'server.log');
  }

  async #tool(name: 'initdb' | 'pg_ctl', args: string[]): Promise<void> {
    const file = path.join(BIN!, name);
    const [command, argv] = RUN_AS ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, args];
    try {
      await run(command, argv, { timeout: 40_000 });
    } catch (error) {
      const { stdout, stderr } = error as { stdout?: string; stderr?: string };
      throw new Error(`${name} ${args.at(-1)} failed: ${stderr || stdout || (error as Error).message}\n${this.log().slice(-2000)}`);
    }
  }
}
