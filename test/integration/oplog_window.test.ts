/**
 * The manifest's `oplog` window on a replica set, for each strategy, through the proxy,
 * while a writer goes on (issue 13: "on a replica set, backupStart records
 * oplogStart/oplogEnd in the manifest"):
 * - backupCursor: `start <= checkpointTimestamp <= end`, `start` the oplog's first entry,
 *   `end` an entry of `local.oplog.rs` no older than the newest before backupStart and
 *   no newer than the newest once the copy was under way (read when the cursor opened,
 *   not when the backup ended), and the copy holds it;
 * - fsyncLock (allowWriteBlocking): `end` is the newest entry while locked, and the
 *   newest entry of the copy;
 * - reflink, on an XFS loop mount (skipped with the reason where none can be made):
 *   `end` is the newest entry of the copy, made under the short lock;
 * - `hotbackup list` shows each one's `end` in its OPLOG TO column.
 * The copy is throttled until the test has seen it under way, then let go.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Long, MongoClient, Timestamp, type Db, type Document } from 'mongodb';
import { startReplicaSet, type RunningReplicaSet } from '../helpers/replica_set.js';
import { startDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { runCli } from '../helpers/cli_run.js';
import { CLI, CLI_NODE_FLAGS, tempDir } from '../helpers/paths.js';
import { inBackground, untilBackupEnds, untilCopying, type BackgroundTask } from '../helpers/poll.js';
import { loopFsUnavailable, mountLoopFs, type LoopFs } from '../helpers/loop_fs.js';
import { readManifest, type Manifest } from '../../src/backup/manifest.js';

type ManifestOpTime = NonNullable<Manifest['oplog']>['end'];
type Plain = { t: number; i: number };

const plain = (ts: Timestamp): Plain => ({ t: ts.high >>> 0, i: ts.low >>> 0 });
const compare = (a: Plain, b: Plain): number => (a.t === b.t ? a.i - b.i : a.t - b.t);
const cell = (ts: Plain): string => `${ts.t},${ts.i}`;

/** The oplog's oldest or newest entry, as `{ts, t}` in plain numbers. */
async function edge(client: MongoClient, direction: 1 | -1): Promise<ManifestOpTime> {
  const [entry] = await client.db('local').collection('oplog.rs').find({}, { sort: { $natural: direction }, limit: 1 }).toArray();
  assert.ok(entry !== undefined, 'the oplog has entries');
  return { ts: plain(entry['ts'] as Timestamp), t: Long.fromValue(entry['t'] as number).toNumber() };
}

let writers = 0;

/** A j:true writer of small documents, direct to the set, into a collection of its own, until stopped. */
function startWriter(client: MongoClient): { task: BackgroundTask; stop: () => Promise<void> } {
  let stopped = false;
  const coll = client.db('app').collection<{ _id: number; pad: string }>(`seq${writers++}`);
  const task = inBackground(async () => {
    for (let id = 0; !stopped; id++) {
      await coll.insertOne({ _id: id, pad: 'p'.repeat(500) }, { writeConcern: { w: 1, j: true } });
    }
  });
  return {
    task,
    async stop() {
      stopped = true;
      await task.done;
    },
  };
}

/**
 * Sends backupStart with the copy throttled to a crawl, runs `whileCopying` once the copy
 * is under way (the snapshot open: what it read of the oplog is fixed), then lets the copy
 * run free and waits for the backup to finish; returns its manifest.
 */
async function backUp(admin: Db, destination: string, options: Document, whileCopying: () => Promise<void>): Promise<Manifest> {
  await admin.command({ backupThrottle: '16KB' });
  const started = admin.command({ backupStart: destination, ...options });
  try {
    await untilCopying(admin);
    await whileCopying();
  } finally {
    await admin.command({ backupThrottle: 0 });
  }
  const reply = await started;
  assert.equal(reply['ok'], 1);
  const last = (await untilBackupEnds(admin))['last'] as Record<string, unknown>;
  assert.equal(last['state'], 'complete', JSON.stringify(last));
  return readManifest(destination);
}

/** The newest oplog entry of a copy of `backupDir`, opened as a standalone (the backup itself is left as it is). */
async function newestInCopy(backupDir: string, scratchDir: string): Promise<{ newest: ManifestOpTime; holds: (ts: Plain) => Promise<boolean> } & { close: () => Promise<void> }> {
  const copyDir = path.join(scratchDir, `open-${path.basename(backupDir)}`);
  fs.cpSync(backupDir, copyDir, { recursive: true });
  const copy = await startDevServer({ dbpath: copyDir });
  const reader = new MongoClient(copy.uri);
  const newest = await edge(reader, -1);
  return {
    newest,
    holds: async (ts) => (await reader.db('local').collection('oplog.rs').countDocuments({ ts: new Timestamp(ts) })) === 1,
    async close() {
      await reader.close();
      await copy.stop();
    },
  };
}

