/**
 * What "the backup restores" means in the consistency tests: every table of a copy of the
 * backup passes `wt verify`, and the dev server opened on the backup itself serves a
 * gap-free prefix of a sequential writer's `app.seq` that holds every write acknowledged
 * before backupStart was sent (`ackedBeforeStart` is the last such _id).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { startDevServer } from './dev_server.js';
import { wtVerifyAll } from './file_copy.js';

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
