/**
 * `hotbackup verify` as an operator runs it, on backups taken through the proxy in front
 * of the dev server: a good one passes (exit 0); a flipped byte, a missing, an extra and a
 * resized file are each named (exit 1); a backup that failed or was interrupted says so
 * in that word (exit 3), and so does one stopped by backupAbort or killOp (aborted, exit 3);
 * a dbpath is no backup (exit 4). On a terminal it draws progress.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { runCli } from '../helpers/cli_run.js';
import { CLI, CLI_NODE_FLAGS, tempDir } from '../helpers/paths.js';
import { until, untilBackupEnds, untilCopying } from '../helpers/poll.js';
import { formatBytes } from '../../src/backup/units.js';

const MANIFEST = 'hotbackup-manifest.json';

interface VerdictJson {
  ok: boolean;
  state: string;
  files: number;
  problems: Array<{ file: string; problem: string }>;
  code?: number;
  errmsg?: string;
}

const canMountTmpfs = (() => {
  if (process.getuid?.() !== 0) return false;
  const probe = tempDir('mount-probe');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe.dir], { stdio: 'pipe' });
    execFileSync('umount', [probe.dir]);
    return true;
  } catch {
    return false;
  } finally {
    probe.remove();
  }
})();

describe('hotbackup verify', () => {
  let server: RunningDevServer;
  let proxy: RunningProxy;
  let client: MongoClient;
  const scratch = tempDir('verify-cli');
  const good = path.join(scratch.dir, 'good');
  /** A copy of the good backup, to damage. */
  const copyOfGood = (name: string): string => {
    const dir = path.join(scratch.dir, name);
    fs.cpSync(good, dir, { recursive: true });
    return dir;
  };
  const verify = (...args: string[]) => runCli(['verify', ...args]);

  before(async () => {
    server = await startDevServer();
    proxy = await startProxy(server);
    client = await MongoClient.connect(proxy.uri);
    await client.db('app').collection('docs').insertMany(Array.from({ length: 3000 }, (_, i) => ({ i, pad: 'd'.repeat(400) })));
    await client.db('app').collection('other').insertMany(Array.from({ length: 100 }, (_, i) => ({ i })));
    assert.deepEqual(await client.db('admin').command({ backupStart: good }), { ok: 1 });
  });

  after(async () => {
    await client?.close();
    await proxy?.stop();
    await server?.stop();
    server?.cleanup();
    scratch.remove();
  });

  it('accepts a good backup made through the proxy, and says what it checked', async () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(good, MANIFEST), 'utf8')) as { backupId: string; files: unknown[] };
    const run = await verify(good);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, new RegExp(`^${good}: complete\\. Backup ${manifest.backupId} \\(backupCursor, finished [^)]+\\): ${manifest.files.length} files, [\\d.]+ MiB, every checksum matches`));
    assert.equal(run.stderr, '');
    assert.doesNotMatch(run.stdout, /verifying \[/, 'no progress bar off a terminal');

    const json = await verify(good, '--json');
    assert.equal(json.code, 0);
    const verdict = JSON.parse(json.stdout) as VerdictJson;
    assert.equal(verdict.state, 'complete');
    assert.equal(verdict.files, manifest.files.length);
    assert.deepEqual(verdict.problems, []);
  });

  it('rejects a backup with one corrupted byte in a collection file, naming that file', async () => {
    const bad = copyOfGood('one-byte');
    const collection = fs.readdirSync(bad).filter((f) => f.startsWith('collection-')).sort((a, b) => fs.statSync(path.join(bad, b)).size - fs.statSync(path.join(bad, a)).size)[0] as string;
    const file = path.join(bad, collection);
    const fd = fs.openSync(file, 'r+');
    const middle = Math.floor(fs.fstatSync(fd).size / 2);
    const byte = Buffer.alloc(1);
    fs.readSync(fd, byte, 0, 1, middle);
    fs.writeSync(fd, Buffer.from([byte[0]! ^ 0x01]), 0, 1, middle);
    fs.closeSync(fd);

    const run = await verify(bad);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stdout, new RegExp(`^corrupted  ${collection}: its xxh3-64 checksum is [0-9a-f]{16}, the manifest says [0-9a-f]{16}$`, 'm'));
    assert.equal(run.stdout.trim().split('\n').length, 1, `only that file is reported: ${run.stdout}`);
    assert.match(run.stderr, new RegExp(`^hotbackup verify: ${bad} is damaged: 1 corrupted \\(${collection}\\) of the \\d+ files`));
  });

  it('reports missing, extra and resized files by name', async () => {
    const bad = copyOfGood('shuffled');
    const index = fs.readdirSync(bad).find((f) => f.startsWith('index-')) as string;
    fs.rmSync(path.join(bad, index));
    fs.writeFileSync(path.join(bad, 'journal', 'notes.txt'), 'not from the backup');
    fs.appendFileSync(path.join(bad, 'storage.bson'), 'x');
    // An S3 backup's claim, copied down with it: about the backup, not of it (not named extra).
    fs.writeFileSync(path.join(bad, '.hotbackup-claim-0b8e3c4a-1111-4c2e-9d7f-2a6f0e9c3b11'), '');

    const run = await verify(bad, '--json');
    assert.equal(run.code, 1, run.stderr);
    const verdict = JSON.parse(run.stdout) as VerdictJson;
    assert.equal(verdict.state, 'damaged');
    assert.equal(verdict.code, 301);
    assert.deepEqual(
      verdict.problems.map((p) => [p.problem, p.file]),
      [
        ['missing', index],
        ['extra', 'journal/notes.txt'],
        ['resized', 'storage.bson'],
      ],
    );
    assert.match(run.stderr, new RegExp(`is damaged: 1 missing \\(${index}\\), 1 extra \\(journal/notes.txt\\), 1 resized \\(storage.bson\\) of the \\d+ files`));
  });

  it('rejects a backup that failed, saying it failed and why', { skip: canMountTmpfs ? false : 'needs root to mount a small tmpfs' }, async () => {
    const full = path.join(scratch.dir, 'full');
    fs.mkdirSync(full);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', full]);
    try {
      const dest = path.join(full, 'backup');
      await assert.rejects(client.db('admin').command({ backupStart: dest }), /No space left on device/);
      const run = await verify(dest);
      assert.equal(run.code, 3, run.stderr);
      assert.match(run.stderr, new RegExp(`^hotbackup verify: ${dest} is not a complete backup: backup [0-9a-f-]{36} \\(started [^)]+\\) failed: .*No space left on device.*It has no manifest, so none of its files can be trusted: remove it and take a new backup\\.$`, 'm'));
    } finally {
      execFileSync('umount', [full]);
    }
  });

  it('rejects a backup the proxy was stopped in, and one it was killed in, saying interrupted', async () => {
    // A second proxy of our own, with its own state dir, so that stopping it leaves the suite's.
    const stateDir = path.join(scratch.dir, 'state-2');
    const doomed = await startProxy(server, ['--state-dir', stateDir]);
    const viaDoomed = await MongoClient.connect(doomed.uri);
    const stopped = path.join(scratch.dir, 'stopped');
    try {
      await viaDoomed.db('admin').command({ backupThrottle: '1MB' });
      await viaDoomed.db('admin').command({ backupStart: stopped, async: true });
      await untilCopying(viaDoomed.db('admin'));
      await viaDoomed.close(true);
      assert.equal(await doomed.stop(), 0);
    } finally {
      await viaDoomed.close(true);
      await doomed.stop();
    }
    const run = await verify(stopped);
    assert.equal(run.code, 3, run.stderr);
    assert.match(run.stderr, /is not a complete backup: backup [0-9a-f-]{36} \(started [^)]+\) was interrupted: backup interrupted: the proxy is shutting down\. It has no manifest/);

    const killedProxy = await startProxy(server, ['--state-dir', stateDir]);
    const viaKilled = await MongoClient.connect(killedProxy.uri);
    const killed = path.join(scratch.dir, 'killed');
    try {
      await viaKilled.db('admin').command({ backupThrottle: '1MB' });
      await viaKilled.db('admin').command({ backupStart: killed, async: true });
      await untilCopying(viaKilled.db('admin'));
      await viaKilled.close(true);
      await killedProxy.kill9();
    } finally {
      await viaKilled.close(true);
    }
    const afterKill = await verify(killed);
    assert.equal(afterKill.code, 3, afterKill.stderr);
    assert.match(afterKill.stderr, new RegExp(`was interrupted: the proxy writing it \\(pid ${killedProxy.child.pid} on [^)]+\\) is gone \\(killed, crashed, or the machine restarted\\) and never finished it`));

    // Its next start cleans up after it, and writes down what happened.
    const restarted = await startProxy(server, ['--state-dir', stateDir]);
    try {
      const died = new RegExp(`was interrupted: backup interrupted: the proxy \\(pid ${killedProxy.child.pid}\\) died during this backup`);
      const afterRestart = await until(async () => {
        const again = await verify(killed);
        return died.test(again.stderr) && again;
      });
      assert.equal(afterRestart.code, 3);
    } finally {
      await restarted.stop();
    }
  });

  it('rejects a backup stopped by backupAbort, and one stopped by killOp, saying aborted (exit 3)', async () => {
    const admin = client.db('admin');
    /** A backup crawling at 1 MiB/s, under way; `stop` ends it; its directory is verified once it has. */
    const stopped = async (name: string, stop: (backupId: string, dest: string) => Promise<void>): Promise<{ dest: string; backupId: string }> => {
      const dest = path.join(scratch.dir, name);
      await admin.command({ backupThrottle: '1MB' });
      const { backupId } = (await admin.command({ backupStart: dest, async: true })) as { backupId: string };
      try {
        await untilCopying(admin);
        await stop(backupId, dest);
        const last = (await untilBackupEnds(admin))['last'] as { backupId: string; state: string };
        assert.deepEqual([last.backupId, last.state], [backupId, 'aborted']);
      } finally {
        await admin.command({ backupThrottle: 0 });
      }
      return { dest, backupId };
    };
    const expectAborted = async ({ dest, backupId }: { dest: string; backupId: string }) => {
      const run = await verify(dest);
      assert.equal(run.code, 3, run.stderr);
      assert.equal(run.stdout, '');
      assert.match(
        run.stderr,
        new RegExp(`^hotbackup verify: ${dest} is not a complete backup: backup ${backupId} \\(started [^)]+\\) was aborted \\(killOp or backupAbort\\) at \\d{4}-[\\d-]+T[\\d:.]+Z\\. It has no manifest, so none of its files can be trusted: remove it and take a new backup\\.\\n$`),
      );
      const json = JSON.parse((await verify(dest, '--json')).stdout) as VerdictJson & { backupId: string };
      assert.deepEqual([json.ok, json.state, json.code, json.backupId], [false, 'aborted', 77, backupId]);
      assert.equal(fs.existsSync(path.join(dest, 'hotbackup-verified.json')), false, 'nothing recorded: there is no backup to speak for');
    };

    await expectAborted(
      await stopped('stopped-by-abort', async (backupId) => {
        assert.deepEqual(await admin.command({ backupAbort: 1 }), { backupId, state: 'aborted', info: `aborted; ${path.join(scratch.dir, 'stopped-by-abort')} has no manifest`, ok: 1 });
      }),
    );
    await expectAborted(
      await stopped('stopped-by-killop', async (_backupId, dest) => {
        // As Percona's users did: find it in currentOp, kill its opid.
        const inprog = (await admin.command({ currentOp: 1, 'command.backupStart': dest }))['inprog'] as Array<{ opid: number }>;
        assert.equal(inprog.length, 1, JSON.stringify(inprog));
        assert.deepEqual(await admin.command({ killOp: 1, op: inprog[0]?.opid }), { info: 'attempting to kill op', ok: 1 });
      }),
    );
  });

  it('says a dbpath is not a hotbackup backup', async () => {
    const run = await verify(server.dbpath);
    assert.equal(run.code, 4);
    assert.match(run.stderr, /is not a hotbackup backup: it has WiredTiger files but neither hotbackup-manifest.json nor hotbackup-incomplete.json/);
    const usage = await verify(good, '--rate', 'fast');
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--rate must be a number of bytes per second, or one with a unit such as 50MB; got 'fast'/);
  });

  it('reads through --rate, and shows its progress on a terminal', async () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(good, MANIFEST), 'utf8')) as { totals: { bytes: number } };
    // script(1) gives the CLI a terminal, as an operator's shell would; a ^C typed into it
    // reaches the CLI as SIGINT. At 1 byte/s the first chunk granted leaves the bucket in
    // debt for days: the progress line shows those bytes and no more, however slow or
    // fast the machine (without the throttle the verify would read on and finish).
    const command = [process.execPath, ...CLI_NODE_FLAGS, CLI, 'verify', good, '--rate', '1'].map((arg) => `'${arg}'`).join(' ');
    const terminal = spawn('script', ['-qefc', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let screen = '';
    terminal.stdout.on('data', (chunk: Buffer) => (screen += chunk.toString()));
    const exited = once(terminal, 'exit') as Promise<[number | null]>;
    let ended = false;
    void exited.then(() => (ended = true));
    const progress = () => [...screen.matchAll(/\r\x1b\[Kverifying \[[#.]{24}\] +[\d.]+%  ([\d.]+ (?:B|KiB|MiB)) of ([\d.]+ MiB)/g)].map((m) => ({ read: m[1] as string, total: m[2] as string }));
    try {
      // Five redraws (200 ms apart) after the first that shows bytes read, or the end of the verify.
      const shown = await until(() => {
        const lines = progress();
        const first = lines.findIndex((line) => line.read !== '0 B');
        return ended || (first >= 0 && lines.length - first > 5) ? lines.slice(first) : undefined;
      });
      assert.equal(ended, false, `the verify ended, at 1 byte/s: ${JSON.stringify(screen.slice(-300))}`);
      const [first] = shown;
      assert.ok(first !== undefined);
      assert.deepEqual(new Set(shown.map((line) => line.read)), new Set([first.read]), 'no byte more after the first chunk granted');
      assert.equal(first.total, formatBytes(manifest.totals.bytes));
      assert.notEqual(first.read, first.total);
      terminal.stdin.write('\x03');
      const [code] = await exited;
      assert.equal(code, 130);
      assert.match(screen, new RegExp(`hotbackup verify: interrupted by SIGINT; nothing was decided about ${good}`));
    } finally {
      terminal.kill('SIGKILL');
    }
  });
});
