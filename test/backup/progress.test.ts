import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { noProgress, ProgressCounters } from '../../src/backup/progress.js';
import type { SourceFile } from '../../src/backup/copy_types.js';

const MiB = 1024 * 1024;
const file = (relativePath: string, size: number): SourceFile => ({ path: `/db/${relativePath}`, relativePath, size });

describe('ProgressCounters', () => {
  it('counts bytes and files, and knows which files are being copied', () => {
    let now = 0;
    const counters = new ProgressCounters({ now: () => now });
    const a = file('a.wt', 6 * MiB);
    const b = file('journal/b', 2 * MiB);
    counters.begin([a, b]);
    assert.equal(counters.bytesTotal, 8 * MiB);
    assert.equal(counters.filesTotal, 2);
    assert.equal(counters.percent, 0);
    assert.equal(counters.bytesPerSec, 0);
    assert.equal(counters.etaSecs, undefined);

    counters.fileStarted(a);
    counters.fileStarted(b);
    assert.deepEqual(counters.currentFiles, ['a.wt', 'journal/b']);
    // 1 MiB every 250 ms: 4 MiB/s.
    for (let i = 0; i < 4; i++) {
      now += 250;
      counters.chunkCopied(a, MiB);
    }
    assert.equal(counters.bytesCopied, 4 * MiB);
    assert.equal(counters.percent, 50);
    assert.ok(Math.abs(counters.bytesPerSec / (4 * MiB) - 1) < 0.01, String(counters.bytesPerSec));
    assert.ok(Math.abs((counters.etaSecs ?? 0) - 1) < 0.01, String(counters.etaSecs));

    now += 250;
    counters.chunkCopied(b, 2 * MiB);
    counters.fileFinished(b, { relativePath: 'journal/b', size: 2 * MiB, checksum: '' });
    assert.deepEqual(counters.currentFiles, ['a.wt']);
    assert.equal(counters.filesCopied, 1);
    assert.equal(counters.percent, 75);
  });

  it('measures the rate over a sliding 2 s window', () => {
    let now = 10_000;
    const counters = new ProgressCounters({ now: () => now });
    const a = file('a', 100 * MiB);
    counters.begin([a]);
    // 10 s at 1 MiB/s, then 2 s at 8 MiB/s: the window sees only the fast part.
    for (let i = 0; i < 100; i++) {
      now += 100;
      counters.chunkCopied(a, MiB / 10);
    }
    assert.ok(Math.abs(counters.bytesPerSec / MiB - 1) < 0.06, String(counters.bytesPerSec / MiB));
    for (let i = 0; i < 20; i++) {
      now += 100;
      counters.chunkCopied(a, (8 * MiB) / 10);
    }
    assert.ok(Math.abs(counters.bytesPerSec / (8 * MiB) - 1) < 0.06, String(counters.bytesPerSec / MiB));
    // Stalled for 3 s: no rate, no ETA.
    now += 3000;
    assert.equal(counters.bytesPerSec, 0);
    assert.equal(counters.etaSecs, undefined);
  });

  it('rounds percent down to one decimal, uses files when every file is empty, and resets on begin', () => {
    const counters = new ProgressCounters();
    const a = file('a', 3000);
    counters.begin([a]);
    counters.chunkCopied(a, 1999);
    assert.equal(counters.percent, 66.6);
    counters.begin([file('x', 0), file('y', 0), file('z', 0)]);
    assert.equal(counters.bytesCopied, 0);
    counters.fileFinished(file('x', 0), { relativePath: 'x', size: 0, checksum: '' });
    assert.equal(counters.percent, 33.3);
    assert.equal(counters.etaSecs, 0);
  });

  it('takes a frozen snapshot that later chunks do not change', () => {
    let now = 0;
    const counters = new ProgressCounters({ now: () => now });
    const a = file('a.wt', 4 * MiB);
    counters.begin([a]);
    counters.fileStarted(a);
    now += 500;
    counters.chunkCopied(a, MiB);
    const taken = counters.snapshot();
    assert.deepEqual(taken, {
      bytesCopied: MiB,
      filesCopied: 0,
      bytesReused: 0,
      filesReused: 0,
      bytesCompared: 0,
      bytesTotal: 4 * MiB,
      filesTotal: 1,
      percent: 25,
      bytesPerSec: 2 * MiB,
      etaSecs: 1.5,
      currentFiles: ['a.wt'],
    });
    assert.ok(Object.isFrozen(taken) && Object.isFrozen(taken.currentFiles));
    now += 500;
    counters.chunkCopied(a, 3 * MiB);
    counters.fileFinished(a);
    assert.equal(taken.bytesCopied, MiB);
    assert.deepEqual(taken.currentFiles, ['a.wt']);
    assert.equal(counters.snapshot().percent, 100);
  });

  it("counts an incremental backup's reused files apart from copied ones, and both as done", () => {
    let now = 0;
    const counters = new ProgressCounters({ now: () => now });
    const copied = file('changed.wt', MiB);
    const quick = file('same.wt', 2 * MiB);
    const compared = file('racy.wt', MiB);
    counters.begin([copied, quick, compared]);
    now += 500;
    counters.chunkCopied(copied, MiB);
    counters.fileFinished(copied, { relativePath: 'changed.wt', size: MiB, checksum: '' });
    counters.fileFinished(quick, { relativePath: 'same.wt', size: 2 * MiB, checksum: '', reused: { method: 'hardlink', check: 'sizeMtime' } });
    assert.equal(counters.percent, 75);
    // Hashed to be compared with the base: read, not copied, and not done until it is taken.
    counters.chunkCompared(compared, MiB);
    assert.equal(counters.percent, 75);
    counters.fileFinished(compared, { relativePath: 'racy.wt', size: MiB, checksum: '', reused: { method: 'reflink', check: 'checksum' } });
    const done = counters.snapshot();
    assert.deepEqual(
      { bytesCopied: done.bytesCopied, filesCopied: done.filesCopied, bytesReused: done.bytesReused, filesReused: done.filesReused, bytesCompared: done.bytesCompared },
      { bytesCopied: MiB, filesCopied: 1, bytesReused: 3 * MiB, filesReused: 2, bytesCompared: MiB },
    );
    assert.equal(done.percent, 100);
    assert.equal(done.etaSecs, 0);
    // The rate is of bytes read from the source: copied and compared.
    assert.equal(done.bytesPerSec, 4 * MiB);
  });

  it('has a no-op default reporter', () => {
    const a = file('a', 1);
    noProgress.fileStarted(a);
    noProgress.chunkCopied(a, 1);
    noProgress.fileFinished(a, { relativePath: 'a', size: 1, checksum: '' });
    assert.ok(Object.isFrozen(noProgress));
  });
});
