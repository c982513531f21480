/**
 * What "the backup restores" means in the consistency tests: every table of a copy of the
 * backup passes `wt verify`, and the dev server opened on the backup itself serves a
 * gap-free prefix of a sequential writer's `app.seq` that holds every write acknowledged
 * before backupStart was sent (`ackedBeforeStart` is the last such _id). The writer
 * behind it is startSequentialWriter, below.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient, type Collection } from 'mongodb';
import { startDevServer } from './dev_server.js';
import { wtVerifyAll } from './file_copy.js';
import { inBackground } from './poll.js';

export async function assertRestorablePrefix(backupDir: string, scratchDir: string, ackedBeforeStart: number): Promise<void> {
  // `wt verify` on a copy: it may write to the directory it opens.
  const verifyCopy = path.join(scratchDir, `verify-${path.basename(backupDir)}`);
  fs.cpSync(backupDir, verifyCopy, { recursive: true });
  const verified = wtVerifyAll(verifyCopy);
  assert.ok(verified.tables.length >= 3);
  assert.deepEqual(verified.failures, []);

  const restored = await startDevServer({ dbpath: backupDir });
  const reader = new MongoClient(restored.uri);
  try {
    const ids = (await reader.db('app').collection('seq').find({}, { projection: { _id: 1 } }).sort({ _id: 1 }).toArray()).map((d) => Number(d['_id']));
    assert.ok(ids.length > ackedBeforeStart, `${ids.length} docs restored, ${ackedBeforeStart + 1} acknowledged before backupStart`);
    ids.forEach((id, i) => assert.equal(id, i, `gap at ${i}`));
  } finally {
    await reader.close();
    await restored.stop();
  }
}

/** A writer inserting `{_id: 0, 1, 2, …}` one after another with `j: true`, as the consistency tests run it. */
export interface SequentialWriter {
  /** The last _id acknowledged so far; -1 before the first. */
  acked(): number;
  /** Polls `probe` while the writer runs; fails if the writer dies first (BackgroundTask.until). */
  until<T>(probe: () => Promise<T | undefined | false> | T | undefined | false): Promise<T>;
  /**
   * Polls until `more` writes are acknowledged beyond now, and fails if `stillRunning` says
   * the backup ended first: proof that writers were not blocked during the copy.
   */
  untilMoreDuring(more: number, stillRunning: () => Promise<boolean>): Promise<void>;
  /** Stops after the insert in flight; resolves once the writer has ended. */
  stop(): Promise<void>;
}

/** Starts the writer on `coll` and resolves once `warmUp` writes (default 2000) are acknowledged. */
export async function startSequentialWriter(coll: Collection<SequenceDoc>, pad: string, warmUp = 2000): Promise<SequentialWriter> {
  let acked = -1;
  let stopped = false;
  const task = inBackground(async () => {
    for (let id = 0; !stopped; id++) {
      await coll.insertOne({ _id: id, pad: pad.repeat(400) }, { writeConcern: { w: 1, j: true } });
      acked = id;
    }
  });
  await task.until(() => acked >= warmUp);
  return {
    acked: () => acked,
    until: (probe) => task.until(probe),
    async untilMoreDuring(more, stillRunning) {
      const from = acked;
      await task.until(async () => {
        if (acked > from + more) return true;
        if (!(await stillRunning())) assert.fail('writes did not continue during the copy');
        return undefined;
      });
    },
    async stop() {
      stopped = true;
      await task.done;
    },
  };
}

export type SequenceDoc = { _id: number; pad: string };
