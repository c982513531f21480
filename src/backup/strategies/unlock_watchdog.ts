/**
 * The guard against the one failure the proxy cannot handle itself: being killed
 * (kill -9, OOM killer) while it holds mongod's fsync lock, which would leave every
 * writer of the database hanging.
 *
 * Before locking, the proxy starts this small watchdog process with a pipe on its
 * stdin. If the pipe closes without the word "released" coming through first, the
 * proxy died while holding the lock, and the watchdog sends the one fsyncUnlock that
 * was the proxy's to send. The lock count nests, so the watchdog unlocks exactly once,
 * and only while mongod still reports itself locked (a lock count of zero means there
 * is nothing of ours left to release). A lost reply to that unlock is resent only once
 * the lock count shows it was not applied (releaseOneLock in fsync_lock_state.ts).
 *
 * The watchdog must outlive every signal meant for the proxy: it runs in its own process
 * group (and session), so a signal to the proxy's group (a terminal's Ctrl-C, `kill
 * -TERM -<pgid>`, tini -g) does not reach it, and it ignores SIGINT and SIGTERM besides.
 * It ends only when its pipe closes. (systemd signals by cgroup, not by group: its
 * default KillMode=control-group sends SIGTERM, ignored here, and SIGKILLs only after
 * TimeoutStopSec; KillMode=mixed would SIGKILL the watchdog as soon as the proxy exits,
 * which docs/commands.md warns against.)
 *
 * The watchdog never keeps the proxy alive: once it is ready, its process and pipes are
 * unref'd, and disarm() waits only for "released" to reach the pipe, never for the
 * watchdog's exit. A proxy that exits without disarming is, to the watchdog, a proxy
 * that died, which is exactly the case it exists for.
 *
 * Run as a module: `node unlock_watchdog.js`, with the mongodb URI in the environment
 * variable HOTBACKUP_WATCHDOG_URI: a command line is visible to every user in `ps`, and
 * the URI may carry credentials. HOTBACKUP_WATCHDOG_PROCESS_ID holds the mongod process
 * (hello's topologyVersion.processId) that the lock belongs to: a mongod that restarted
 * since holds no lock of ours (the lock dies with the process), so the watchdog sends it
 * nothing, whoever has locked it since. HOTBACKUP_WATCHDOG_STATE_FILE, when set, is the
 * proxy's state file (run_state_file.ts): before acting, the watchdog reads there whether
 * the proxy had sent its lock at all, or released it itself, and how far a lock in flight
 * got (recorded_lock.ts); after acting, it marks there what it did, so that the next
 * `serve` sends no second fsyncUnlock (recovery.ts).
 *
 * When mongod is unreachable as the proxy dies (a restart, a network outage), the
 * watchdog keeps trying for RETRY_FOR_MS, not a count of attempts: one reconnect alone
 * may wait out the driver's 30 s server selection. Each failed attempt is a line on its
 * stderr (the proxy's stderr).
 *
 * SIGUSR1 disarms it by hand: it exits at once without touching mongod. For an operator
 * who takes the release over (docs/commands.md), so that the two do not both unlock.
 *
 * Limit: it cannot outlive the PID namespace. Where the proxy is PID 1 (a container's
 * main process), the kernel SIGKILLs every process of the namespace when the proxy
 * exits, this watchdog included; docs/commands.md says so.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { AdminConnection, releaseOneLock, type UnlockOptions } from './fsync_lock_state.js';
import { describeLockOutcome, failureOutcome, markWatchdogOutcome, releaseRecordedLock, watchdogVerdict, type RecordedLockOutcome } from './recorded_lock.js';

export const URI_ENV = 'HOTBACKUP_WATCHDOG_URI';
const PROCESS_ID_ENV = 'HOTBACKUP_WATCHDOG_PROCESS_ID';
/** Exported for recovery.ts, which checks that a live pid is really this proxy's watchdog. */
export const STATE_FILE_ENV = 'HOTBACKUP_WATCHDOG_STATE_FILE';
/** How the watchdog's command line ends: recovery.ts recognises it in /proc/<pid>/cmdline. */
export const WATCHDOG_SCRIPT = 'unlock_watchdog.js';
/** How long the watchdog keeps trying to reach mongod once the proxy is gone. */
const RETRY_FOR_MS = 15 * 60_000;
const RELEASED = 'released\n';
const READY = 'ready\n';
/** How long disarm() waits for "released" to reach the pipe; a local pipe takes microseconds. */
const DISARM_FLUSH_TIMEOUT_MS = 2000;

