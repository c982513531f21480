/**
 * `hotbackup start` (npm start) as a user runs it: the dev server is a child process of
 * its own, its log lines come out of start's stdout, and start's lifetime bounds the
 * child's in every direction: SIGTERM stops the proxy and then the child, a SIGKILLed
 * start leaves no child behind, a child that dies takes start down with exit 1, and a
 * child that cannot start is reported with its own error.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { MongoClient } from 'mongodb';
import { spawnCli, type CliProcess } from '../helpers/cli_process.js';
import { startDevServer } from '../helpers/dev_server.js';
import { CLI, tempDir } from '../helpers/paths.js';
import { processAlive, until, untilCopying, untilGone } from '../helpers/poll.js';
import { defaultStateDir } from '../../src/backup/work_dirs.js';

type LogEntry = Record<string, unknown>;

/** `hotbackup start` on a fresh dbpath and a free port, JSON logs; stopped and cleaned up after `body`. */
async function withStart(body: (start: CliProcess, dbpath: string, scratch: string) => Promise<void>): Promise<void> {
  const dbpath = tempDir('start-dbpath');
  const scratch = tempDir('start-scratch');
  let start: CliProcess | undefined;
  let childPid: number | undefined;
  try {
    start = await spawnCli(['start', '--dbpath', dbpath.dir, '--port', '0'], 'proxy listening');
    childPid = devServerPid(start.logs);
    await body(start, dbpath.dir, scratch.dir);
  } finally {
    await start?.kill9();
    // A failed test must not leave the child either (the lifeline ends it; wait for that).
    if (childPid !== undefined) await untilGone(childPid);
    dbpath.remove();
    // The proxy's state dir, beside the dbpath.
    fs.rmSync(defaultStateDir(dbpath.dir), { recursive: true, force: true });
    scratch.remove();
  }
}

/** The child's pid, as start logged it once the child listened (before the proxy did). */
function devServerPid(logs: LogEntry[]): number {
  const started = logs.find((entry) => entry['msg'] === 'dev server started as a child process');
  assert.ok(started !== undefined, 'start logs the dev server it started');
  assert.equal(typeof started['devServerPid'], 'number');
  return started['devServerPid'] as number;
}

function exitOf(cli: CliProcess): Promise<number | null> {
  if (cli.child.exitCode !== null || cli.child.signalCode !== null) return Promise.resolve(cli.child.exitCode);
  // 'close': every line it wrote has been read by then.
  return (once(cli.child, 'close') as Promise<[number | null]>).then(([code]) => code);
}

const indexOf = (logs: LogEntry[], match: (entry: LogEntry) => boolean): number => logs.findIndex(match);