/**
 * `hotbackup list` on a terminal (script(1) gives it one, as a person's shell would): the
 * OPLOG TO column holds each backup's `end` as `secs,inc`; and in JSON, `oplog.end`.
 */
async function assertListShows(root: string, ends: Map<string, Plain>): Promise<void> {
  const command = [process.execPath, ...CLI_NODE_FLAGS, CLI, 'list', root].join(' ');
  const table = execFileSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8' }).replaceAll('\r', '');
  const [header, ...rows] = table.trimEnd().split('\n');
  assert.match(header ?? '', /OPLOG TO/);
  const json = await runCli(['list', root, '--json']);
  assert.equal(json.code, 0, json.stderr);
  const listed = (JSON.parse(json.stdout) as { backups: Array<{ name: string; oplog: { end: string } | null }> }).backups;
  for (const [name, end] of ends) {
    const row = rows.find((line) => line.startsWith(`${name} `));
    assert.ok(row !== undefined, `${name} is listed: ${table}`);
    assert.match(row, new RegExp(`\\s${cell(end)}(\\s|$)`), `${name}'s OPLOG TO is ${cell(end)}: ${row}`);
    assert.equal(listed.find((entry) => entry.name === name)?.oplog?.end, cell(end));
  }
}

describe('the oplog window on a replica set: backupCursor and fsyncLock', () => {
  const scratch = tempDir('oplog-window');
  const root = path.join(scratch.dir, 'backups');
  let set: RunningReplicaSet;
  let proxy: RunningProxy;
  let direct: MongoClient;
  let client: MongoClient;
  let admin: Db;
  const ends = new Map<string, Plain>();

  before(async () => {
    // Small journal files: the copies here are opened as well as made, on a shared machine.
    set = await startReplicaSet({ args: ['--wiredTigerEngineConfigString', 'log=(file_max=1MB)'] });
    proxy = await startProxy(set.server);
    direct = await MongoClient.connect(set.uri);
    client = new MongoClient(proxy.uri);
    admin = client.db('admin');
    fs.mkdirSync(root);
  });

  after(async () => {
    await client?.close();
    await direct?.close();
    await proxy?.stop();
    await set?.server.stop();
    set?.server.cleanup();
    scratch.remove();
  });

  it('backupCursor: start <= checkpoint <= end, end the newest entry when the cursor opened, and the copy holds it', async () => {
    const writer = startWriter(direct);
    let manifest: Manifest;
    let before: ManifestOpTime;
    let beforeCheckpoint: ManifestOpTime;
    let atCopying: ManifestOpTime | undefined;
    try {
      await writer.task.until(async () => compare((await edge(direct, -1)).ts, (await edge(direct, 1)).ts) > 0);
      // A checkpoint now (fsync without lock), so that the cursor has one taken since the oplog began to pin.
      beforeCheckpoint = await edge(direct, -1);
      await direct.db('admin').command({ fsync: 1 });
      before = await edge(direct, -1);
      manifest = await backUp(admin, path.join(root, 'cursor'), { strategy: 'backupCursor' }, async () => {
        atCopying = await edge(direct, -1);
        // The writer goes on past what the cursor saw: the manifest must not take the oplog's end at the finish.
        await writer.task.until(async () => compare((await edge(direct, -1)).ts, (atCopying as ManifestOpTime).ts) > 0);
      });
    } finally {
      await writer.stop();
    }
    const { oplog } = manifest;
    assert.ok(oplog !== undefined, 'a replica set backup records its oplog window');
    assert.deepEqual(oplog.start, await edge(direct, 1), 'start is the oplog\'s first entry');
    assert.ok(oplog.checkpointTimestamp !== undefined);
    assert.ok(compare(oplog.start.ts, oplog.checkpointTimestamp) <= 0, `start ${cell(oplog.start.ts)} <= checkpoint ${cell(oplog.checkpointTimestamp)}`);
    assert.ok(compare(beforeCheckpoint.ts, oplog.checkpointTimestamp) <= 0, `the checkpoint holds what was written before it was taken, ${cell(beforeCheckpoint.ts)}`);
    assert.ok(compare(oplog.checkpointTimestamp, oplog.end.ts) <= 0, `checkpoint ${cell(oplog.checkpointTimestamp)} <= end ${cell(oplog.end.ts)}`);
    assert.ok(compare(before.ts, oplog.end.ts) <= 0, `end ${cell(oplog.end.ts)} is no older than the newest entry before backupStart, ${cell(before.ts)}`);
    assert.ok(atCopying !== undefined && compare(oplog.end.ts, atCopying.ts) <= 0, `end ${cell(oplog.end.ts)} is no newer than the newest entry once the copy ran, ${atCopying && cell(atCopying.ts)}`);
    const entry = await direct.db('local').collection('oplog.rs').findOne({ ts: new Timestamp(oplog.end.ts) });
    assert.ok(entry !== null, 'end is an entry of local.oplog.rs');
    assert.equal(Long.fromValue(entry['t'] as number).toNumber(), oplog.end.t);
    const copy = await newestInCopy(path.join(root, 'cursor'), scratch.dir);
    try {
      assert.ok(await copy.holds(oplog.end.ts), `the copy holds the entry at end, ${cell(oplog.end.ts)}`);
    } finally {
      await copy.close();
    }
    ends.set('cursor', oplog.end.ts);
  });

  it('fsyncLock with allowWriteBlocking: end is the newest entry while locked, and the copy\'s newest', async () => {
    const writer = startWriter(direct);
    let manifest: Manifest;
    let whileLocked: ManifestOpTime | undefined;
    try {
      const from = await edge(direct, -1);
      await writer.task.until(async () => compare((await edge(direct, -1)).ts, from.ts) > 0);
      manifest = await backUp(admin, path.join(root, 'locked'), { strategy: 'fsyncLock', allowWriteBlocking: true }, async () => {
        whileLocked = await edge(direct, -1);
      });
    } finally {
      await writer.stop();
    }
    const { oplog } = manifest;
    assert.ok(oplog !== undefined, 'a replica set backup records its oplog window');
    assert.equal(manifest.strategy, 'fsyncLock');
    assert.deepEqual(oplog.end, whileLocked, 'end is the newest entry while writes were blocked');
    assert.ok(compare(oplog.start.ts, oplog.end.ts) <= 0);
    assert.equal(oplog.checkpointTimestamp, undefined, 'no checkpoint is pinned under an fsync lock');
    assert.ok(compare((await edge(direct, -1)).ts, oplog.end.ts) > 0, 'the writer wrote on after the lock');
    const copy = await newestInCopy(path.join(root, 'locked'), scratch.dir);
    try {
      assert.deepEqual(copy.newest, oplog.end, 'the copy\'s newest entry is end');
    } finally {
      await copy.close();
    }
    ends.set('locked', oplog.end.ts);
  });

  it('hotbackup list shows each backup\'s end in the OPLOG TO column', async () => {
    assert.equal(ends.size, 2, 'both backups above were made');
    await assertListShows(root, ends);
  });
});

