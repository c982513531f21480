/**
 * The checkpoint marker: a backup cursor carries what the marker said when the checkpoint
 * it backs up was taken (how $backupCursor's checkpointTimestamp is found on a replica set).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StorageEngine } from '../../../src/devserver/storage/storage_engine.js';
import { tempDir } from './helpers.js';

test('a backup cursor carries the mark of the last checkpoint, not the value at its opening', (t) => {
  const { dir: dbpath, cleanup } = tempDir('checkpoint-mark');
  const engine = StorageEngine.open({ dbpath, cacheSizeMB: 32 });
  t.after(() => {
    engine.close();
    cleanup();
  });
  let applied = 1;
  engine.setCheckpointMarker(() => applied);
  const first = engine.openBackupCursor();
  assert.equal(first.checkpointMark, 1, 'what the engine opened on counts as checkpointed');
  first.close();

  applied = 5;
  engine.checkpoint();
  applied = 9;
  const second = engine.openBackupCursor();
  try {
    assert.equal(second.checkpointMark, 5);
  } finally {
    second.close();
  }
});
