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
 * is nothing of ours left to release).
 *
 * The watchdog never keeps the proxy alive: once it is ready, its process and pipes are
 * unref'd, and disarm() waits only for "released" to reach the pipe, never for the
 * watchdog's exit. A proxy that exits without disarming is, to the watchdog, a proxy
 * that died, which is exactly the case it exists for.
 *
 * Run as a module: `node unlock_watchdog.js <mongodb-uri>`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { MongoClient } from 'mongodb';

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

/** Starts the watchdog and waits until it is connected to mongod, so it can act when needed. */
export async function startUnlockWatchdog(upstreamUri: string): Promise<UnlockWatchdog> {
  const child: ChildProcess = spawn(process.execPath, [fileURLToPath(import.meta.url), upstreamUri], {
    stdio: ['pipe', 'pipe', 'inherit'],
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

async function isFsyncLocked(client: MongoClient): Promise<boolean> {
  const reply = await client.db('admin').command({ currentOp: 1 });
  return reply['fsyncLock'] === true;
}

async function watch(uri: string): Promise<void> {
  const client = new MongoClient(uri, { maxPoolSize: 1, directConnection: true });
  await client.connect();
  process.stdout.write(READY);
  let received = '';
  process.stdin.on('data', (chunk: Buffer) => {
    received += chunk.toString();
  });
  await once(process.stdin, 'end').catch(() => undefined);
  if (received !== RELEASED) {
    // The proxy is gone with the lock held: release it, retrying briefly. Each attempt
    // first looks: an unlocked node has nothing of ours left, and a failed attempt may
    // have been applied before its reply was lost.
    for (let attempt = 1; attempt <= 10; attempt++) {
      try {
        if (!(await isFsyncLocked(client))) {
          process.stderr.write('hotbackup watchdog: the proxy is gone and mongod is not fsync-locked; nothing to release\n');
          break;
        }
        await client.db('admin').command({ fsyncUnlock: 1 });
        process.stderr.write('hotbackup watchdog: the proxy died holding the fsync lock; sent fsyncUnlock\n');
        break;
      } catch (err) {
        if (attempt === 10) process.stderr.write(`hotbackup watchdog: fsyncUnlock failed: ${String(err)}\n`);
        await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
      }
    }
  }
  await client.close();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const uri = process.argv[2];
  if (uri === undefined) {
    process.stderr.write('usage: unlock_watchdog.js <mongodb-uri>\n');
    process.exit(2);
  }
  // A terminal's Ctrl-C reaches the whole process group; the proxy then unlocks and
  // disarms us itself, so the watchdog must outlive that signal, not die of it.
  process.on('SIGINT', () => undefined);
  watch(uri).then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`hotbackup watchdog: ${String(err)}\n`);
      process.exit(1);
    },
  );
}
