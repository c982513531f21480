/**
 * `backupStart` with `extendTo` through the proxy against the dev server as a replica set,
 * with the real driver (issue 13's "a backup extended to T holds every write acknowledged
 * at or before T"):
 * - a writer inserts sequential `_id`s with j:true, each as an `insert` command whose
 *   reply's `operationTime` is that write's timestamp; T is a few seconds past the newest
 *   write when backupStart is sent, so the proxy must wait for the majority commit point
 *   (backupStatus: phase `extending`, `waitingFor`) while the writer goes on. The journal
 *   is capped at 1MB a file (`log=(file_max=1MB)`) and the writes are large, so it rolls
 *   after the cursor opened and the extension copies a journal file the base copy never
 *   had. `hotbackup restore` of the backup, opened in the dev server, holds every `_id`
 *   acknowledged at or before T;
 * - `backupAbort` while the extension waits for a T that never comes: the backup fails
 *   cleanly (no manifest, the backup cursor released, `last.state` aborted), and the
 *   next backup succeeds.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Long, MongoClient, MongoServerError, Timestamp, type Db, type Document } from 'mongodb';
import { startReplicaSet, type RunningReplicaSet } from '../helpers/replica_set.js';
import { startDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { runCli } from '../helpers/cli_run.js';
import { tempDir } from '../helpers/paths.js';
import { inBackground, until, untilBackupEnds } from '../helpers/poll.js';
import { openBackupCursor, closeBackupCursor } from '../helpers/backup_cursor_spy.js';
import { startRelay, type Relay } from '../helpers/relay.js';
import { decodeReply } from '../helpers/raw_client.js';
import { MANIFEST_FILENAME, readManifest } from '../../src/backup/manifest.js';

interface Acknowledged {
  id: number;
  operationTime: Timestamp;
}

const JOURNAL_FILE = /^journal\/WiredTigerLog\.(\d+)$/;
/** Each write is 32KB that the journal's compressor cannot shrink much: a 1MB journal file rolls every ~40 of them. */
const PAD = randomBytes(24 * 1024).toString('base64');

const plain = (ts: Timestamp): { t: number; i: number } => ({ t: ts.high >>> 0, i: ts.low >>> 0 });
const notAfter = (a: Timestamp, b: Timestamp): boolean => plain(a).t < plain(b).t || (plain(a).t === plain(b).t && plain(a).i <= plain(b).i);

/** The highest WiredTigerLog number among `names` (relative paths), or -1. */
function newestJournal(names: Iterable<string>): number {
  let newest = -1;
  for (const name of names) {
    const match = JOURNAL_FILE.exec(name);
    if (match !== null) newest = Math.max(newest, Number(match[1]));
  }
  return newest;
}

/**
 * A relay between the proxy and the server that keeps the file names `$backupCursor`
 * listed (its first batch carries the metadata; getMores on the same cursor id the rest):
 * what the base copy holds, as distinct from what `$backupCursorExtend` adds.
 */
async function startListingRelay(upstreamPort: number): Promise<{ relay: Relay; baseListing: string[] }> {
  const baseListing: string[] = [];
  const baseCursors = new Set<string>();
  const relay = await startRelay(upstreamPort, {
    fromServer(frame) {
      const cursor = decodeReply(frame).doc['cursor'] as { id?: unknown; firstBatch?: Document[]; nextBatch?: Document[] } | undefined;
      if (cursor === undefined) return;
      const id = Long.fromValue(cursor.id as number).toString();
      const opened = cursor.firstBatch?.[0]?.['metadata']?.['backupId'] !== undefined;
      if (opened) baseCursors.add(id);
      if (!opened && !(cursor.nextBatch !== undefined && baseCursors.has(id))) return;
      for (const doc of cursor.firstBatch ?? cursor.nextBatch ?? []) if (typeof doc['filename'] === 'string') baseListing.push(doc['filename']);
    },
  });
  return { relay, baseListing };
}

async function status(admin: Db): Promise<Record<string, unknown>> {
  return admin.command({ backupStatus: 1 });
}