export interface UnlockWatchdog {
  /** The watchdog process's pid, for logs (and for tests that check it is gone). */
  readonly pid: number | undefined;
  /**
   * The proxy unlocked, never locked, or no longer owns the lock: the watchdog exits
   * without touching mongod. Resolves once the word is in the pipe; idempotent.
   */
  disarm(): Promise<void>;
}

interface Unrefable {
  unref?: () => void;
}

/**
 * Starts the watchdog and waits until it is connected to mongod, so it can act when needed.
 * `stateFile` is the run journal's file (RunJournal.stateFile), required so that no caller
 * forgets it: a watchdog that cannot mark what it did leaves the next start to unlock again.
 */
export async function startUnlockWatchdog(upstreamUri: string, mongodProcessId: string | undefined, stateFile: string | undefined): Promise<UnlockWatchdog> {
  const child: ChildProcess = spawn(process.execPath, [fileURLToPath(import.meta.url)], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: {
      ...process.env,
      [URI_ENV]: upstreamUri,
      ...(mongodProcessId === undefined ? {} : { [PROCESS_ID_ENV]: mongodProcessId }),
      ...(stateFile === undefined ? {} : { [STATE_FILE_ENV]: stateFile }),
    },
    // Its own process group: a signal to the proxy's group must not end it with the proxy.
    detached: true,
  });
  const exited = once(child, 'exit');
  // An unexpected EPIPE on a watchdog that died must not crash the proxy.
  child.stdin?.on('error', () => undefined);
  const ready = new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.stdout?.once('data', (chunk: Buffer) => (chunk.toString() === READY ? resolve() : reject(new Error(chunk.toString()))));
    void exited.then(() => reject(new Error('the fsyncUnlock watchdog exited before it was ready')));
  });
  try {
    await ready;
  } catch (err) {
    child.kill();
    throw err;
  }
  // From here on nothing about the watchdog may hold the proxy's event loop open.
  child.unref();
  (child.stdin as Unrefable | null)?.unref?.();
  (child.stdout as Unrefable | null)?.unref?.();
  let disarming: Promise<void> | undefined;
  return {
    pid: child.pid,
    disarm() {
      disarming ??= new Promise<void>((resolve) => {
        const stdin = child.stdin;
        if (child.exitCode !== null || child.signalCode !== null || stdin === null || stdin.destroyed) {
          resolve();
          return;
        }
        // Resolve when the word is flushed into the pipe (the kernel then holds it for the
        // watchdog even if we exit next), or after a bound: disarm never hangs.
        const timer = setTimeout(resolve, DISARM_FLUSH_TIMEOUT_MS);
        timer.unref();
        stdin.end(RELEASED, () => {
          clearTimeout(timer);
          resolve();
        });
      });
      return disarming;
    },
  };
}

/** Set once the proxy is gone: from then on the watchdog may write the state file. */
let proxyGone = false;

async function watch(uri: string, processId: string | undefined, stateFile: string | undefined): Promise<void> {
  const conn = await AdminConnection.open(uri, processId);
  process.stdout.write(READY);
  let received = '';
  process.stdin.on('data', (chunk: Buffer) => {
    received += chunk.toString();
  });
  await once(process.stdin, 'end').catch(() => undefined);
  if (received !== RELEASED) {
    proxyGone = true;
    await releaseForDeadProxy(conn, stateFile);
  }
  await conn.close();
}

