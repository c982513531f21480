/** The real dev server as a child process, on a fresh (or given) dbpath. */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { defaultStateDir } from '../../src/backup/work_dirs.js';
import { tempDir } from './paths.js';
import { spawnCli } from './cli_process.js';

export interface RunningDevServer {
  readonly port: number;
  readonly dbpath: string;
  /** A connection string for the driver and mongosh. */
  readonly uri: string;
  readonly child: ChildProcess;
  /** Parsed JSON log lines, in order. */
  readonly logs: Array<Record<string, unknown>>;
  /** SIGTERM and wait for a clean exit; returns the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL: no checkpoint, no clean close. */
  kill9(): Promise<void>;
  /** Removes the dbpath if this helper created it, and the proxy's default state dir beside it. */
  cleanup(): void;
}

export interface StartOptions {
  dbpath?: string;
  /** A fixed port (a restart at the same address); default: a free one. */
  port?: number;
  args?: string[];
  /** A command that execs the server's command line given as its trailing arguments (e.g. `nice -n -10`). */
  wrapper?: string[];
}

export async function startDevServer(options: StartOptions = {}): Promise<RunningDevServer> {
  const owned = options.dbpath === undefined ? tempDir('dbpath') : undefined;
  const dbpath = options.dbpath ?? (owned as { dir: string }).dir;
  let cli;
  try {
    cli = await spawnCli(['dev-server', '--dbpath', dbpath, '--port', String(options.port ?? 0), ...(options.args ?? [])], 'dev server listening', options.wrapper ?? []);
  } catch (err) {
    owned?.remove();
    throw err;
  }
  return {
    ...cli,
    dbpath,
    uri: `mongodb://127.0.0.1:${cli.port}/?directConnection=true`,
    cleanup() {
      owned?.remove();
      if (owned !== undefined) fs.rmSync(defaultStateDir(dbpath), { recursive: true, force: true });
    },
  };
}
