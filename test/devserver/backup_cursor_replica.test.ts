/**
 * `$backupCursor` metadata and `$backupCursorExtend` on a replica set, run in-process
 * against a stand-in oplog that follows the Oplog contract (lastApplied, firstEntry,
 * waitForNewer). The real oplog and `--replSet` come from the replica-set work; with
 * them, the same checks belong in an end-to-end test through the driver.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { Int32, Long, serialize, Timestamp, type Document } from 'bson';
import { StorageEngine } from '../../src/devserver/storage/storage_engine.js';
import { ServerState, type DevServerOptions } from '../../src/devserver/state.js';
import { createLogger } from '../../src/log.js';
import type { CommandContext } from '../../src/devserver/handlers/handler.js';
import { runBackupStage } from '../../src/devserver/handlers/backup.js';
import type { BackupOplog, OpTimeView } from '../../src/devserver/backup_replication.js';
import { CommandError } from '../../src/errors.js';
import { tempDir } from './storage/helpers.js';

class StandInOplog implements BackupOplog {
  readonly entries: OpTimeView[] = [];
  private readonly appended = new EventEmitter();

  append(secs: number): void {
    this.entries.push({ ts: new Timestamp({ t: secs, i: 1 }), t: Long.fromNumber(1) });
    this.appended.emit('entry');
  }
  lastApplied(): OpTimeView | undefined {
    return this.entries.at(-1);
  }
  firstEntry(): OpTimeView | undefined {
    return this.entries[0];
  }
  async waitForNewer(after: Timestamp, signal: AbortSignal): Promise<void> {
    while ((this.lastApplied()?.ts.compare(after) ?? -1) <= 0) await once(this.appended, 'entry', { signal });
  }
}

const ts = (secs: number) => new Timestamp({ t: secs, i: 1 });

describe('$backupCursor and $backupCursorExtend on a replica set (stand-in oplog)', () => {
  const dir = tempDir('backup-replica');
  let engine: StorageEngine;
  let state: ServerState;
  let oplog: StandInOplog;

  before(() => {
    engine = StorageEngine.open({ dbpath: dir.dir, cacheSizeMB: 32 });
    const options = { dbpath: dir.dir, port: 0, bind: '127.0.0.1', checkpointIntervalSecs: 0, backupCursor: true, argv: [], replSet: 'rs0' } as DevServerOptions;
    state = new ServerState(engine, options, createLogger({ name: 'test', format: 'json', level: 'silent' }), () => undefined);
    oplog = new StandInOplog();
    (state as unknown as { oplog: BackupOplog }).oplog = oplog;
    engine.setCheckpointMarker(() => oplog.lastApplied());
    engine.createCollection('app.c');
  });

  after(() => {
    state.cursors.closeAll();
    engine.close();
    dir.cleanup();
  });

  function ctx(signal = new AbortController().signal): CommandContext {
    return { state, db: 'admin', signal, connection: { id: 1 } } as unknown as CommandContext;
  }
  const cmd = (stage: Document, extra: Document = {}): Document => ({ aggregate: 1, pipeline: [stage], cursor: {}, ...extra });
  async function run(stage: Document, extra: Document = {}, signal?: AbortSignal): Promise<Document[]> {
    const reply = await runBackupStage(stage, cmd(stage, extra), ctx(signal));
    return (reply['cursor'] as { firstBatch: Document[] }).firstBatch;
  }
  function closeBackup(): void {
    state.backupCursor?.close();
    state.backupCursor = undefined;
    state.cursors.closeAll();
  }
  function insert(from: number, to: number): void {
    engine.writeTransaction(() => {
      for (let i = from; i < to; i++) engine.insertRecord('app.c', Buffer.from(serialize({ _id: new Int32(i) })), new Int32(i));
    }, { sync: true });
  }

  it('reports oplogStart, oplogEnd and the checkpoint between them, in PSMDB order', async () => {
    oplog.append(100);
    oplog.append(101);
    engine.checkpoint();
    oplog.append(102);
    oplog.append(103);
    const [first] = await run({ $backupCursor: {} });
    try {
      const metadata = first?.['metadata'] as Document;
      assert.deepEqual(Object.keys(metadata), ['backupId', 'dbpath', 'oplogStart', 'oplogEnd', 'checkpointTimestamp', 'disableIncrementalBackup', 'incrementalBackup', 'blockSize']);
      const start = metadata['oplogStart'] as OpTimeView;
      const end = metadata['oplogEnd'] as OpTimeView;
      const checkpoint = metadata['checkpointTimestamp'] as Timestamp;
      assert.ok(start.ts.equals(ts(100)) && end.ts.equals(ts(103)));
      assert.ok(checkpoint.equals(ts(101)), `checkpoint at the last entry before it was taken: ${checkpoint.toString()}`);
      assert.ok(end.ts.compare(start.ts) >= 0 && checkpoint.compare(start.ts) >= 0 && checkpoint.compare(end.ts) <= 0);
    } finally {
      closeBackup();
    }
  });

  it('extends once the timestamp is applied, with the journal files written since the cursor opened', async () => {
    const [first, ...files] = await run({ $backupCursor: {} });
    try {
      const backupId = (first?.['metadata'] as Document)['backupId'];
      let settled = false;
      const extension = run({ $backupCursorExtend: { backupId, timestamp: ts(110) } }).finally(() => {
        settled = true;
      });
      insert(0, 10_000);
      oplog.append(105);
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(settled, false, 'it waits while the newest applied entry is before the timestamp');
      oplog.append(110);
      const extra = await extension;
      assert.ok(extra.length >= 1, 'at least one journal file');
      const listed = new Set(files.map((f) => f['filename']));
      for (const doc of extra) {
        assert.match(String(doc['filename']), /\/journal\/WiredTigerLog\.\d{10}$/);
        assert.ok(!listed.has(doc['filename']));
        assert.ok(Number(doc['fileSize']) > 0);
      }
      // maxTimeMS bounds the wait, as mongod's waiting obeys it.
      await assert.rejects(run({ $backupCursorExtend: { backupId, timestamp: ts(200) } }, { maxTimeMS: 50 }), (err: unknown) => {
        assert.ok(err instanceof CommandError);
        assert.equal(err.code, 50);
        return true;
      });
    } finally {
      closeBackup();
    }
  });
});