describe('hotbackup start', () => {
  it('runs the dev server as its own process, backs up through it, and on SIGTERM stops the proxy, then the dev server', async () => {
    await withStart(async (start, dbpath, scratch) => {
      const childPid = devServerPid(start.logs);
      assert.notEqual(childPid, start.child.pid);

      // The child's own JSON line, passed through as it wrote it: its name, its pid.
      const listening = start.logs.find((entry) => entry['msg'] === 'dev server listening');
      assert.equal(listening?.['name'], 'dev-server');
      assert.equal(listening?.['pid'], childPid);
      assert.equal(listening?.['dbpath'], dbpath);

      const client = new MongoClient(`mongodb://127.0.0.1:${start.port}/?directConnection=true`);
      const destination = path.join(scratch, 'interrupted');
      try {
        const admin = client.db('admin');
        // The server behind the proxy is the child: its serverStatus says so.
        const status = await admin.command({ serverStatus: 1 });
        assert.equal(Number(status['pid']), childPid);

        await client.db('app').collection('docs').insertMany(Array.from({ length: 500 }, (_, i) => ({ i, pad: 'x'.repeat(500) })));
        const done = path.join(scratch, 'done');
        assert.deepEqual(await admin.command({ backupStart: done }), { ok: 1 });
        assert.ok(fs.existsSync(path.join(done, 'hotbackup-manifest.json')));

        // A second, throttled backup is still copying when the signal comes.
        await admin.command({ backupThrottle: '1MB' });
        await admin.command({ backupStart: destination, async: true });
        await untilCopying(admin);
      } finally {
        await client.close();
      }

      start.child.kill('SIGTERM');
      assert.equal(await exitOf(start), 0);
      // start waited for its child before exiting: nothing is left, not even for a moment.
      assert.equal(processAlive(childPid), false);

      const { logs } = start;
      const backupEnded = indexOf(logs, (entry) => entry['destination'] === destination && /^backup (failed|finished)$/.test(String(entry['msg'])));
      const serverClosing = indexOf(logs, (entry) => entry['pid'] === childPid && entry['msg'] === 'dev server shutting down');
      assert.ok(backupEnded >= 0, 'the running backup ended at shutdown');
      assert.equal(logs[backupEnded]?.['code'], 11600, 'interrupted by the shutdown');
      assert.ok(serverClosing > backupEnded, 'the dev server was asked to stop only after the backup had released its cursor');
      assert.ok(logs.some((entry) => entry['pid'] === childPid && entry['msg'] === 'dev server stopped'), 'WiredTiger closed cleanly');
      const exited = logs.find((entry) => entry['msg'] === 'dev server exited');
      assert.deepEqual(exited?.['exit'], { code: 0, signal: null });
      assert.equal(fs.existsSync(path.join(destination, 'hotbackup-manifest.json')), false);
    });
  });

  it('leaves no dev server behind when it is killed with SIGKILL', async () => {
    await withStart(async (start, dbpath) => {
      const childPid = devServerPid(start.logs);
      await start.kill9();
      // Nobody signals the child: it sees its stdin end and shuts down on its own.
      await untilGone(childPid);
      // And it closed its dbpath: another server can open it.
      const again = await startDevServer({ dbpath });
      await again.stop();
    });
  });

  it('stops the proxy and exits 1, saying why, when the dev server dies', async () => {
    await withStart(async (start) => {
      const childPid = devServerPid(start.logs);
      process.kill(childPid, 'SIGKILL');
      assert.equal(await exitOf(start), 1);
      assert.match(start.stderr(), new RegExp(`the dev server \\(pid ${childPid}\\) exited unexpectedly on SIGKILL; stopping the proxy`));
      assert.ok(start.logs.some((entry) => entry['level'] === 50 && String(entry['msg']).includes('exited unexpectedly')));
    });
  });

  it("reports a dev server that cannot start with the dev server's own error", async () => {
    const holder = await startDevServer();
    try {
      await assert.rejects(
        spawnCli(['start', '--dbpath', holder.dbpath, '--port', '0'], 'proxy listening'),
        /the dev server \(pid \d+, dbpath .*\) exited with code 1 before listening: Unable to lock the lock file: .*Another mongod instance is already running/s,
      );
    } finally {
      await holder.stop();
      holder.cleanup();
    }
  });

  it("shows the dev server's log lines in the human format when start uses it", async () => {
    const dbpath = tempDir('start-pretty');
    const child = spawn(process.execPath, [CLI, 'start', '--dbpath', dbpath.dir, '--port', '0', '--log-format', 'pretty'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const closed = once(child, 'close') as Promise<[number | null]>;
    try {
      const text = await until(() => {
        if (child.exitCode !== null) throw new Error(`start exited (${child.exitCode}) before listening`);
        const plain = stripVTControlCharacters(stdout);
        return plain.includes('Connect with:') && plain;
      });
      const line = text.split('\n').find((l) => l.includes('dev server listening'));
      assert.ok(line !== undefined, 'the dev server line is in the output');
      assert.match(line, /INFO.*\(dev-server\/\d+\).*dev server listening/);
      assert.equal(/^\{"level"/m.test(text), false, 'no raw JSON line in the human format');
    } finally {
      child.kill('SIGTERM');
      const [code] = await closed;
      dbpath.remove();
      fs.rmSync(defaultStateDir(dbpath.dir), { recursive: true, force: true });
      assert.equal(code, 0);
    }
  });
});
