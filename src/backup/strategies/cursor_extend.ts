/**
 * `$backupCursorExtend` for a backup extended to a cluster time (`backupStart` with
 * `extendTo`): the copy of the pinned checkpoint, plus the journal written since, holds
 * every write up to that time once the journal is replayed at startup.
 *
 * First the wait: a write is in the journal once it is written, but only a write the
 * majority has committed is one a failover cannot roll back, so the extend waits until
 * the majority commit point (hello's `lastWrite.majorityOpTime`, or replSetGetStatus's
 * `optimes.majorityOpTime`) reaches the time asked for. Then the stage, in the backup cursor's own session (PSMDB's
 * document_source_backup_cursor_extend.cpp wants the backupId of the open cursor):
 * `{$backupCursorExtend: {backupId, timestamp}}` lists the journal files by `filename`
 * only (PSMDB's document_source_backup_cursor_extend.cpp and mongod's own stage send no
 * size), so each is copied whole, as long as it is once listed: every write up to the
 * time asked for is in it by then, so the copy holds at least every write up to that
 * time, and maybe a few after it (PBM copies extended log files whole
 * too, percona-backup-mongodb pbm/backup/physical.go). On a standalone there is no majority to wait for: the stage is sent
 * at once, and mongod's own refusal (29144) is the answer.
 */
import fs from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { Long, type Document, type MongoClient } from 'mongodb';
import type { CursorSession } from './cursor_session.js';
import type { ExtendRequest } from './snapshot.js';
import type { SourceFile } from '../copy_types.js';
import { compareTimestamps, describeTimestamp, type OplogTimestamp } from '../oplog_bounds.js';
import { bsonTimestamp, plainOpTime } from './oplog_read.js';
import { rebaseListedFiles } from './dbpath_identity.js';
import type { Logger } from '../../log.js';

export const DEFAULT_MAJORITY_POLL_MS = 200;
const CURSOR_NS = '$cmd.aggregate';

export interface ExtendTarget {
  client: MongoClient;
  /** The backup cursor's session. */
  session: CursorSession;
  /** The metadata's `backupId`, as mongod sent it (a UUID). */
  backupId: unknown;
  /** mongod's dbpath, as its metadata names it, and the same directory as seen from here. */
  mongodDbpath: string;
  dbpath: string;
  log: Logger;
  /** Milliseconds between two looks at the majority commit point. */
  pollMs: number;
}

/** Waits for the majority to reach `request.to`, then lists the journal files that bring the copy there. */
export async function extendBackupCursor(target: ExtendTarget, request: ExtendRequest): Promise<SourceFile[]> {
  await waitForMajority(target, request);
  request.waiting(undefined);
  const { session } = target;
  const reply = await session.run(
    { aggregate: 1, pipeline: [{ $backupCursorExtend: { backupId: target.backupId, timestamp: bsonTimestamp(request.to) } }], cursor: {} },
    undefined,
    request.signal,
  );
  const cursor = reply['cursor'] as { id: number | Long; firstBatch: Document[] } | undefined;
  if (cursor === undefined) throw new Error(`$backupCursorExtend answered without a cursor: ${JSON.stringify(reply)}`);
  const docs = [...cursor.firstBatch];
  let id = Long.fromValue(cursor.id);
  while (!id.isZero()) {
    const more = (await session.run({ getMore: id, collection: CURSOR_NS }, undefined, request.signal))['cursor'] as { id: number | Long; nextBatch: Document[] };
    docs.push(...more.nextBatch);
    id = Long.fromValue(more.id);
    // A tailable cursor answers empty batches once drained: everything is listed.
    if (more.nextBatch.length === 0 && !id.isZero()) {
      await session.run({ killCursors: CURSOR_NS, cursors: [id] }).catch(() => undefined);
      break;
    }
  }
  const names = docs.filter((doc) => typeof doc['filename'] === 'string').map((doc) => String(doc['filename']));
  target.log.info({ extendTo: describeTimestamp(request.to), files: names.length }, 'backup cursor extended');
  // Rebased with a placeholder size (it checks each name lies in the dbpath), then sized.
  const rebased = rebaseListedFiles(target.mongodDbpath, target.dbpath, names.map((filename) => ({ filename, fileSize: 0 })));
  return Promise.all(rebased.map(async (file) => ({ ...file, size: (await fs.stat(file.path)).size })));
}

async function waitForMajority({ client, log, pollMs }: ExtendTarget, request: ExtendRequest): Promise<void> {
  const admin = client.db('admin');
  for (;;) {
    request.signal.throwIfAborted();
    const hello = await admin.command({ hello: 1 }, { signal: request.signal });
    if (typeof hello['setName'] !== 'string') return;
    const majority = majorityOf(hello) ?? majorityOf(await admin.command({ replSetGetStatus: 1 }, { signal: request.signal }));
    if (majority !== undefined && compareTimestamps(majority, request.to) >= 0) return;
    const what = `the majority commit point to reach ${describeTimestamp(request.to)} (it is at ${majority === undefined ? 'none yet' : describeTimestamp(majority)})`;
    request.waiting(what);
    log.debug({ extendTo: describeTimestamp(request.to), majority: majority && describeTimestamp(majority) }, 'extendTo: waiting for the majority commit point');
    await sleep(pollMs, undefined, { signal: request.signal }).catch(() => request.signal.throwIfAborted());
  }
}

/** hello's `lastWrite.majorityOpTime.ts`, or replSetGetStatus's `optimes.majorityOpTime.ts`. */
function majorityOf(reply: Document): OplogTimestamp | undefined {
  const holder = (reply['lastWrite'] ?? reply['optimes']) as Document | undefined;
  return plainOpTime(holder?.['majorityOpTime'])?.ts;
}
