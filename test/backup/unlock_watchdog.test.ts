/**
 * The fsyncUnlock watchdog never keeps a finished proxy alive: a process whose work is
 * done exits by itself, whether it disarmed the watchdog, failed to unlock, or never
 * disarmed it at all. Each case runs in a child process, as the proxy would.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fs from 'node:fs';
import readline from 'node:readline';
import { once } from 'node:events';
import { spawn, type ChildProcess } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { MongoClient } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { CLI, tempDir } from '../helpers/paths.js';
import { until, untilGone } from '../helpers/poll.js';
import { startFaultRelay } from '../helpers/relay.js';
import { drainLockCount, fsyncLockMatch, fsyncUnlockMatch } from '../helpers/fsync_lock.js';

const DIST_SRC = path.dirname(CLI);
const moduleUrl = (relative: string) => pathToFileURL(path.join(DIST_SRC, relative)).href;

/** A "proxy" that arms the watchdog and returns without disarming it. */
const NEVER_DISARMS = `
import { startUnlockWatchdog } from '${moduleUrl('backup/strategies/unlock_watchdog.js')}';
const watchdog = await startUnlockWatchdog(process.argv[2]);
console.log(JSON.stringify({ watchdogPid: watchdog.pid }));
`;

/** A "proxy" that arms the watchdog and holds it until its stdin ends. */
const ARMS_AND_WAITS = `
import { startUnlockWatchdog } from '${moduleUrl('backup/strategies/unlock_watchdog.js')}';
const watchdog = await startUnlockWatchdog(process.argv[2]);
console.log(JSON.stringify({ watchdogPid: watchdog.pid }));
process.stdin.resume();
await new Promise((resolve) => process.stdin.on('end', resolve));
await watchdog.disarm();
`;

/** A "proxy" that opens an fsyncLock snapshot, says how that went, and exits once its stdin ends. */
const OPENS_AND_WAITS = `
import { FsyncLockStrategy } from '${moduleUrl('backup/strategies/fsync_lock_strategy.js')}';
import { createLogger } from '${moduleUrl('log.js')}';
const log = createLogger({ name: 'script', format: 'json' });
const strategy = new FsyncLockStrategy(process.argv[2], process.argv[3], log, { unlockBackoffMs: 10 });
try {
  await strategy.open();
  console.log(JSON.stringify({ opened: true }));
} catch (err) {
  console.log(JSON.stringify({ openError: String(err.message) }));
}
process.stdin.resume();
await new Promise((resolve) => process.stdin.on('end', resolve));
`;

/**
 * A "proxy" that fsync-locks through the strategy, waits for the test to take the lock
 * away, then releases: the release fails, and the process must still end.
 */
const LOSES_ITS_LOCK = `
import readline from 'node:readline';
import { FsyncLockStrategy } from '${moduleUrl('backup/strategies/fsync_lock_strategy.js')}';
import { createLogger } from '${moduleUrl('log.js')}';
const log = createLogger({ name: 'script', format: 'json' });
const strategy = new FsyncLockStrategy(process.argv[2], process.argv[3], log, { lockCheckIntervalMs: 3_600_000 });
const snapshot = await strategy.open();
console.log(JSON.stringify({ locked: true }));
const lines = readline.createInterface({ input: process.stdin });
for await (const line of lines) if (line === 'release') break;
lines.close();
try {
  await snapshot.release();
  console.log(JSON.stringify({ released: true }));
} catch (err) {
  console.log(JSON.stringify({ releaseError: String(err.message) }));
}
`;

type Line = Record<string, unknown>;

interface Script {
  child: ChildProcess;
  exited: Promise<unknown[]>;
  /** The first JSON line printed (so far or later) that has one of `keys`. */
  line(...keys: string[]): Promise<Line>;
}

