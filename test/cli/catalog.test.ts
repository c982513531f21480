/**
 * `hotbackup list` and `hotbackup purge` as an operator runs them, on a directory of real
 * backups taken through the proxy from the dev server: a full one, an incremental one
 * against it, and a directory without a manifest.
 * - list: JSON when piped and with --json, a table on a terminal (under script(1));
 * - purge --dry-run deletes nothing; purge --keep 1 deletes the full backup, which the
 *   incremental was taken against, and the incremental still checks out and opens;
 * - a base is kept while a kept backup lacks a file it took from it;
 * - purge by a user who is not root deletes read-only files in read-only directories;
 * - purge never deletes through a symbolic link;
 * - --keep counts the backups of each source (dbpath and mongod) apart;
 * - --remove-incomplete removes only unfinished backups whose marker says they ended
 *   (a real aborted one, one whose proxy is gone), never a backup still being written,
 *   nor lost+found, a nested catalog, or a directory that is no backup of ours;
 * - backups are ordered by when they finished, and one dated in the future is pointed out.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { MongoClient } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { CLI, CLI_NODE_FLAGS, tempDir } from '../helpers/paths.js';
import { assertMatchesManifest, countsOfCopy } from '../helpers/backups.js';
import { MANIFEST_FILENAME, readManifest } from '../../src/backup/manifest.js';
import { untilBackupEnds, untilCopying } from '../helpers/poll.js';
import type { EntryJson } from '../../src/cli/catalog_output.js';

const execFileAsync = promisify(execFile);

/**
 * Why the CLI cannot be run as nobody here, if it cannot: that needs root, and a checkout
 * nobody may read (one under a private directory, as `mktemp -d` makes) has no CLI for them.
 */
