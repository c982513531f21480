/**
 * `hotbackup restore --oplog --until` onto files a newer WiredTiger wrote, and `--mongod`:
 * the CLI as a child process. The dev server refuses, before it starts, a dbpath whose
 * WiredTiger file names another WiredTiger than its own (a mongod 7.0 backup: 11.x);
 * `--mongod PATH` starts that binary instead. No mongod can be installed here, so PATH is
 * test/fixtures/fake_mongod.sh: mongod's command line translated to `hotbackup dev-server`
 * (an unknown flag refused), its --setParameter values recorded for the test, exec'ed, so
 * that the process restore starts, polls, shuts down and waits for is the server itself.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { MANIFEST_FILENAME, readManifest } from '../../src/backup/manifest.js';
import { RECOVER_PARAMETERS, REPLAY_PARAMETERS, mongodLogFile } from '../../src/cli/restore_oplog.js';
import { DEV_SERVER_WIREDTIGER, formatWiredTigerVersion } from '../../src/cli/wiredtiger_version.js';
import { wiredtigerVersion } from '../../src/devserver/storage/wiredtiger.js';
import { xxh3Hex } from '../helpers/checksum.js';
import { runCli, startCli } from '../helpers/cli_run.js';
import { makeOplogBackup, SECS, seqDocsIn } from '../helpers/oplog_backup.js';
import { CLI, PROJECT_ROOT, tempDir } from '../helpers/paths.js';
import { processAlive, until, untilGone } from '../helpers/poll.js';

const FAKE_MONGOD = path.join(PROJECT_ROOT, 'test', 'fixtures', 'fake_mongod.sh');
const FORGED_BANNER = 'WiredTiger 11.2.0: (November 10, 2022)';

/** Every file in `dir`, relative, recursively. */
function filesUnder(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }) as string[]).filter((name) => fs.statSync(path.join(dir, name)).isFile()).sort();
}