/** The proxy is gone without disarming: release what its state file says it may hold, exactly once, and mark it there. */
async function releaseForDeadProxy(conn: AdminConnection, stateFile: string | undefined): Promise<void> {
  const say = (line: string) => process.stderr.write(`hotbackup watchdog (pid ${process.pid}): ${line}\n`);
  const verdict = stateFile === undefined ? { act: true as const } : await watchdogVerdict(stateFile, process.pid);
  if (!verdict.act) {
    say(`the proxy is gone, but ${verdict.why}; sent nothing`);
    return;
  }
  const options: UnlockOptions = {
    retryForMs: RETRY_FOR_MS,
    onRetry: (err, attempt) => say(`fsyncUnlock attempt ${attempt} failed, retrying: ${String(err)}`),
  };
  let outcome: RecordedLockOutcome;
  try {
    outcome = verdict.lock === undefined ? await releaseOneLock(conn, options) : await releaseRecordedLock(conn, verdict.lock, options);
  } catch (err) {
    const detail = `its unlock watchdog (pid ${process.pid}) could not release the fsync lock: ${err instanceof Error ? err.message : String(err)}`;
    say(`fsyncUnlock failed: ${err instanceof Error ? err.message : String(err)}`);
    if (stateFile !== undefined) await markWatchdogOutcome(stateFile, process.pid, failureOutcome(err), detail).catch((markErr: unknown) => say(`could not mark the state file: ${String(markErr)}`));
    return;
  }
  say(
    outcome.kind === 'released'
      ? `the proxy died holding the fsync lock; sent fsyncUnlock (lock count now ${outcome.lockCount})`
      : outcome.kind === 'restarted'
        ? 'the proxy is gone and mongod restarted since it locked (the lock died with the old process); sent nothing'
        : outcome.kind === 'notApplied'
          ? `the proxy is gone and the fsync lock count is ${outcome.lockCount}, as before its fsyncLock (never applied, or released already); sent nothing`
          : 'the proxy is gone and mongod is not fsync-locked; nothing to release',
  );
  const detail = describeLockOutcome(outcome, `its unlock watchdog (pid ${process.pid})`);
  if (stateFile !== undefined) await markWatchdogOutcome(stateFile, process.pid, outcome.kind, detail).catch((err: unknown) => say(`could not mark the state file: ${String(err)}`));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const uri = process.env[URI_ENV];
  if (uri === undefined || uri === '') {
    process.stderr.write(`usage: ${URI_ENV}=<mongodb-uri> unlock_watchdog.js\n`);
    process.exit(2);
  }
  const processId = process.env[PROCESS_ID_ENV] || undefined;
  const stateFile = process.env[STATE_FILE_ENV] || undefined;
  delete process.env[URI_ENV];
  delete process.env[PROCESS_ID_ENV];
  // Signals meant for the proxy (Ctrl-C, a stop) must not end the watchdog: the proxy
  // then unlocks and disarms it itself, or fails to, and then the watchdog is needed.
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', () => undefined);
  process.on('SIGUSR1', () => {
    process.stderr.write(`hotbackup watchdog (pid ${process.pid}): disarmed by SIGUSR1; mongod is left as it is\n`);
    // Once the proxy is gone nobody else writes the state file: the next serve must learn
    // that the operator took the release over, or it would unlock as well.
    const marked =
      proxyGone && stateFile !== undefined
        ? markWatchdogOutcome(stateFile, process.pid, 'disarmedByHand', `its unlock watchdog (pid ${process.pid}) was disarmed by hand (SIGUSR1), so the release was left to the operator`)
        : Promise.resolve();
    void marked.catch(() => undefined).finally(() => process.exit(0));
  });
  watch(uri, processId, stateFile).then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`hotbackup watchdog: ${String(err)}\n`);
      process.exit(1);
    },
  );
}