/** `signal` is the test's: a case that times out (the hang this guards against) kills its script. */
function runScript(dir: string, name: string, source: string, args: string[], signal: AbortSignal): Script {
  const file = path.join(dir, name);
  fs.writeFileSync(file, source);
  const child = spawn(process.execPath, [file, ...args], { stdio: ['pipe', 'pipe', 'inherit'], signal, killSignal: 'SIGKILL' });
  child.on('error', () => undefined);
  const exited = once(child, 'exit');
  const lines: Line[] = [];
  let ended = false;
  readline
    .createInterface({ input: child.stdout! })
    .on('line', (text) => lines.push(JSON.parse(text) as Line))
    .on('close', () => (ended = true));
  return {
    child,
    exited,
    line(...keys) {
      return until(() => {
        const found = lines.find((entry) => keys.some((key) => key in entry));
        if (found !== undefined) return found;
        // Its output, not its exit: the last lines may still be in the pipe when it exits.
        if (ended) throw new Error(`the script ended without printing ${keys.join(' or ')}`);
        return undefined;
      }, 20);
    },
  };
}

describe('the fsyncUnlock watchdog and a finished proxy', () => {
  let server: RunningDevServer;
  let client: MongoClient;
  let scratch: { dir: string; remove: () => void };

  before(async () => {
    server = await startDevServer({ args: ['--no-backup-cursor'] });
    client = new MongoClient(server.uri);
    await client.connect();
    scratch = tempDir('watchdog');
  });

  after(async () => {
    await client?.close();
    await server?.stop();
    server?.cleanup();
    scratch?.remove();
  });

  // Each timeout is the hang detector: the bug was a process that never exited.
  it('lets a process that never disarmed it exit by itself', async (t) => {
    const script = runScript(scratch.dir, 'never_disarms.mjs', NEVER_DISARMS, [server.uri], t.signal);
    try {
      const { watchdogPid } = await script.line('watchdogPid');
      assert.equal(typeof watchdogPid, 'number');
      const [code] = await script.exited;
      assert.equal(code, 0, 'the process ended by itself');
      // To the watchdog that is a proxy that died; mongod was not locked, so it leaves.
      await untilGone(watchdogPid as number);
      assert.equal((await client.db('admin').command({ currentOp: 1 }))['fsyncLock'], undefined);
    } finally {
      script.child.kill('SIGKILL');
    }
  });

  it('lets a process whose unlock failed exit, and leaves the next lock alone', async (t) => {
    const admin = client.db('admin');
    const script = runScript(scratch.dir, 'loses_its_lock.mjs', LOSES_ITS_LOCK, [server.uri, server.dbpath], t.signal);
    try {
      await script.line('locked');
      assert.equal(Number((await admin.command({ fsyncUnlock: 1 }))['lockCount']), 0, 'taken away by hand');
      script.child.stdin?.end('release\n');
      const outcome = await script.line('releaseError', 'released');
      assert.match(String(outcome['releaseError']), /fsync lock was released by another client/);
      // Someone else locks now; neither the finished process nor its watchdog may release that.
      await admin.command({ fsync: 1, lock: true });
      const [code] = await script.exited;
      assert.equal(code, 0, 'the process ended by itself');
      const { watchdogPid } = await script.line('watchdogPid');
      await untilGone(watchdogPid as number);
      assert.equal((await admin.command({ currentOp: 1 }))['fsyncLock'], true, 'the other lock is still held');
    } finally {
      script.child.kill('SIGKILL');
      await admin.command({ fsyncUnlock: 1 }).catch(() => undefined);
    }
  });
});

describe('the fsyncUnlock watchdog, where it runs', () => {
  it('keeps the mongodb URI off its command line and runs in a process group of its own', async (t) => {
    const server = await startDevServer({ args: ['--no-backup-cursor'] });
    const scratch = tempDir('watchdog-argv');
    // Stands in for credentials: anything in the URI is visible in `ps` if it is on the command line.
    const uri = `${server.uri}&appName=secret-s3cr3t`;
    const script = runScript(scratch.dir, 'arms_and_waits.mjs', ARMS_AND_WAITS, [uri], t.signal);
    try {
      const watchdogPid = (await script.line('watchdogPid'))['watchdogPid'] as number;
      const cmdline = fs.readFileSync(`/proc/${watchdogPid}/cmdline`, 'utf8');
      assert.doesNotMatch(cmdline, /s3cr3t|mongodb:/, `the watchdog's command line: ${cmdline.split('\0').join(' ')}`);
      // /proc/<pid>/stat: "pid (comm) state ppid pgrp ..."; comm may hold spaces, so split after ')'.
      const stat = fs.readFileSync(`/proc/${watchdogPid}/stat`, 'utf8');
      const pgrp = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
      assert.equal(pgrp, watchdogPid, 'the watchdog leads its own process group');
      script.child.stdin?.end();
      await script.exited;
      await untilGone(watchdogPid);
    } finally {
      script.child.kill('SIGKILL');
      await server.stop();
      server.cleanup();
      scratch.remove();
    }
  });
});

