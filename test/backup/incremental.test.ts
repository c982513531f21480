/**
 * The per-file decision of an incremental backup (src/backup/incremental.ts) and the
 * mtime stamps it rests on (src/backup/source_stamp.ts): copy, take by size and mtime,
 * or compare by content, for each case the quick check can meet. The end-to-end
 * behaviour is in test/integration/incremental.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { decide } from '../../src/backup/incremental.js';
import { mtimeNs, mtimeText, settledBefore } from '../../src/backup/source_stamp.js';
import { ManifestSchema, type Manifest, type ManifestFile } from '../../src/backup/manifest.js';
import type { SourceFile } from '../../src/backup/copy_types.js';

const STARTED = new Date('2026-11-21T10:00:00.000Z');
const LONG_AGO = '2026-11-21T09:00:00.123456789Z';
/** One second before the base began: inside the racy window. */
const RACY = '2026-11-21T09:59:59.000000001Z';

function base(checksum = false): { manifest: Manifest; checksum: boolean } {
  const manifest = { startedAt: STARTED.toISOString() } as Manifest;
  return { manifest, checksum };
}

function entry(file: Partial<ManifestFile> = {}): ManifestFile {
  return { path: 'collection-2-1.wt', size: 4096, checksum: '0123456789abcdef', mtime: LONG_AGO, ...file };
}

function source(file: Partial<SourceFile> = {}): SourceFile {
  return { path: '/db/collection-2-1.wt', relativePath: 'collection-2-1.wt', size: 4096, stamp: { before: LONG_AGO, after: LONG_AGO }, ...file };
}

describe('incremental: which files are taken from the base', () => {
  it('takes a file by size and mtime when both match and the base recorded the mtime well before it began', () => {
    assert.equal(decide(source(), entry(), base()), 'sizeMtime');
  });

  it('copies what the base lacks, what changed size or mtime, and the journal whatever it matches', () => {
    assert.equal(decide(source(), undefined, base()), 'copy');
    assert.equal(decide(source({ size: 8192 }), entry(), base()), 'copy');
    assert.equal(decide(source({ stamp: { before: '2026-11-21T09:30:00.000000000Z', after: '2026-11-21T09:30:00.000000000Z' } }), entry(), base()), 'copy');
    const journal = { relativePath: 'journal/WiredTigerLog.0000000003', path: '/db/journal/WiredTigerLog.0000000003' };
    assert.equal(decide(source(journal), entry({ path: journal.relativePath }), base()), 'copy');
    // With checksum: true too: a different size is a change, as for rsync --checksum.
    assert.equal(decide(source({ size: 8192 }), entry(), base(true)), 'copy');
  });

  it('copies a file written between the readings before and after its capture (the reflink strategy stats twice)', () => {
    assert.equal(decide(source({ stamp: { before: LONG_AGO, after: '2026-11-21T10:00:00.500000000Z' } }), entry(), base()), 'copy');
  });

  it('compares by content when the mtime is racy, unknown to the base, or unread; and every candidate with checksum: true', () => {
    assert.equal(decide(source({ stamp: { before: RACY, after: RACY } }), entry({ mtime: RACY }), base()), 'compare');
    assert.equal(decide(source(), entry({ mtime: undefined }), base()), 'compare');
    assert.equal(decide(source({ stamp: undefined }), entry(), base()), 'compare');
    assert.equal(decide(source(), entry(), base(true)), 'compare');
  });
});

describe('mtime stamps', () => {
  it('keeps all nine digits of nanoseconds, and reads them back exactly', () => {
    const ns = 1_763_719_200_123_456_789n;
    const text = mtimeText({ mtimeNs: ns });
    assert.equal(text, '2025-11-21T10:00:00.123456789Z');
    assert.equal(mtimeNs(text as string), ns);
    assert.equal(mtimeText({ mtimeNs: 5n }), '1970-01-01T00:00:00.000000005Z');
    assert.equal(mtimeText({ mtimeNs: -1n }), undefined);
    assert.throws(() => mtimeNs('2025-11-21T10:00:00.123Z'), RangeError);
  });

  it("measures the racy window from the earlier of the proxy's clock and the filesystem's (startedAtFs)", () => {
    // The filesystem's clock 10 s behind the proxy's (a network filesystem's server): a file
    // written 1 s before the base began, by the filesystem's clock, is racy.
    const lagging = { manifest: { startedAt: STARTED.toISOString(), startedAtFs: '2026-11-21T09:59:50.000000000Z' } as Manifest, checksum: false };
    const justBefore = '2026-11-21T09:59:49.000000000Z';
    assert.equal(decide(source({ stamp: { before: justBefore, after: justBefore } }), entry({ mtime: justBefore }), lagging), 'compare');
    assert.equal(decide(source(), entry(), lagging), 'sizeMtime', 'an hour before is settled by either clock');
    // The filesystem's clock ahead: the proxy's reading is the earlier, and counts.
    assert.equal(settledBefore('2026-11-21T09:59:57.999999999Z', STARTED, '2026-11-21T10:00:10.000000000Z'), true);
    assert.equal(settledBefore('2026-11-21T09:59:58.500000000Z', STARTED, '2026-11-21T10:00:10.000000000Z'), false);
  });

  it('trusts an mtime only from more than 2 s before the base began', () => {
    assert.equal(settledBefore('2026-11-21T09:59:57.999999999Z', STARTED), true);
    assert.equal(settledBefore('2026-11-21T09:59:58.000000000Z', STARTED), false);
    assert.equal(settledBefore('2026-11-21T10:00:05.000000000Z', STARTED), false, 'a clock set back makes every mtime racy');
  });
});

describe('the manifest of an incremental backup', () => {
  const backupId = randomUUID();
  const baseId = randomUUID();
  const manifest = (files: unknown[], extra: Record<string, unknown> = {}) => ({
    format: 'mongo-hotbackup-proxy',
    version: 2,
    checksum: { algorithm: 'xxh3-64' },
    backupId,
    strategy: 'backupCursor',
    source: { dbpath: '/db', host: '127.0.0.1:27017', serverVersion: '8.0.4' },
    startedAt: STARTED.toISOString(),
    finishedAt: STARTED.toISOString(),
    durationMs: 0,
    throttleBytesPerSec: 0,
    files,
    totals: { files: files.length, bytes: files.length * 4096 },
    ...extra,
  });
  const reused = { ...entry(), reusedFrom: { backupId: baseId, method: 'hardlink', check: 'sizeMtime' } };

  it('accepts mtimes, reused files and the base they came from', () => {
    assert.equal(ManifestSchema.safeParse(manifest([reused], { base: { backupId: baseId, path: '/backups/full' } })).success, true);
  });

  it('refuses a reused file without a base, or naming another backup than the base, and an mtime without nanoseconds', () => {
    const orphan = ManifestSchema.safeParse(manifest([reused]));
    assert.equal(orphan.success, false);
    assert.match(JSON.stringify(orphan.error?.issues), /which is not this backup's base/);
    assert.equal(ManifestSchema.safeParse(manifest([reused], { base: { backupId: randomUUID(), path: '/backups/full' } })).success, false);
    assert.equal(ManifestSchema.safeParse(manifest([{ ...entry(), mtime: '2026-11-21T09:00:00.123Z' }])).success, false);
  });
});