const NOBODY_CANNOT_RUN = ((): string | undefined => {
  if (process.getuid?.() !== 0) return 'needs root to run the CLI as another user';
  try {
    const probe = `require('fs').accessSync(${JSON.stringify(CLI)}, require('fs').constants.R_OK)`;
    execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', probe], { stdio: 'ignore' });
    return undefined;
  } catch {
    return `user nobody cannot read ${CLI} (this checkout lies under a directory private to its owner)`;
  }
})();
const DOCS = 3000;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function hotbackup(args: string[], wrapper: string[] = []): Promise<Run> {
  const command = [...wrapper, process.execPath, ...CLI_NODE_FLAGS, CLI, ...args];
  try {
    const { stdout, stderr } = await execFileAsync(command[0] as string, command.slice(1));
    return { code: 0, stdout, stderr };
  } catch (err) {
    const failed = err as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

type Listed = { root: string; backups: EntryJson[] };
type Purged = { root: string; keep: number; dryRun: boolean; warnings: string[]; backups: Array<EntryJson & { action: string; reason: string; removed: boolean }> };

/** What `hotbackup <args>` prints on a terminal (script(1) gives it one, as a person's shell would). */
function onTerminal(args: string[]): string {
  const command = [process.execPath, ...CLI_NODE_FLAGS, CLI, ...args].join(' ');
  return execFileSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8' }).replaceAll('\r', '');
}

/** Rewrites fields of the manifest in `dir`, as a clock set wrong when it was written would have. */
function editManifest(dir: string, fields: Record<string, unknown>): void {
  const file = path.join(dir, MANIFEST_FILENAME);
  fs.writeFileSync(file, JSON.stringify({ ...(JSON.parse(fs.readFileSync(file, 'utf8')) as object), ...fields }, null, 2));
}

/** Every path under `dir` with its inode and size: what "nothing was deleted or changed" compares. */
function tree(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[])
    .map((name) => {
      const stats = fs.lstatSync(path.join(dir, name));
      return `${name} ${stats.ino} ${stats.size}`;
    })
    .sort();
}

describe('hotbackup list and purge', () => {
  let server: RunningDevServer;
  let proxy: RunningProxy;
  let client: MongoClient;
  const scratch = tempDir('catalog');
  /** The pristine chain; each test works on a copy of its own (cp -a keeps the hard links). */
  const chain = path.join(scratch.dir, 'chain');
  let fullId = '';
  let copies = 0;
  const copyOfChain = (): string => {
    const root = path.join(scratch.dir, `root-${++copies}`);
    execFileSync('cp', ['-a', chain, root]);
    return root;
  };

  before(async () => {
    fs.mkdirSync(chain);
    server = await startDevServer({ args: ['--wiredTigerEngineConfigString', 'log=(file_max=1MB)', '--checkpoint-interval', '0'] });
    proxy = await startProxy(server);
    client = new MongoClient(proxy.uri);
    const admin = client.db('admin');
    await client.db('app').collection<{ _id: number; pad: string }>('a').insertMany(Array.from({ length: DOCS }, (_, i) => ({ _id: i, pad: 'a'.repeat(1000) })));
    await admin.command({ fsync: 1 });
    await admin.command({ backupStart: path.join(chain, 'full') });
    await admin.command({ backupStart: path.join(chain, 'incremental'), incrementalBase: path.join(chain, 'full') });
    fullId = (await readManifest(path.join(chain, 'full'))).backupId;
    // Files and no manifest, as another tool or an older hotbackup might leave. And what list passes over.
    fs.mkdirSync(path.join(chain, 'partial'));
    fs.writeFileSync(path.join(chain, 'partial', 'WiredTiger'), 'half');
    fs.writeFileSync(path.join(chain, 'README'), 'not a backup');
    // The streamed oplog beside the backups (serve --stream-oplog): neither listed nor purged.
    fs.mkdirSync(path.join(chain, 'oplog'));
    fs.writeFileSync(path.join(chain, 'oplog', 'oplog000000.bson'), '');
    fs.mkdirSync(path.join(chain, '.hidden'));
  });

  after(async () => {
    await client.close();
    await proxy.stop();
    await server.stop();
    server.cleanup();
    scratch.remove();
  });

  it('list: JSON when the output is not a terminal, and with --json; the base, reuse and completeness of each', async () => {
    const piped = await hotbackup(['list', chain]);
    assert.equal(piped.code, 0, piped.stderr);
    const listed = JSON.parse(piped.stdout) as Listed;
    assert.equal(listed.root, chain);
    assert.deepEqual(
      listed.backups.map((b) => [b.name, b.complete, b.strategy, b.base?.name ?? null, b.verified]),
      [
        ['full', true, 'backupCursor', null, null],
        ['incremental', true, 'backupCursor', 'full', null],
        ['partial', false, null, null, null],
      ],
    );
    const [full, incremental, partial] = listed.backups as [EntryJson, EntryJson, EntryJson];
    assert.equal(full.bytesReused, 0);
    assert.equal(full.backupId, fullId);
    assert.deepEqual(incremental.base, { backupId: fullId, path: path.join(chain, 'full'), name: 'full' });
    assert.ok(incremental.bytesReused > 0 && incremental.bytesReused < (incremental.bytes ?? 0));
    assert.match(partial.incomplete ?? '', /^no manifest/);
    const flagged = await hotbackup(['list', chain, '--json']);
    assert.deepEqual(JSON.parse(flagged.stdout), listed);
  });

  it('list: a table on a terminal', () => {
    const screen = onTerminal(['list', chain]);
    const lines = screen.trimEnd().split('\n');
    assert.match(lines[0] ?? '', /^NAME\s+FINISHED\s+SIZE\s+REUSED\s+STRATEGY\s+BASE\s+COMPLETE\s+VERIFIED$/);
    assert.match(lines[1] ?? '', /^full\s+\S+Z\s+[\d.]+ MiB\s+0 B\s+backupCursor\s+-\s+yes\s+-$/);
    assert.match(lines[2] ?? '', /^incremental\s+\S+Z\s+[\d.]+ MiB\s+[\d.]+ MiB\s+backupCursor\s+full\s+yes\s+-$/);
    assert.match(lines[3] ?? '', /^partial\s+\S+Z\s+-\s+-\s+-\s+-\s+no\s+-$/);
    assert.match(screen, /Incomplete:\n {2}partial: no manifest/);
  });

  it('list shows a backup verified once hotbackup verify passed it, not before, and FAILED once it was corrupted and verified again', async () => {
    const root = copyOfChain();
    const list = async (): Promise<Map<string, EntryJson>> => {
      const run = await hotbackup(['list', root]);
      assert.equal(run.code, 0, run.stderr);
      return new Map((JSON.parse(run.stdout) as Listed).backups.map((b) => [b.name, b]));
    };
    const table = (): string[] => {
      const command = [process.execPath, ...CLI_NODE_FLAGS, CLI, 'list', root].join(' ');
      return execFileSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8' }).replaceAll('\r', '').trimEnd().split('\n');
    };
    assert.equal((await list()).get('full')?.verified, null, 'never verified');

    const full = path.join(root, 'full');
    const before = Date.now();
    const good = await hotbackup(['verify', full]);
    assert.equal(good.code, 0, good.stderr);
    const afterGood = await list();
    const verified = afterGood.get('full')?.verified;
    assert.equal(verified?.ok, true);
    assert.ok(Date.parse(verified.verifiedAt) >= before - 1000 && Date.parse(verified.verifiedAt) <= Date.now(), verified.verifiedAt);
    assert.equal(afterGood.get('incremental')?.verified, null, 'only the backup verified');
    const day = verified.verifiedAt.slice(0, 10);
    assert.match(table()[1] ?? '', new RegExp(`^full\\s.*\\syes\\s+yes ${day}$`));
    // Verified again, the record is no file of the backup: still complete.
    assert.equal((await hotbackup(['verify', full])).code, 0);

    // One flipped byte in the journal (copied into each backup, shared with none).
    const journal = (await readManifest(full)).files.find((f) => f.path.startsWith('journal/'))?.path as string;
    const fd = fs.openSync(path.join(full, journal), 'r+');
    const byte = Buffer.alloc(1);
    fs.readSync(fd, byte, 0, 1, 100);
    fs.writeSync(fd, Buffer.from([byte[0]! ^ 0x01]), 0, 1, 100);
    fs.closeSync(fd);
    assert.equal((await list()).get('full')?.verified?.ok, true, 'what list shows is the last verify, not a check of its own');
    const damaged = await hotbackup(['verify', full]);
    assert.equal(damaged.code, 1, damaged.stderr);
    assert.equal((await list()).get('full')?.verified?.ok, false);
    assert.match(table()[1] ?? '', new RegExp(`^full\\s.*\\syes\\s+FAILED ${day}$`));
  });

  it('verify by a user who may not write the backup directory: the damaged verdict is written over the earlier record, or it says list will still show it', { skip: NOBODY_CANNOT_RUN }, async () => {
    const root = copyOfChain();
    const full = path.join(root, 'full');
    assert.equal((await hotbackup(['verify', full])).code, 0);
    fs.chmodSync(scratch.dir, 0o755);
    execFileSync('chown', ['-R', '65534:65534', root]);
    const asNobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
    const verifiedOk = async () => (JSON.parse((await hotbackup(['list', root])).stdout) as Listed).backups.find((b) => b.name === 'full')?.verified?.ok;
    const journal = (await readManifest(full)).files.find((f) => f.path.startsWith('journal/'))?.path as string;
    fs.appendFileSync(path.join(full, journal), 'x');
    // The directory takes no new file; the record, its owner's, is written over in place.
    fs.chmodSync(full, 0o555);
    const inPlace = await hotbackup(['verify', full], asNobody);
    assert.equal(inPlace.code, 1, inPlace.stderr);
    assert.doesNotMatch(inPlace.stdout, /^note:/m);
    assert.equal(await verifiedOk(), false);

    // Neither: the verdict stands, and the operator is told what list goes on showing.
    fs.chmodSync(full, 0o755);
    assert.equal((await hotbackup(['verify', path.join(root, 'incremental')])).code, 0);
    const incremental = path.join(root, 'incremental');
    execFileSync('chown', ['-R', '65534:65534', incremental]);
    fs.chmodSync(path.join(incremental, 'hotbackup-verified.json'), 0o444);
    fs.chmodSync(incremental, 0o555);
    const incrementalJournal = (await readManifest(incremental)).files.find((f) => f.path.startsWith('journal/'))?.path as string;
    fs.appendFileSync(path.join(incremental, incrementalJournal), 'x');
    const stuck = await hotbackup(['verify', incremental], asNobody);
    assert.equal(stuck.code, 1, stuck.stderr);
    assert.match(
      stuck.stdout,
      new RegExp(`^note: this verification could not be recorded in ${incremental}/hotbackup-verified\\.json \\(.*EACCES.*\\); hotbackup list will go on showing the earlier verification \\(ok, \\S+\\) until hotbackup-verified\\.json is removed, or the directory is writable and verified again$`, 'm'),
    );
  });

  it('purge --dry-run says what would go and deletes nothing', async () => {
    const root = copyOfChain();
    const before = tree(root);
    const run = await hotbackup(['purge', root, '--keep', '1', '--dry-run']);
    assert.equal(run.code, 0, run.stderr);
    const purged = JSON.parse(run.stdout) as Purged;
    assert.equal(purged.dryRun, true);
    assert.deepEqual(
      purged.backups.map((b) => [b.name, b.action, b.removed]),
      [
        ['full', 'remove', false],
        ['incremental', 'keep', false],
        ['partial', 'leave', false],
      ],
    );
    const of = `of the backups of ${server.dbpath} (mongod at ${purged.backups[0]?.source?.host} from ${os.hostname()})`;
    assert.equal(purged.backups[0]?.source?.dbpath, server.dbpath);
    assert.match(purged.backups[0]?.reason ?? '', /^beyond --keep 1 of the backups of .*; the base of incremental, which holds its own copies \(clones or hard links\) of the \d+ files it took from it$/);
    assert.ok(purged.backups[0]?.reason.startsWith(`beyond --keep 1 ${of}; `));
    // On a terminal, one line per directory, in words.
    const screen = onTerminal(['purge', root, '--keep', '1', '--dry-run']);
    assert.match(screen, /^would delete full \(\S+Z, [\d.]+ MiB\): beyond --keep 1 of the backups of .*; the base of incremental/m);
    assert.ok(screen.includes(`: within --keep 1 ${of}\n`), screen);
    assert.match(screen, /^keep {9}incremental \(\S+Z, [\d.]+ MiB\): within --keep 1 /m);
    assert.match(screen, /^leave {8}partial \(\S+Z\): no manifest and no hotbackup-incomplete\.json: not a backup of ours; left alone, even with --remove-incomplete$/m);
    assert.match(screen, /^Dry run: nothing was deleted\.$/m);
    assert.deepEqual(tree(root), before);
  });

  it('purge --keep 1 on a chain deletes the base; the newest keeps every file it needs and opens with the same count', async () => {
    const root = copyOfChain();
    const run = await hotbackup(['purge', root, '--keep', '1']);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(
      (JSON.parse(run.stdout) as Purged).backups.map((b) => [b.name, b.action, b.removed]),
      [
        ['full', 'remove', true],
        ['incremental', 'keep', false],
        ['partial', 'leave', false],
      ],
    );
    assert.deepEqual(fs.readdirSync(root).sort(), ['.hidden', 'README', 'incremental', 'oplog', 'partial']);
    const kept = path.join(root, 'incremental');
    const manifest = await assertMatchesManifest(kept);
    assert.ok(manifest.files.some((f) => f.reusedFrom?.backupId === fullId));
    assert.deepEqual(await countsOfCopy(kept, scratch.dir, ['a']), { a: DOCS });
    // Listed on its own now: its base is recorded, no longer in the root.
    const listed = JSON.parse((await hotbackup(['list', root])).stdout) as Listed;
    assert.deepEqual(listed.backups[0]?.base, { backupId: fullId, path: path.join(chain, 'full'), name: null });
  });

  it('purge keeps a base while a kept backup lacks a file it took from it', async () => {
    const root = copyOfChain();
    const manifest = await readManifest(path.join(root, 'incremental'));
    const shared = manifest.files.find((f) => f.reusedFrom !== undefined && f.path.startsWith('collection-'));
    assert.ok(shared !== undefined);
    fs.rmSync(path.join(root, 'incremental', shared.path));
    const run = await hotbackup(['purge', root, '--keep', '1']);
    assert.equal(run.code, 0, run.stderr);
    const purged = JSON.parse(run.stdout) as Purged;
    assert.deepEqual(
      purged.backups.map((b) => [b.name, b.action, b.removed]),
      [
        ['full', 'keep', false],
        ['incremental', 'keep', false],
        ['partial', 'leave', false],
      ],
    );
    assert.equal(purged.backups[0]?.reason, `needed by incremental: it lists ${shared.path} as taken from here, and its own copy is missing`);
    assert.deepEqual(fs.readdirSync(root).sort(), ['.hidden', 'README', 'full', 'incremental', 'oplog', 'partial']);
  });

  it('purge never deletes through a symbolic link, which list shows as one', async () => {
    const root = copyOfChain();
    // A backup kept elsewhere, linked into the root: older than every backup of the root.
    const elsewhere = path.join(scratch.dir, `elsewhere-${copies}`);
    const precious = path.join(elsewhere, 'precious');
    fs.mkdirSync(elsewhere);
    execFileSync('cp', ['-a', path.join(chain, 'full'), precious]);
    fs.symlinkSync(precious, path.join(root, 'linked'));
    const before = tree(elsewhere);

    const run = await hotbackup(['purge', root, '--keep', '1', '--remove-incomplete']);
    assert.equal(run.code, 0, run.stderr);
    const linked = (JSON.parse(run.stdout) as Purged).backups.find((b) => b.name === 'linked');
    assert.ok(linked !== undefined, 'the link is in the plan');
    assert.deepEqual([linked.action, linked.removed, linked.complete, linked.symlink], ['leave', false, false, precious]);
    assert.equal(linked.reason, `a symbolic link to ${precious}: purge never deletes through one; left alone`);
    assert.deepEqual(tree(elsewhere), before, 'nothing behind the link was touched');
    assert.equal(fs.lstatSync(path.join(root, 'linked')).isSymbolicLink(), true);

    const listed = JSON.parse((await hotbackup(['list', root])).stdout) as Listed;
    const shown = listed.backups.find((b) => b.name === 'linked');
    assert.deepEqual([shown?.complete, shown?.symlink, shown?.backupId], [false, precious, null]);
    assert.match(onTerminal(['list', root]), new RegExp(`^ {2}linked: a symbolic link to ${precious}: not followed`, 'm'));
  });

  it('purge --keep counts the backups of each source apart: the only backup of another dbpath is kept, and the output says which source each belongs to', async () => {
    const root = copyOfChain();
    const ours = (await readManifest(path.join(chain, 'full'))).source;
    // The newest backup in the root is of another dev server: --keep 1 over the whole root kept it alone.
    const other = await startDevServer({ args: ['--checkpoint-interval', '0'] });
    const otherProxy = await startProxy(other);
    const otherClient = new MongoClient(otherProxy.uri);
    try {
      await otherClient.db('app').collection<{ _id: number }>('a').insertOne({ _id: 1 });
      await otherClient.db('admin').command({ backupStart: path.join(root, 'other-db') });
    } finally {
      await otherClient.close();
      await otherProxy.stop();
      await other.stop();
      other.cleanup();
    }
    const theirs = (await readManifest(path.join(root, 'other-db'))).source;
    assert.notEqual(theirs.dbpath, ours.dbpath);

    const dry = await hotbackup(['purge', root, '--keep', '1', '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    const planned = JSON.parse(dry.stdout) as Purged;
    assert.deepEqual(
      planned.backups.map((b) => [b.name, b.action, b.source?.dbpath ?? null]),
      [
        ['full', 'remove', ours.dbpath],
        ['incremental', 'keep', ours.dbpath],
        ['partial', 'leave', null],
        ['other-db', 'keep', theirs.dbpath],
      ],
    );
    // The proxy's machine, recorded in the manifest, is part of the source.
    assert.deepEqual(planned.backups[3]?.source, { dbpath: theirs.dbpath, host: theirs.host, hostname: os.hostname() });
    assert.equal(planned.backups[3]?.reason, `within --keep 1 of the backups of ${theirs.dbpath} (mongod at ${theirs.host} from ${os.hostname()})`);
    // On a terminal: one heading per source, its backups under it.
    const screen = onTerminal(['purge', root, '--keep', '1', '--dry-run']);
    assert.match(
      screen,
      new RegExp(`^Backups of ${ours.dbpath} \\(mongod at ${ours.host} from ${os.hostname()}\\): 2, keeping the newest 1\nwould delete full .*\nkeep {9}incremental .*\n`, 'm'),
    );
    assert.match(screen, new RegExp(`^Backups of ${theirs.dbpath} \\(mongod at ${theirs.host} from ${os.hostname()}\\): 1, keeping the newest 1\nkeep {9}other-db .*\n`, 'm'));
    assert.match(screen, /^Not complete backups:\nleave {8}partial /m);
    // list shows the source of each once the root holds more than one.
    const table = onTerminal(['list', root]).split('\n');
    assert.match(table[0] ?? '', /\sSOURCE$/);
    assert.ok(table.some((line) => line.startsWith('other-db') && line.endsWith(`${os.hostname()} ${theirs.host}:${theirs.dbpath}`)), table.join('\n'));

    const run = await hotbackup(['purge', root, '--keep', '1']);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(fs.readdirSync(root).sort(), ['.hidden', 'README', 'incremental', 'oplog', 'other-db', 'partial']);
    await assertMatchesManifest(path.join(root, 'other-db'));
  });

  it('--remove-incomplete removes only unfinished backups that ended (aborted, or their proxy gone), never a running one, lost+found, a nested catalog or a directory that is no backup of ours', async () => {
    const root = copyOfChain();
    const admin = client.db('admin');
    // A real aborted backup.
    await admin.command({ backupThrottle: '1MB' });
    await admin.command({ backupStart: path.join(root, 'aborted'), async: true });
    await untilCopying(admin);
    await admin.command({ backupAbort: 1 });
    await untilBackupEnds(admin);
    // One whose proxy died: its marker still says running, and its writer is gone.
    const dead = path.join(root, 'writer-gone');
    fs.mkdirSync(dead);
    const markerModule = path.join(path.dirname(CLI), 'backup', 'backup_marker.js');
    execFileSync(process.execPath, [
      '--input-type=module',
      '-e',
      'const { IncompleteMarker } = await import(process.argv[1]); await new IncompleteMarker(process.argv[2], { backupId: crypto.randomUUID(), startedAt: new Date() }).begin();',
      markerModule,
      dead,
    ]);
    // Not ours, or not ours to judge.
    fs.mkdirSync(path.join(root, 'lost+found'));
    fs.mkdirSync(path.join(root, 'nested'));
    execFileSync('cp', ['-a', path.join(chain, 'full'), path.join(root, 'nested', 'full')]);
    // A backup being written as purge runs: crawling, so that it is still running when purge looks.
    await admin.command({ backupThrottle: '64KB' });
    const running = path.join(root, 'running');
    await admin.command({ backupStart: running, async: true });
    await untilCopying(admin);
    try {
      const run = await hotbackup(['purge', root, '--keep', '1', '--remove-incomplete']);
      assert.equal(run.code, 0, run.stderr);
      const purged = JSON.parse(run.stdout) as Purged;
      const actions = Object.fromEntries(purged.backups.map((b) => [b.name, [b.action, b.removed]]));
      assert.deepEqual(actions, {
        full: ['remove', true],
        incremental: ['keep', false],
        aborted: ['remove', true],
        'writer-gone': ['remove', true],
        partial: ['leave', false],
        'lost+found': ['leave', false],
        nested: ['leave', false],
        running: ['leave', false],
      });
      const reason = (name: string) => purged.backups.find((b) => b.name === name)?.reason ?? '';
      assert.match(reason('aborted'), /^an unfinished backup: no manifest, and its hotbackup-incomplete\.json says it was aborted/);
      assert.match(reason('writer-gone'), /^an unfinished backup: no manifest, and its hotbackup-incomplete\.json says running, but the proxy writing it \(pid \d+ on .*\) is gone/);
      assert.match(reason('running'), /^a backup still being written \(by pid \d+ on .*\): never removed$/);
      for (const name of ['partial', 'lost+found', 'nested']) {
        assert.match(reason(name), /^no manifest and no hotbackup-incomplete\.json: not a backup of ours; left alone, even with --remove-incomplete$/, name);
      }
      assert.deepEqual(fs.readdirSync(root).sort(), ['.hidden', 'README', 'incremental', 'lost+found', 'nested', 'oplog', 'partial', 'running']);
      assert.deepEqual(fs.readdirSync(path.join(root, 'nested')), ['full']);
      // The backup being written went on, undisturbed.
      assert.equal((await admin.command({ backupStatus: 1 }))['inProgress'], true);
    } finally {
      await admin.command({ backupThrottle: 0 });
      await admin.command({ backupAbort: 1 }).catch(() => undefined);
      await untilBackupEnds(admin);
    }
  });

  it('purge orders backups by when they finished, and says which finished in the future', async () => {
    const root = copyOfChain();
    // full started while the clock was a day ahead, and finished after it was set right.
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString();
    editManifest(path.join(root, 'full'), { startedAt: tomorrow });
    let run = await hotbackup(['purge', root, '--keep', '1', '--dry-run']);
    assert.equal(run.code, 0, run.stderr);
    let purged = JSON.parse(run.stdout) as Purged;
    assert.deepEqual(
      purged.backups.filter((b) => b.complete).map((b) => [b.name, b.action]),
      [
        ['full', 'remove'],
        ['incremental', 'keep'],
      ],
    );
    assert.deepEqual(purged.warnings, []);

    // Now the other way: incremental's whole run was dated a day ahead. It stays the newest, and purge says so.
    editManifest(path.join(root, 'incremental'), { startedAt: tomorrow, finishedAt: tomorrow });
    run = await hotbackup(['purge', root, '--keep', '1', '--dry-run']);
    purged = JSON.parse(run.stdout) as Purged;
    const warning = `incremental finished at ${tomorrow}, which is in the future (was the clock ahead when it was taken?): it counts as the newest backup of its source until then`;
    assert.deepEqual(purged.warnings, [warning]);
    assert.match(onTerminal(['purge', root, '--keep', '1', '--dry-run']), new RegExp(`^Warning: ${warning.replace(/[.?()]/g, '\\$&')}$`, 'm'));
  });

  it('purge run by its owner, not root, deletes read-only files in read-only directories', { skip: NOBODY_CANNOT_RUN }, async () => {
    const root = copyOfChain();
    // nobody must reach the root through the test's own directory.
    fs.chmodSync(scratch.dir, 0o755);
    execFileSync('chown', ['-R', '65534:65534', root]);
    execFileSync('chmod', ['-R', 'a-w', path.join(root, 'full')]);
    const run = await hotbackup(['purge', root, '--keep', '1'], ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(fs.existsSync(path.join(root, 'full')), false);
    await assertMatchesManifest(path.join(root, 'incremental'));
  });

  it('refuses --keep 0 or none, and says so when the root cannot be read', async () => {
    const zero = await hotbackup(['purge', chain, '--keep', '0']);
    assert.equal(zero.code, 2);
    assert.equal(zero.stderr, 'hotbackup purge: --keep must be a whole number of at least 1 (the newest backups to keep), got 0\n');
    assert.equal((await hotbackup(['purge', chain])).code, 2);
    const missing = path.join(scratch.dir, 'no-such-root');
    const run = await hotbackup(['list', missing]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, new RegExp(`^hotbackup list: cannot read ${missing}: ENOENT`));
    assert.equal(fs.existsSync(path.join(chain, 'full')), true);
  });
});
