/**
 * The engine's part of point-in-time backups, over a fake snapshot and real files: the
 * oplog bounds a snapshot reports go into the manifest, and `extendTo` copies the journal
 * files the snapshot's extension lists over their earlier copies, says what it waits for
 * meanwhile, and records `extendedTo`. The strategies' side (the metadata, the wait for the
 * majority, `$backupCursorExtend`) is tested end to end against the dev server.
 */
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { NEVER_BLOCKED } from '../../src/backup/strategies/writes_blocked.js';
import { BackupEngine, type SnapshotSource } from '../../src/backup/backup_engine.js';
import { MANIFEST_FILENAME, readManifest } from '../../src/backup/manifest.js';
import type { ExtendRequest, Snapshot, StrategyName } from '../../src/backup/strategies/snapshot.js';
import type { SourceFile } from '../../src/backup/copy_types.js';
import type { OplogBounds } from '../../src/backup/oplog_bounds.js';
import { ErrorCodes } from '../../src/errors.js';
import { xxh3Hex } from '../helpers/checksum.js';
import { tempDir } from '../helpers/paths.js';
import { until } from '../helpers/poll.js';

const silent = pino({ level: 'silent' });
const JOURNAL = 'journal/WiredTigerLog.0000000001';
const BOUNDS: OplogBounds = { start: { ts: { t: 1_780_000_000, i: 1 }, t: 1 }, end: { ts: { t: 1_780_000_100, i: 4 }, t: 1 }, checkpointTimestamp: { t: 1_780_000_090, i: 2 } };

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Setup {
  dbpath: string;
  destination: string;
  files: SourceFile[];
  released: () => number;
  engine: BackupEngine;
}

function setup(snapshot: (files: SourceFile[]) => Partial<Snapshot> & { strategy?: StrategyName }): Setup {
  const scratch = tempDir('extend-to');
  cleanups.push(scratch.remove);
  const dbpath = path.join(scratch.dir, 'db');
  const contents: Record<string, string> = { WiredTiger: 'WiredTiger\n', 'collection-0-1.wt': 'c'.repeat(3000), [JOURNAL]: 'log records up to the checkpoint' };
  const files = Object.entries(contents).map(([relativePath, data]) => {
    const file = path.join(dbpath, relativePath);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, data);
    return { path: file, relativePath, size: Buffer.byteLength(data) };
  });
  let releases = 0;
  const source: SnapshotSource = {
    open: async () => ({
      strategy: 'backupCursor',
      reason: 'a fake snapshot',
      files,
      writesBlocked: NEVER_BLOCKED,
      lost: new AbortController().signal,
      release: async () => void releases++,
      ...snapshot(files),
    }),
  };
  const engine = new BackupEngine({ dbpath, upstream: { host: 'rs0-member:27017', serverVersion: async () => '7.0.0-fake' }, snapshots: source, log: silent });
  cleanups.push(() => engine.close());
  return { dbpath, destination: path.join(scratch.dir, 'backup'), files, released: () => releases, engine };
}

