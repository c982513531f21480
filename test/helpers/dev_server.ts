/**
 * Runs the real dev server as a child process, the way a user would, and tells
 * the test its port once it logs that it is listening.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';
import { once } from 'node:events';
import { CLI, tempDir } from './paths.js';

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
  /** Removes the dbpath if this helper created it. */
  cleanup(): void;
}

export interface StartOptions {
  dbpath?: string;
  args?: string[];
}

export async function startDevServer(options: StartOptions = {}): Promise<RunningDevServer> {
  const owned = options.dbpath === undefined ? tempDir('dbpath') : undefined;
  const dbpath = options.dbpath ?? (owned as { dir: string }).dir;
  const child = spawn(
    process.execPath,
    [CLI, 'dev-server', '--dbpath', dbpath, '--port', '0', '--log-format', 'json', ...(options.args ?? [])],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const logs: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const port = await new Promise<number>((resolve, reject) => {
    const lines = readline.createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      logs.push(entry);
      const address = entry['address'] as { port?: number } | undefined;
      if (entry['msg'] === 'dev server listening' && typeof address?.port === 'number') resolve(address.port);
    });
    void exited.then(([code]) => reject(new Error(`dev server exited (${code}) before listening: ${stderr}`)));
  });
  return {
    port,
    dbpath,
    uri: `mongodb://127.0.0.1:${port}/?directConnection=true`,
    child,
    logs,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const [code] = await exited;
      return code;
    },
    async kill9() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
    cleanup() {
      owned?.remove();
    },
  };
}
