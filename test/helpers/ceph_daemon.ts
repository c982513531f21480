/**
 * Ceph daemons for the tests: each runs in the foreground (`-f`) in its own session
 * (setsid(2), as `spawn(..., {detached: true})` does), and is stopped by its PID on every
 * exit path, so that none outlives the test file that started it:
 * - `stop()`, from the helper's own stop() or a test's `after`;
 * - this process's `exit` event (a test file that ends without calling stop(): the
 *   daemons do not keep it alive);
 * - a reaper: a small shell in its own session that reads this process's PIDs from a
 *   pipe and, at end of file (this process is gone, however it died: the runner's
 *   SIGTERM, a SIGKILL, a crash), kills them and removes the temp dir. Signals and
 *   SIGKILL run no JavaScript, so only a process outside this one can clean up after them.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import { promisify } from 'node:util';
import { until } from './poll.js';

const execFileAsync = promisify(execFile);

/** The last `lines` lines of a log file, or a note that it does not exist. */
export function logTail(file: string, lines = 25): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return `(no ${file})`;
  }
  return `--- ${file} (last ${lines} lines)\n${text.split('\n').slice(-lines - 1).join('\n')}`;
}

/**
 * The reaper reads `+PID` (a daemon started), `-PID` (stopped by us) and `done` (the temp
 * dir is gone too: nothing left to do). At end of input it stops each PID still listed as
 * close() does (last started first, SIGTERM to its process group, SIGKILL after 2 s) and
 * removes the temp dir.
 */
const REAPER_SCRIPT = `
dir=$1; pids=" "
while IFS= read -r line; do
  case $line in
    +*) pids=" \${line#+}$pids";;
    -*) pids="\${pids/ \${line#-} / }";;
    done) exit 0;;
  esac
done
for p in $pids; do
  kill -TERM -- "-$p" 2>/dev/null
  for i in $(seq 20); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$p" 2>/dev/null
done
rm -rf -- "$dir"
`;

/** One temp dir's daemons, and the guards that stop them whatever happens to this process. */
export class DaemonGroup {
  private readonly live = new Set<CephDaemon>();
  private readonly reaper: ChildProcess;
  private readonly onExit = (): void => this.killAllNow();
  private closed = false;

  constructor(readonly dir: string) {
    this.reaper = spawn('bash', ['-c', REAPER_SCRIPT, 'ceph-reaper', dir], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
    this.reaper.unref();
    // The pipe must not keep the test process alive: its end is the reaper's signal.
    (this.reaper.stdin as unknown as { unref(): void }).unref();
    this.reaper.stdin?.on('error', () => undefined);
    process.on('exit', this.onExit);
  }

  /** Starts `command` under setsid, its stdout and stderr appended to `outFile`. */
  start(name: string, command: string, args: string[], outFile: string): CephDaemon {
    if (this.closed) throw new Error(`cannot start ${name}: the cluster was stopped`);
    const out = fs.openSync(outFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(command, args, { detached: true, stdio: ['ignore', out, out] });
    } finally {
      fs.closeSync(out);
    }
    if (child.pid === undefined) throw new Error(`${command} did not start`);
    const daemon = new CephDaemon(name, child, outFile, (d) => {
      this.live.delete(d);
      this.tellReaper(`-${d.pid}`);
    });
    this.live.add(daemon);
    this.tellReaper(`+${daemon.pid}`);
    return daemon;
  }

  /**
   * Stops every live daemon (SIGTERM, SIGKILL after `graceMs`) and removes the dir. One
   * at a time, last started first: a radosgw whose OSD is already gone waits for its
   * requests to the OSD (up to `rgw exit timeout secs`, 120 s), while in this order each
   * one exits within a second.
   */
  async close(graceMs: number): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const d of [...this.live].reverse()) await d.stop(graceMs);
    fs.rmSync(this.dir, { recursive: true, force: true });
    this.tellReaper('done');
    this.reaper.stdin?.end();
    process.off('exit', this.onExit);
  }

  private tellReaper(line: string): void {
    if (this.reaper.stdin?.writable === true) this.reaper.stdin.write(`${line}\n`);
  }

  /** The `exit` event runs no asynchronous code: SIGKILL and remove, synchronously. */
  private killAllNow(): void {
    for (const d of this.live) d.killGroup('SIGKILL');
    try {
      fs.rmSync(this.dir, { recursive: true, force: true });
    } catch {
      // A daemon still dying may recreate a file; the reaper removes the dir after it.
    }
  }
}

export class CephDaemon {
  readonly pid: number;
  private readonly exited: Promise<unknown>;

  constructor(
    readonly name: string,
    private readonly child: ChildProcess,
    readonly outFile: string,
    onGone: (d: CephDaemon) => void,
  ) {
    this.pid = child.pid as number;
    this.exited = once(child, 'exit').then(() => onGone(this));
    // A test file that never calls stop() must still end (its exit handler then kills
    // the daemons): a running daemon does not keep this process alive, only a stop() does.
    child.unref();
  }

  running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** What ended it, for error messages: an exit code or a signal. */
  exitDescription(): string {
    return this.child.signalCode !== null ? `killed by ${this.child.signalCode}` : `exited with code ${this.child.exitCode}`;
  }

  /** Signals the daemon's whole session (it leads its own process group). */
  killGroup(signal: NodeJS.Signals): void {
    try {
      process.kill(-this.pid, signal);
    } catch {
      // Already gone.
    }
  }

  /** SIGTERM, then SIGKILL if it is still there after `graceMs`; resolves once it has exited. */
  async stop(graceMs: number): Promise<void> {
    if (!this.running()) return;
    this.child.ref();
    this.killGroup('SIGTERM');
    const timer = setTimeout(() => this.killGroup('SIGKILL'), graceMs);
    try {
      await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGKILL: no clean shutdown (a gateway that crashes mid-upload). */
  async kill9(): Promise<void> {
    if (!this.running()) return;
    this.child.ref();
    this.killGroup('SIGKILL');
    await this.exited;
  }
}

/** Runs a short Ceph command line; its failure names the command and carries its stderr. */
export async function runCeph(command: string, args: string[], timeoutMs: number, stdin?: string): Promise<string> {
  try {
    const running = execFileAsync(command, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 });
    running.child.stdin?.end(stdin ?? '');
    const { stdout } = await running;
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message?: string; killed?: boolean };
    const why = e.killed === true ? `timed out after ${timeoutMs} ms` : (e.stderr ?? e.message ?? String(err)).trim();
    throw new Error(`${command} ${args.slice(2).join(' ')} failed: ${why}`, { cause: err });
  }
}

/**
 * Polls `probe` as until() does, but gives up after `timeoutMs` with `describe()` (the
 * daemon logs' tails) in the error, and at once if one of `daemons` has died: booting
 * Ceph has no duration a test could rely on, yet a broken boot must say why, not hang.
 */
export async function untilReady<T>(what: string, timeoutMs: number, daemons: CephDaemon[], describe: () => string, probe: () => Promise<T | undefined | false>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  return until(async () => {
    const dead = daemons.find((d) => !d.running());
    if (dead !== undefined) throw new Error(`${dead.name} ${dead.exitDescription()} while waiting for ${what}\n${describe()}`);
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${describe()}`);
    return undefined;
  }, 100);
}
