/** Runs `hotbackup <args>` as a child process, as an operator would, and returns what it said and its exit code. */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { CLI, CLI_NODE_FLAGS } from './paths.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs it to completion. `wrapper`, when given, is a command that runs the CLI's command
 * line as its trailing arguments and must exec it (e.g. `sh -c 'umask 0277; exec "$@"' sh`).
 */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, wrapper: string[] = []): Promise<CliRun> {
  const command = [...wrapper, process.execPath, ...CLI_NODE_FLAGS, CLI, ...args];
  return new Promise((resolve) => {
    execFile(command[0] as string, command.slice(1), { env: { ...process.env, ...env }, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

export interface RunningCli {
  readonly child: ChildProcess;
  /** What it has written to stderr so far. */
  stderr(): string;
  /** Settles when it exits: its exit code (null when a signal ended it) and all it said. */
  readonly done: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

/** Starts it and returns at once, for a test that watches it run (and may kill it). */
export function startCli(args: string[], env: NodeJS.ProcessEnv = {}): RunningCli {
  const child = spawn(process.execPath, [...CLI_NODE_FLAGS, CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = (once(child, 'close') as Promise<[number | null]>).then(([code]) => ({ code, stdout, stderr }));
  return { child, stderr: () => stderr, done };
}