const xfsUnavailable = loopFsUnavailable('xfs');

describe('the oplog window on a replica set: reflink on XFS', { skip: xfsUnavailable }, () => {
  let fsys: LoopFs | undefined;
  let set: RunningReplicaSet | undefined;
  let proxy: RunningProxy | undefined;
  let direct: MongoClient | undefined;
  let client: MongoClient | undefined;
  const scratch = tempDir('oplog-window-reflink');

  before(async () => {
    fsys = await mountLoopFs('xfs', 400);
    const dbpath = path.join(fsys.dir, 'db');
    fs.mkdirSync(dbpath);
    // No $backupCursor (as MongoDB Community): auto would pick reflink; it is asked for by name anyway.
    set = await startReplicaSet({ dbpath, args: ['--no-backup-cursor', '--checkpoint-interval', '1', '--wiredTigerEngineConfigString', 'log=(file_max=1MB)'] });
    proxy = await startProxy(set.server);
    direct = await MongoClient.connect(set.uri);
    client = new MongoClient(proxy.uri);
  });

  after(async () => {
    await client?.close();
    await direct?.close();
    await proxy?.stop();
    await set?.server.stop();
    scratch.remove();
    await fsys?.remove();
  });

  it('reflink: end is the copy\'s newest entry, the one the clones were made at; list shows it', async () => {
    const reader = direct as MongoClient;
    const admin = (client as MongoClient).db('admin');
    const writer = startWriter(reader);
    const backupDir = path.join(scratch.dir, 'backups', 'cloned');
    fs.mkdirSync(path.dirname(backupDir));
    let manifest: Manifest;
    let before: ManifestOpTime;
    let atCopying: ManifestOpTime | undefined;
    try {
      const from = await edge(reader, -1);
      await writer.task.until(async () => compare((await edge(reader, -1)).ts, from.ts) > 0);
      before = await edge(reader, -1);
      manifest = await backUp(admin, backupDir, { strategy: 'reflink' }, async () => {
        atCopying = await edge(reader, -1);
      });
    } finally {
      await writer.stop();
    }
    const { oplog } = manifest;
    assert.equal(manifest.strategy, 'reflink');
    assert.ok(oplog !== undefined, 'a replica set backup records its oplog window');
    assert.ok(compare(before.ts, oplog.end.ts) <= 0 && atCopying !== undefined && compare(oplog.end.ts, atCopying.ts) <= 0, `end ${cell(oplog.end.ts)} was read under the lock`);
    assert.deepEqual(oplog.start, await edge(reader, 1));
    const copy = await newestInCopy(backupDir, scratch.dir);
    try {
      assert.deepEqual(copy.newest, oplog.end, 'the copy\'s newest entry is end');
    } finally {
      await copy.close();
    }
    await assertListShows(path.dirname(backupDir), new Map([['cloned', oplog.end.ts]]));
  });
});