describe('the fsyncUnlock watchdog, the reply to its fsyncUnlock lost', () => {
  it("releases the dead proxy's lock once and keeps the DBA's", async (t) => {
    const server = await startDevServer({ args: ['--no-backup-cursor'] });
    const relay = await startFaultRelay(server.port);
    const scratch = tempDir('watchdog-lost-reply');
    const dba = new MongoClient(server.uri);
    const script = runScript(scratch.dir, 'arms_and_waits.mjs', ARMS_AND_WAITS, [`mongodb://127.0.0.1:${relay.port}/?directConnection=true`], t.signal);
    try {
      const watchdogPid = (await script.line('watchdogPid'))['watchdogPid'] as number;
      const admin = dba.db('admin');
      // The "proxy's" lock, then the DBA's: count 2.
      await admin.command({ fsync: 1, lock: true });
      assert.equal(Number((await admin.command({ fsync: 1, lock: true }))['lockCount']), 2);
      const lost = relay.loseReplyTo(fsyncUnlockMatch(false));
      // The proxy dies without disarming: the watchdog unlocks, and that reply is lost.
      script.child.kill('SIGKILL');
      await lost;
      await untilGone(watchdogPid);
      assert.equal(await drainLockCount(admin), 1, "the watchdog released exactly one lock: the DBA's is left");
    } finally {
      script.child.kill('SIGKILL');
      await dba.close();
      await relay.close();
      await server.stop();
      server.cleanup();
      scratch.remove();
    }
  });
});

describe('the fsyncUnlock watchdog, the reply to the lock lost and the count moved by someone else', () => {
  it('stays armed after the failed open, and releases one lock when the proxy exits', async (t) => {
    const server = await startDevServer({ args: ['--no-backup-cursor'] });
    const relay = await startFaultRelay(server.port);
    const scratch = tempDir('watchdog-lock-unknown');
    const dba = new MongoClient(server.uri);
    const relayUri = `mongodb://127.0.0.1:${relay.port}/?directConnection=true`;
    const lost = relay.loseReplyTo(fsyncLockMatch);
    const script = runScript(scratch.dir, 'opens_and_waits.mjs', OPENS_AND_WAITS, [relayUri, server.dbpath], t.signal);
    try {
      await lost;
      // The proxy's next look at mongod (its recount after the lost reply) waits until a
      // DBA has taken a lock too: the count is then 2, not the 1 that would prove the lock ours.
      const held = relay.hold((name) => name === 'currentOp');
      const admin = dba.db('admin');
      assert.equal(Number((await admin.command({ fsync: 1, lock: true }))['lockCount']), 2);
      void held.then((forward) => forward());
      const { openError } = await script.line('openError', 'opened');
      assert.match(String(openError), /lock count was 0 before it and is 2 now.*unlock watchdog \(pid \d+\) armed.*Do not also unlock by hand.*kill -USR1/);
      const { watchdogPid } = await script.line('watchdogPid');
      script.child.stdin?.end();
      await script.exited;
      // Still armed: with the proxy gone, the watchdog releases one lock, and leaves the other.
      await untilGone(watchdogPid as number);
      assert.equal(await drainLockCount(admin), 1);
    } finally {
      script.child.kill('SIGKILL');
      await dba.close();
      await relay.close();
      await server.stop();
      server.cleanup();
      scratch.remove();
    }
  });
});