describe('hotbackup restore --oplog: WiredTiger guard and --mongod', () => {
  const scratch = tempDir('restore-mongod');
  let backup: string;
  let oplogDir: string;
  let forged: string;

  before(async () => {
    ({ backup, oplogDir } = await makeOplogBackup(scratch.dir));
    // The same backup as mongod 7.0 would have written its WiredTiger file, its manifest
    // made to agree, so that the restore copies it as it is.
    forged = path.join(scratch.dir, 'forged');
    fs.cpSync(backup, forged, { recursive: true });
    const banner = path.join(forged, 'WiredTiger');
    const lines = fs.readFileSync(banner, 'latin1').split('\n');
    assert.match(lines[1] ?? '', /^WiredTiger 3\.2\.1: /);
    lines[1] = FORGED_BANNER;
    fs.writeFileSync(banner, lines.join('\n'), 'latin1');
    const manifestFile = path.join(forged, MANIFEST_FILENAME);
    const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as { files: Array<{ path: string; size: number; checksum: string }>; totals: { bytes: number } };
    const listed = manifest.files.find((file) => file.path === 'WiredTiger');
    assert.ok(listed !== undefined, 'the backup lists its WiredTiger file');
    const bytes = fs.readFileSync(banner);
    manifest.totals.bytes += bytes.length - listed.size;
    listed.size = bytes.length;
    listed.checksum = xxh3Hex(bytes);
    fs.writeFileSync(manifestFile, JSON.stringify(manifest));
  });

  after(() => {
    scratch.remove();
  });

  const fakeMongodEnv = (record: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({ FAKE_MONGOD_NODE: process.execPath, FAKE_MONGOD_CLI: CLI, FAKE_MONGOD_RECORD: record, ...extra });

  it("the guard's version is the dev server's own WiredTiger", () => {
    assert.match(wiredtigerVersion(), new RegExp(`^WiredTiger ${formatWiredTigerVersion(DEV_SERVER_WIREDTIGER).replaceAll('.', '\\.')}: `));
  });

  it('refuses, before anything starts, files a newer WiredTiger wrote: exit 5, the command that finishes the job, the dbpath untouched', async () => {
    const target = path.join(scratch.dir, 'refused');
    const run = await runCli(['restore', forged, '--to', target, '--oplog', oplogDir, '--until', `${SECS},6`]);
    assert.equal(run.code, 5, run.stderr);
    assert.match(run.stdout, /^Restored .* every checksum matched/m);
    assert.doesNotMatch(run.stdout, /Replaying/);
    assert.match(run.stderr, /this backup was written by WiredTiger 11\.2\.0 \(mongod\), which the dev server cannot open safely: pass --mongod <path to the mongod that wrote it>/);
    assert.ok(run.stderr.includes(`\`hotbackup restore ${forged} --to ${target} --force --oplog ${oplogDir} --until ${SECS},6 --mongod <path to mongod>\``), run.stderr);
    // Exactly the backup's files, byte for byte: WiredTiger never opened them (its open
    // writes WiredTiger.lock and a journal file, and its close a new WiredTiger.turtle).
    const manifest = await readManifest(forged);
    assert.deepEqual(filesUnder(target), manifest.files.map((file) => file.path).sort());
    for (const file of manifest.files) assert.equal(xxh3Hex(fs.readFileSync(path.join(target, file.path))), file.checksum, file.path);
  });

  it('--mongod: recovers as a standalone, replays through a plain standalone on our port, shuts it down: both gone, the data up to --until', async () => {
    const target = path.join(scratch.dir, 'with-mongod');
    const record = path.join(scratch.dir, 'record-ok');
    const run = await runCli(['restore', forged, '--to', target, '--oplog', oplogDir, '--until', `${SECS},6`, '--mongod', FAKE_MONGOD], fakeMongodEnv(record));
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, new RegExp(`Recovering .* with mongod ${FAKE_MONGOD} \\(recoverFromOplogAsStandalone`));
    assert.match(run.stdout, new RegExp(`up to 1700000100,6, through mongod ${FAKE_MONGOD}\\.`));
    assert.match(run.stdout, /Replayed 3 oplog entries .*: 3 applied\./);
    // Two starts: the recovery with mongod's two parameters, then the replay.
    assert.deepEqual(fs.readFileSync(record, 'utf8').split('\n'), [RECOVER_PARAMETERS.join(' '), REPLAY_PARAMETERS.join(' '), '']);
    assert.deepEqual(RECOVER_PARAMETERS, ['recoverFromOplogAsStandalone=true', 'takeUnstableCheckpointOnShutdown=true']);
    // Its output, kept beside the dbpath: each start on the port restore gave it, each stopped, its process gone.
    const log = fs.readFileSync(mongodLogFile(target), 'utf8').split('\n');
    const ports = log.flatMap((line) => /^--- hotbackup restore: .* --port (\d+) --bind_ip 127\.0\.0\.1/.exec(line)?.[1] ?? []).map(Number);
    const servers = log.flatMap((line) => (line.startsWith('{') ? [JSON.parse(line) as { msg?: string; pid: number; address?: { host: string; port: number } }] : []));
    const listening = servers.filter((entry) => entry.msg === 'dev server listening');
    assert.deepEqual(listening.map((entry) => entry.address), ports.map((port) => ({ host: '127.0.0.1', port })));
    assert.equal(servers.filter((entry) => entry.msg === 'dev server stopped').length, 2);
    for (const { pid } of listening) assert.equal(processAlive(pid), false, `pid ${pid} still runs`);
    assert.match(run.stdout, /holds the backup and the oplog up to 1700000100,6\./);
    assert.deepEqual(await seqDocsIn(target), [0, 1, 2, 3, 4, 5].map((i) => ({ _id: i })));
  });

  it('--mongod that exits at start: exit 5, with its log tail, and no start after it', async () => {
    const target = path.join(scratch.dir, 'mongod-fails');
    const record = path.join(scratch.dir, 'record-fail');
    const env = fakeMongodEnv(record, { FAKE_MONGOD_EXIT_AT_START: 'WiredTiger error: unsupported WiredTiger file version' });
    const run = await runCli(['restore', forged, '--to', target, '--oplog', oplogDir, '--until', `${SECS},6`, '--mongod', FAKE_MONGOD], env);
    assert.equal(run.code, 5, run.stderr);
    assert.match(run.stderr, new RegExp(`cannot replay onto the restored .*: mongod ${FAKE_MONGOD} exited with code 100 before answering on 127\\.0\\.0\\.1:\\d+; its log \\(.*\\.restore-mongod\\.log\\) ends:\\n.*unsupported WiredTiger file version`));
    assert.equal(fs.readFileSync(record, 'utf8'), `${RECOVER_PARAMETERS.join(' ')}\n`);
  });

  it('--mongod that does not answer within --mongod-timeout: stopped, exit 5', async () => {
    const target = path.join(scratch.dir, 'mongod-hangs');
    const pidFile = path.join(scratch.dir, 'hanging.pid');
    const env = fakeMongodEnv(path.join(scratch.dir, 'record-hang'), { FAKE_MONGOD_HANG: pidFile });
    const run = await runCli(['restore', forged, '--to', target, '--oplog', oplogDir, '--until', `${SECS},6`, '--mongod', FAKE_MONGOD, '--mongod-timeout', '1'], env);
    assert.equal(run.code, 5, run.stderr);
    assert.match(run.stderr, new RegExp(`mongod ${FAKE_MONGOD} did not answer hello on 127\\.0\\.0\\.1:\\d+ within 1 s; it was stopped`));
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    assert.equal(processAlive(pid), false, `pid ${pid} still runs`);
    assert.equal(fs.readFileSync(`${pidFile}.signal`, 'utf8'), 'SIGTERM\n', 'stopped with SIGTERM, a clean shutdown');
  });

  it('SIGTERM while mongod starts: mongod stopped, exit 130, the command that finishes the job', async () => {
    const target = path.join(scratch.dir, 'mongod-interrupted');
    const pidFile = path.join(scratch.dir, 'interrupted.pid');
    const env = fakeMongodEnv(path.join(scratch.dir, 'record-interrupted'), { FAKE_MONGOD_HANG: pidFile });
    const run = startCli(['restore', forged, '--to', target, '--oplog', oplogDir, '--until', `${SECS},6`, '--mongod', FAKE_MONGOD], env);
    const pid = await until(() => fs.existsSync(pidFile) && Number(fs.readFileSync(pidFile, 'utf8')));
    run.child.kill('SIGTERM');
    const done = await run.done;
    await untilGone(pid);
    assert.equal(done.code, 130, done.stderr);
    assert.equal(fs.readFileSync(`${pidFile}.signal`, 'utf8'), 'SIGTERM\n', 'stopped with SIGTERM by restore, not left to the SIGKILL of last resort');
    assert.match(done.stderr, new RegExp(`interrupted by SIGTERM: ${target} holds the restored backup, but not the oplog up to --until; finish the job with \`hotbackup restore ${forged} --to ${target} --force --oplog ${oplogDir} --until ${SECS},6 --mongod ${FAKE_MONGOD}\``));
  });

  it('a server on the port that is not the mongod started (another dbpath): refused before any applyOps, stopped, exit 5', async () => {
    const target = path.join(scratch.dir, 'mongod-impostor');
    const other = path.join(scratch.dir, 'impostor-dbpath');
    fs.mkdirSync(other);
    const env = fakeMongodEnv(path.join(scratch.dir, 'record-impostor'), { FAKE_MONGOD_OTHER_DBPATH: other });
    const run = await runCli(['restore', forged, '--to', target, '--oplog', oplogDir, '--until', `${SECS},6`, '--mongod', FAKE_MONGOD], env);
    assert.equal(run.code, 5, run.stderr);
    assert.match(run.stderr, new RegExp(`mongod ${FAKE_MONGOD}: on 127\\.0\\.0\\.1:\\d+, the server answering is not the one started: it runs on dbpath ${other} \\(pid \\d+\\), not ${target}; nothing was applied`));
    // The dev server empties mongod.lock as it closes: stopped, and cleanly.
    assert.equal(fs.readFileSync(path.join(other, 'mongod.lock'), 'utf8'), '', 'the server that answered was stopped');
  });

  it('--mongod without --oplog is a usage error', async () => {
    const run = await runCli(['restore', backup, '--to', path.join(scratch.dir, 'x'), '--mongod', FAKE_MONGOD]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--mongod and --mongod-timeout go with --oplog/);
  });
});
