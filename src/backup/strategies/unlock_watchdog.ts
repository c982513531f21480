/**
 * The guard against the one failure the proxy cannot handle itself: being killed
 * (kill -9, OOM killer) while it holds mongod's fsync lock, which would leave every
 * writer of the database hanging.
 *
 * Before locking, the proxy starts this small watchdog process with a pipe on its
 * stdin. If the pipe closes without the word "released" coming through first, the
 * proxy died while holding the lock, and the watchdog sends the one fsyncUnlock that
 * was the proxy's to send. The lock count nests, so the watchdog unlocks exactly once.
 *
 * Run as a module: `node unlock_watchdog.js <mongodb-uri>`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { MongoClient } from 'mongodb';

const RELEASED = 'released\n';
const READY = 'ready\n';

export interface UnlockWatchdog {
  /** The proxy unlocked (or never locked): the watchdog exits without touching mongod. */
  disarm(): Promise<void>;
}

/** Starts the watchdog and waits until it is connected to mongod, so it can act when needed. */
export async function startUnlockWatchdog(upstreamUri: string): Promise<UnlockWatchdog> {
  const child: ChildProcess = spawn(process.execPath, [fileURLToPath(import.meta.url), upstreamUri], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit');
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout?.once('data', (chunk: Buffer) => (chunk.toString() === READY ? resolve() : reject(new Error(chunk.toString()))));
    void exited.then(() => reject(new Error('the fsyncUnlock watchdog exited before it was ready')));
  });
  await ready;
  return {
    async disarm() {
      if (child.exitCode !== null) return;
      child.stdin?.end(RELEASED);
      await exited;
    },
  };
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
    // The proxy is gone with the lock held: release it, retrying briefly.
    for (let attempt = 1; attempt <= 10; attempt++) {
      try {
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
