/**
 * Runs `hotbackup <subcommand>` as a child process, the way a user would, and
 * resolves once its JSON log says it is listening.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';
import { once } from 'node:events';
import { CLI, CLI_NODE_FLAGS } from './paths.js';

export interface CliProcess {
  readonly child: ChildProcess;
  readonly port: number;
  /** Parsed JSON log lines, in order. */
  readonly logs: Array<Record<string, unknown>>;
  /** What it has written to stderr so far. */
  stderr(): string;
  /** SIGTERM and wait for the exit; returns the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL: no clean shutdown at all. */
  kill9(): Promise<void>;
}

/**
 * `readyMessage` is the `msg` of the log line whose `address.port` says where it listens.
 * `wrapper`, when given, is a command that runs the CLI's command line as its trailing
 * arguments and must exec it (e.g. `unshare ... sh -c '...; exec "$@"' sh`). `env` is
 * added to this process's environment (e.g. HOTBACKUP_TEST_FAILPOINTS).
 */
export async function spawnCli(args: string[], readyMessage: string, wrapper: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<CliProcess> {
  const command = [...wrapper, process.execPath, ...CLI_NODE_FLAGS, CLI, ...args, '--log-format', 'json'];
  const child = spawn(command[0] as string, command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const logs: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
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
      if (entry['msg'] === readyMessage && typeof address?.port === 'number') resolve(address.port);
    });
    void exited.then(([code]) => reject(new Error(`hotbackup ${args[0]} exited (${code}) before listening: ${stderr}`)));
  });
  const running = () => child.exitCode === null && child.signalCode === null;
  return {
    child,
    port,
    logs,
    stderr: () => stderr,
    async stop() {
      if (!running()) return child.exitCode;
      child.kill('SIGTERM');
      const [code] = await exited;
      return code;
    },
    async kill9() {
      if (!running()) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
}
