/**
 * The dev server as a child process of `hotbackup start`: this same CLI's `dev-server`
 * subcommand, spawned with the running node. A child, not a module loaded in-process,
 * because the dev server calls WiredTiger synchronously (checkpoints, journal flushes)
 * on its event loop: in the proxy's process each such call would stall forwarding.
 *
 * Its JSON log lines go into the parent's log stream as they come; its stderr is kept
 * until it listens (a failed start is reported with it) and passed through after.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../log.js';

/** dist/src/cli.js, beside this compiled file's directory. */
const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'cli.js');
/** What the dev server logs, with `address.port`, once it accepts connections (src/devserver/dev_server.ts). */
const READY_MESSAGE = 'dev server listening';
const STDERR_TAIL_LINES = 50;

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface DevServerChildOptions {
  dbpath: string;
  checkpointIntervalSecs: number;
  /** Takes each of the child's JSON log lines, whole (see createLogRelay). */
  relay: (line: string) => void;
  log: Logger;
}

export interface DevServerChild {
  readonly pid: number;
  /** The port it listens on, once it does; rejects, with its stderr, if it exits first. */
  readonly ready: Promise<number>;
  /** Settles when it has exited, for whatever reason. */
  readonly exited: Promise<ChildExit>;
  running(): boolean;
  /** Its last lines on stderr, for the message about an exit nobody asked for. */
  stderrTail(): string;
  /** SIGTERM (a clean WiredTiger close), then SIGKILL once `graceMs` has passed; resolves on exit. */
  stop(graceMs: number): Promise<ChildExit>;
}

/** `hotbackup: ` starts each error line the CLI prints; ours will say it once. */
function withoutCliPrefix(text: string): string {
  return text.replace(/^hotbackup: /gm, '').trim();
}

export function spawnDevServerChild(options: DevServerChildOptions): DevServerChild {
  const { log } = options;
  const args = [
    CLI,
    'dev-server',
    '--dbpath',
    options.dbpath,
    '--port',
    '0',
    '--bind',
    '127.0.0.1',
    '--checkpoint-interval',
    String(options.checkpointIntervalSecs),
    '--log-format',
    'json',
    '--exit-on-stdin-close',
  ];
  const child = spawn(process.execPath, args, {
    // stdin is the lifeline (see whenStdinCloses in dev_server_command.ts): never written,
    // it reaches end-of-file when this process is gone, however it went.
    stdio: ['pipe', 'pipe', 'pipe'],
    // Its own process group, so a Ctrl-C in the terminal reaches only this process,
    // which stops the proxy first (a running backup releases its cursor) and only then
    // the dev server. Together with the lifeline, nothing is lost by leaving the group.
    detached: true,
  });
  // A failed spawn also emits 'error'; unheard, it would end this process with a stack trace.
  child.on('error', (err) => log.error({ err: err.message }, 'dev server process error'));
  const pid = child.pid;
  if (pid === undefined) throw new Error(`cannot start the dev server (${process.execPath} ${args.join(' ')})`);
  // The last resort: whatever ends this process (a shutdown that ran out of time, a
  // second signal, an uncaught error) takes the dev server with it. Synchronous, as
  // 'exit' handlers must be; the lifeline alone would let it close cleanly, but after
  // the operator's time limit it must not outlive us at all.
  const killOnExit = () => child.kill('SIGKILL');
  process.on('exit', killOnExit);

  // 'close', not 'exit': by then its stdout and stderr are read to the end, so a failed
  // start is reported with everything it printed.
  const exited = (once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>).then(([code, signal]) => {
    process.off('exit', killOnExit);
    child.stdin.destroy();
    return { code, signal };
  });
  const running = () => child.exitCode === null && child.signalCode === null;

  let listening = false;
  const stderrLines: string[] = [];
  readline.createInterface({ input: child.stderr }).on('line', (line) => {
    stderrLines.push(line);
    if (stderrLines.length > STDERR_TAIL_LINES) stderrLines.shift();
    if (listening) process.stderr.write(`${line}\n`);
  });

  const ready = new Promise<number>((resolve, reject) => {
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        parsed = undefined;
      }
      if (typeof parsed !== 'object' || parsed === null) {
        // Not a log line (a native library's printf, say, or a bare `null`): keep it, as ours.
        log.info({ line }, 'dev server output');
        return;
      }
      const entry = parsed as Record<string, unknown>;
      options.relay(line);
      const port = (entry['address'] as { port?: unknown } | undefined)?.port;
      if (!listening && entry['msg'] === READY_MESSAGE && typeof port === 'number') {
        listening = true;
        for (const kept of stderrLines) process.stderr.write(`${kept}\n`);
        resolve(port);
      }
    });
    void exited.then(({ code, signal }) => {
      if (listening) return;
      const stderr = withoutCliPrefix(stderrLines.join('\n'));
      const how = signal === null ? `with code ${code}` : `on ${signal}`;
      reject(new Error(`the dev server (pid ${pid}, dbpath ${options.dbpath}) exited ${how} before listening: ${stderr || 'nothing on stderr'}`));
    });
  });
  // A caller that races `ready` against a signal may never await it.
  ready.catch(() => undefined);

  return {
    pid,
    ready,
    exited,
    running,
    stderrTail: () => withoutCliPrefix(stderrLines.join('\n')),
    async stop(graceMs) {
      if (!running()) return exited;
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => {
        timer = setTimeout(() => resolve('late'), graceMs);
      });
      const outcome = await Promise.race([exited, late]);
      clearTimeout(timer);
      if (outcome !== 'late') return outcome;
      log.error({ devServerPid: pid, graceMs }, 'the dev server did not stop after SIGTERM in time; killing it');
      child.kill('SIGKILL');
      return exited;
    },
  };
}