describe('backupStart extendTo on a replica set', () => {
  const scratch = tempDir('extend-rs');
  let set: RunningReplicaSet;
  let proxy: RunningProxy;
  let listing: { relay: Relay; baseListing: string[] };
  let direct: MongoClient;
  let client: MongoClient;
  let admin: Db;

  before(async () => {
    set = await startReplicaSet({ args: ['--wiredTigerEngineConfigString', 'log=(file_max=1MB)', '--checkpoint-interval', '0'] });
    listing = await startListingRelay(set.server.port);
    proxy = await startProxy({ ...set.server, uri: `mongodb://127.0.0.1:${listing.relay.port}/?directConnection=true` });
    direct = await MongoClient.connect(set.uri);
    client = new MongoClient(proxy.uri);
    admin = client.db('admin');
  });

  after(async () => {
    await client?.close();
    await direct?.close();
    await proxy?.stop();
    await listing?.relay.close();
    await set?.server.stop();
    set?.server.cleanup();
    scratch.remove();
  });

  it('waits for the majority to reach T, copies the journal written since, and restores every write acknowledged at or before T', async () => {
    const backupDir = path.join(scratch.dir, 'extended');
    const restored = path.join(scratch.dir, 'restored');
    const acknowledged: Acknowledged[] = [];
    let stopWriting = false;
    // The writer holds back a second short of T's second (by its writes' and by this clock,
    // which the server's timestamps follow) until the test has seen the proxy wait for T.
    let holdBefore: Timestamp | undefined;
    let released = false;
    const writing = inBackground(async () => {
      for (let id = 0; !stopWriting; id++) {
        const newest = acknowledged[acknowledged.length - 1];
        const near = (secs: number): boolean => holdBefore !== undefined && secs + 2 >= plain(holdBefore).t;
        if (!released && (near(Date.now() / 1000) || (newest !== undefined && near(plain(newest.operationTime).t)))) {
          await until(() => released || stopWriting);
        }
        // The insert command itself, to read the reply's operationTime: the write's own ts.
        const reply = await direct.db('app').command({ insert: 'seq', documents: [{ _id: id, pad: PAD }], writeConcern: { w: 1, j: true } });
        assert.equal(reply['n'], 1);
        acknowledged.push({ id, operationTime: reply['operationTime'] as Timestamp });
      }
    });
    try {
      await writing.until(() => acknowledged.length >= 20);
      const newest = (acknowledged[acknowledged.length - 1] as Acknowledged).operationTime;
      // A few seconds on: the writer goes on until then, and ~40 writes roll a 1MB journal file.
      const target = new Timestamp({ t: plain(newest).t + 5, i: 1 });
      holdBefore = target;
      let settled = false;
      const backup = admin.command({ backupStart: backupDir, extendTo: target }).then(
        (reply) => ({ reply }),
        (err: unknown) => ({ err }),
      );
      void backup.then(() => (settled = true));
      const waiting = await writing.until(async () => {
        const now = await status(admin);
        assert.equal(settled, false, `the backup ended before waiting for T: ${JSON.stringify(now['last'])}`);
        return now['phase'] === 'extending' && typeof now['waitingFor'] === 'string' && now;
      });
      assert.match(String(waiting['waitingFor']), new RegExp(`the majority commit point to reach Timestamp\\(${plain(target).t}, 1\\) \\(it is at Timestamp\\(\\d+, \\d+\\)\\)`));
      assert.deepEqual(waiting['extendTo'], target);
      // What $backupCursor listed when it opened: the extension must add a journal file begun since.
      const journalAtOpen = newestJournal(listing.baseListing.map((name) => path.relative(set.server.dbpath, name)));
      assert.ok(journalAtOpen >= 1, `journal files listed at open: ${listing.baseListing.join(', ')}`);
      released = true;

      const outcome = await backup;
      assert.ok('reply' in outcome, `backupStart failed: ${String((outcome as { err: unknown }).err)}`);
      assert.equal(outcome.reply['ok'], 1);
      // Writes after T too: a restore may hold them, but must hold every one before.
      await writing.until(() => plain((acknowledged[acknowledged.length - 1] as Acknowledged).operationTime).t > plain(target).t);
      stopWriting = true;
      await writing.done;

      const manifest = await readManifest(backupDir);
      assert.deepEqual(manifest.extendedTo, plain(target));
      assert.equal(manifest.strategy, 'backupCursor');
      const copiedJournal = newestJournal(manifest.files.map((file) => file.path));
      assert.ok(copiedJournal > journalAtOpen, `the extension copied a journal file begun after the cursor opened: newest copied ${copiedJournal}, newest at open ${journalAtOpen}`);
      const extended = proxy.logs.find((line) => line['msg'] === 'backup extended: copying the journal files it lists');
      assert.ok(extended !== undefined && Number(extended['files']) > 0, JSON.stringify(extended));

      const restore = await runCli(['restore', backupDir, '--to', restored]);
      assert.equal(restore.code, 0, restore.stderr + restore.stdout);
    } finally {
      stopWriting = true;
      released = true;
      await writing.done.catch(() => undefined);
    }

    const atOrBeforeT = acknowledged.filter((write) => notAfter(write.operationTime, holdBefore as Timestamp));
    assert.ok(atOrBeforeT.length >= 20, `${atOrBeforeT.length} writes acknowledged at or before T`);
    const copy = await startDevServer({ dbpath: restored });
    const reader = new MongoClient(copy.uri);
    try {
      const ids = (await reader.db('app').collection('seq').find({}, { projection: { _id: 1 }, sort: { _id: 1 } }).toArray()).map((doc) => Number(doc['_id']));
      ids.forEach((id, i) => assert.equal(id, i, `gap at ${i}`));
      const lastBeforeT = (atOrBeforeT[atOrBeforeT.length - 1] as Acknowledged).id;
      assert.ok(ids.length > lastBeforeT, `restored _id 0..${ids.length - 1}; _id ${lastBeforeT} was acknowledged at or before T`);
    } finally {
      await reader.close();
      await copy.stop();
    }
  });

  it('backupAbort while the extension waits for a majority point that never comes: no manifest, the cursor released, aborted; the next backup succeeds', async () => {
    await direct.db('app').collection<{ _id: number }>('other').insertOne({ _id: 1 }, { writeConcern: { j: true } });
    const abortedDir = path.join(scratch.dir, 'aborted');
    const farAway = new Timestamp({ t: Math.floor(Date.now() / 1000) + 365 * 24 * 3600, i: 1 });
    let settled = false;
    // The strategy named: select hands on the cursor's extension whichever way it was chosen.
    const backup = admin.command({ backupStart: abortedDir, strategy: 'backupCursor', extendTo: farAway }).then(
      () => assert.fail('an aborted backup must fail'),
      (err: unknown) => err,
    );
    void backup.then(() => (settled = true));
    await until(async () => {
      const now = await status(admin);
      assert.equal(settled, false, `the backup ended before waiting: ${JSON.stringify(now['last'])}`);
      return now['phase'] === 'extending' && typeof now['waitingFor'] === 'string';
    });
    await admin.command({ backupAbort: 1 });
    const err = await backup;
    assert.ok(err instanceof MongoServerError, String(err));
    assert.equal(err.code, 11601);
    assert.match(err.message, /was aborted by \{backupAbort: 1\}/);

    const last = (await untilBackupEnds(admin))['last'] as Record<string, unknown>;
    assert.equal(last['state'], 'aborted');
    assert.equal(last['ok'], false);
    assert.equal(fs.existsSync(path.join(abortedDir, MANIFEST_FILENAME)), false);
    // Released: mongod lets one backup cursor be open at a time, and opens one now.
    const opened = await openBackupCursor(direct);
    await closeBackupCursor(direct, opened);

    const nextDir = path.join(scratch.dir, 'next');
    const reply = await admin.command({ backupStart: nextDir });
    assert.equal(reply['ok'], 1);
    const manifest = await readManifest(nextDir);
    assert.equal('extendedTo' in manifest, false);
    assert.ok(manifest.oplog !== undefined, 'a replica set backup records its oplog window');
  });
});
