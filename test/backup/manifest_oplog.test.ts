/** The manifest's point-in-time fields, optional within version 2: `oplog` and `extendedTo`. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { ManifestSchema, manifestFiles, type Manifest } from '../../src/backup/manifest.js';

function sample(overrides: Partial<Manifest> = {}): Manifest {
  return {
    format: 'mongo-hotbackup-proxy',
    version: 2,
    backupId: randomUUID(),
    strategy: 'backupCursor',
    source: { dbpath: '/var/lib/mongodb', host: 'db-7:27017', serverVersion: '7.0.14' },
    startedAt: '2026-01-02T03:04:05.000Z',
    finishedAt: '2026-01-02T03:04:07.500Z',
    durationMs: 2500,
    throttleBytesPerSec: 0,
    ...manifestFiles([{ relativePath: 'WiredTiger.wt', size: 4096, checksum: 'a'.repeat(16) }]),
    ...overrides,
  };
}

const oplog = { start: { ts: { t: 1_780_000_000, i: 1 }, t: 1 }, end: { ts: { t: 1_780_000_000, i: 9 }, t: 1 }, checkpointTimestamp: { t: 1_780_000_000, i: 5 } };

describe('manifest oplog and extendedTo', () => {
  it('reads a manifest with neither (a standalone, or an older writer), and one with both', () => {
    assert.equal(ManifestSchema.safeParse(sample()).success, true);
    const parsed = ManifestSchema.parse(sample({ oplog, extendedTo: { t: 1_780_000_010, i: 0 } }));
    assert.deepEqual(parsed.oplog, oplog);
    assert.deepEqual(parsed.extendedTo, { t: 1_780_000_010, i: 0 });
  });

  it('refuses an oplog that ends before it starts, a timestamp out of range, and an extended backup of another strategy', () => {
    const backwards = { ...oplog, end: { ts: { t: 1_780_000_000, i: 0 }, t: 1 } };
    assert.match(JSON.stringify(ManifestSchema.safeParse(sample({ oplog: backwards })).error?.issues), /is before oplog.start/);
    assert.equal(ManifestSchema.safeParse(sample({ oplog: { ...oplog, start: { ts: { t: 2 ** 32, i: 0 }, t: 1 } } })).success, false);
    assert.match(JSON.stringify(ManifestSchema.safeParse(sample({ strategy: 'fsyncLock', extendedTo: { t: 1, i: 1 } })).error?.issues), /only a backupCursor backup can be extended/);
  });
});
