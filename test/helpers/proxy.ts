/** Runs `hotbackup serve` as a child process in front of a dev server, as a user would. */
import { spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';
import { once } from 'node:events';
import { CLI } from './paths.js';
import type { RunningDevServer } from './dev_server.js';

export interface RunningProxy {
  readonly port: number;
  readonly uri: string;
  readonly child: ChildProcess;
  readonly logs: Array<Record<string, unknown>>;
  stop(): Promise<number | null>;
}

export async function startProxy(upstream: RunningDevServer, args: string[] = []): Promise<RunningProxy> {
  const child = spawn(process.execPath, [CLI, 'serve', '--upstream', upstream.uri, '--port', '0', '--log-format', 'json', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = once(child, 'exit') as Promise<[number | null]>;
  const port = await new Promise<number>((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      logs.push(entry);
      const address = entry['address'] as { port?: number } | undefined;
      if (entry['msg'] === 'proxy listening' && typeof address?.port === 'number') resolve(address.port);
    });
    void exited.then(([code]) => reject(new Error(`proxy exited (${code}) before listening: ${stderr}`)));
  });
  return {
    port,
    uri: `mongodb://127.0.0.1:${port}/?directConnection=true`,
    child,
    logs,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const [code] = await exited;
      return code;
    },
  };
}