describe('oplog bounds and extendTo in the engine', () => {
  it('records the snapshot\'s oplog bounds in the manifest, and none when it has none', async () => {
    const withOplog = setup(() => ({ oplog: BOUNDS }));
    const done = await (await withOplog.engine.start({ destination: withOplog.destination })).done;
    assert.equal(done.ok, true, JSON.stringify(done.error));
    const manifest = await readManifest(withOplog.destination);
    assert.deepEqual(manifest.oplog, BOUNDS);
    assert.equal(manifest.extendedTo, undefined);

    const standalone = setup(() => ({}));
    await (await standalone.engine.start({ destination: standalone.destination })).done;
    assert.equal('oplog' in (await readManifest(standalone.destination)), false);
  });

  it('extends: says what it waits for, then copies the listed journal over its earlier copy, and records extendedTo', async () => {
    let asked: ExtendRequest | undefined;
    let proceed!: () => void;
    const ready = new Promise<void>((resolve) => (proceed = resolve));
    const s = setup((files) => ({
      oplog: BOUNDS,
      extend: async (request) => {
        asked = request;
        request.waiting('the majority commit point to reach Timestamp(1780000200, 1) (it is at Timestamp(1780000150, 3))');
        await ready;
        // Written since the checkpoint: the journal grew, and a new one began.
        const journal = files.find((f) => f.relativePath === JOURNAL) as SourceFile;
        fs.appendFileSync(journal.path, ', and the writes after it');
        const next = path.join(s.dbpath, 'journal/WiredTigerLog.0000000002');
        fs.writeFileSync(next, 'the newest log records');
        return [
          { ...journal, size: fs.statSync(journal.path).size },
          { path: next, relativePath: 'journal/WiredTigerLog.0000000002', size: fs.statSync(next).size },
        ];
      },
    }));
    const to = { t: 1_780_000_200, i: 1 };
    const started = await s.engine.start({ destination: s.destination, extendTo: to });
    const waiting = await until(() => {
      const running = s.engine.status().running;
      return running?.phase === 'extending' && running.waitingFor !== undefined && running;
    });
    assert.match(waiting.waitingFor ?? '', /majority commit point to reach Timestamp\(1780000200, 1\)/);
    assert.deepEqual(waiting.extendTo, to);
    assert.deepEqual(asked?.to, to);
    assert.equal(fs.readFileSync(path.join(s.destination, JOURNAL), 'utf8'), 'log records up to the checkpoint', 'the base copy is done first');
    assert.equal(fs.existsSync(path.join(s.destination, MANIFEST_FILENAME)), false);
    proceed();
    const done = await started.done;
    assert.equal(done.ok, true, JSON.stringify(done.error));
    assert.equal(s.released(), 1);
    const extended = 'log records up to the checkpoint, and the writes after it';
    assert.equal(fs.readFileSync(path.join(s.destination, JOURNAL), 'utf8'), extended);
    const manifest = await readManifest(s.destination);
    assert.deepEqual(manifest.extendedTo, to);
    assert.deepEqual(manifest.oplog, BOUNDS);
    const byPath = new Map(manifest.files.map((f) => [f.path, f]));
    assert.deepEqual([byPath.get(JOURNAL)?.size, byPath.get(JOURNAL)?.checksum], [extended.length, xxh3Hex(Buffer.from(extended))]);
    assert.equal(byPath.get('journal/WiredTigerLog.0000000002')?.size, 'the newest log records'.length);
    assert.equal(manifest.files.length, 4, 'each file once');
    assert.equal(done.progress.filesTotal, 5, 'the counters went on: 3 files, then the 2 of the extension');
  });

  it('keeps the earlier copies when the extension\'s copy fails: never fewer files than before', async () => {
    const s = setup((files) => ({
      extend: async () => {
        const journal = files.find((f) => f.relativePath === JOURNAL) as SourceFile;
        const next = path.join(s.dbpath, 'journal/WiredTigerLog.0000000002');
        fs.writeFileSync(next, 'the newest log records');
        // A size the copier refuses (as NaN was, from a server that sends no fileSize).
        return [
          { ...journal, size: Number.NaN },
          { path: next, relativePath: 'journal/WiredTigerLog.0000000002', size: fs.statSync(next).size },
        ];
      },
    }));
    const done = await (await s.engine.start({ destination: s.destination, extendTo: { t: 1_780_000_200, i: 1 } })).done;
    assert.equal(done.ok, false, 'the extension\'s copy failed');
    assert.equal(fs.readFileSync(path.join(s.destination, JOURNAL), 'utf8'), 'log records up to the checkpoint', 'the earlier copy is still there');
    const left = fs.readdirSync(path.join(s.destination, 'journal'));
    assert.deepEqual(left.filter((name) => name.includes('hotbackup-extending')), [], `no staged copy left behind: ${left.join(', ')}`);
  });

  it('refuses extendTo with InvalidOptions when the strategy has no extension, and releases its snapshot', async () => {
    const s = setup(() => ({ strategy: 'fsyncLock' }));
    const done = await (await s.engine.start({ destination: s.destination, extendTo: { t: 1, i: 1 } })).done;
    assert.equal(done.ok, false);
    assert.equal(done.error?.code, ErrorCodes.InvalidOptions);
    assert.match(done.error?.errmsg ?? '', /'extendTo' needs the backupCursor strategy .* this backup's strategy is fsyncLock/);
    assert.equal(s.released(), 1);
    assert.equal(done.progress.bytesCopied, 0, 'refused before any copy');
    assert.equal(fs.existsSync(path.join(s.destination, MANIFEST_FILENAME)), false);
  });

  it('stops waiting at backupAbort, and releases the snapshot', async () => {
    const s = setup(() => ({
      extend: (request) =>
        new Promise<SourceFile[]>((_resolve, reject) => {
          request.waiting('the majority commit point to reach Timestamp(1780000200, 1) (it is at none yet)');
          request.signal.addEventListener('abort', () => reject(request.signal.reason), { once: true });
        }),
    }));
    const started = await s.engine.start({ destination: s.destination, extendTo: { t: 1_780_000_200, i: 1 } });
    await until(() => s.engine.status().running?.waitingFor !== undefined);
    assert.equal(s.engine.abort('{backupAbort: 1} from a test').kind, 'aborting');
    const done = await started.done;
    assert.equal(done.state, 'aborted');
    assert.equal(done.error?.code, ErrorCodes.Interrupted);
    assert.equal(s.released(), 1);
  });
});
