/**
 * Sealing clones made in a destination: what the copier would have left there. Plain
 * files stand in for clones (sealing reads and truncates; it never clones).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { sealClones } from '../../src/backup/seal_clones.js';
import { ProgressCounters } from '../../src/backup/progress.js';
import { SourceTooShortError } from '../../src/backup/file_copy.js';
import type { SourceFile } from '../../src/backup/copy_types.js';
import { tempDir } from '../helpers/paths.js';
import { xxh3Hex } from '../helpers/checksum.js';

function place(dir: string, relativePath: string, bytes: Buffer, listedSize = bytes.length, optional = false): SourceFile {
  const file = path.join(dir, relativePath);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, bytes, { mode: 0o644 });
  return { path: file, relativePath, size: listedSize, ...(optional ? { optional: true } : {}) };
}

describe('sealClones', () => {
  it('checksums each file up to its listed size, cuts what grew past it, makes it 0600, and counts progress', async () => {
    const scratch = tempDir('seal');
    try {
      const table = randomBytes(3 * 1024 * 1024 + 17);
      const log = randomBytes(5000);
      const files = [place(scratch.dir, 'collection-1.wt', table), place(scratch.dir, 'journal/WiredTigerLog.0000000001', log, 4096), place(scratch.dir, 'empty.wt', Buffer.alloc(0))];
      const counters = new ProgressCounters();
      counters.begin(files);
      const result = await sealClones(files, [scratch.dir, path.join(scratch.dir, 'journal')], {
        progress: counters,
        signal: new AbortController().signal,
        concurrency: 2,
        chunkSize: 1024 * 1024,
      });
      assert.deepEqual(result.skipped, []);
      assert.deepEqual(result.copied, [
        { relativePath: 'collection-1.wt', size: table.length, checksum: xxh3Hex(table) },
        { relativePath: 'journal/WiredTigerLog.0000000001', size: 4096, checksum: xxh3Hex(log.subarray(0, 4096)) },
        { relativePath: 'empty.wt', size: 0, checksum: xxh3Hex(Buffer.alloc(0)) },
      ]);
      assert.equal(fs.statSync(files[1]!.path).size, 4096, 'bytes past the listed size are cut');
      for (const file of files) assert.equal(fs.statSync(file.path).mode & 0o777, 0o600);
      const progress = counters.snapshot();
      assert.equal(progress.bytesCopied, table.length + 4096);
      assert.equal(progress.filesCopied, 3);
    } finally {
      scratch.remove();
    }
  });

  it('fails on a required file shorter than listed, and skips (and removes) an optional one', async () => {
    const scratch = tempDir('seal-short');
    try {
      const optional = place(scratch.dir, 'mongod.log', randomBytes(10), 20, true);
      const ok = await sealClones([optional], [scratch.dir], { progress: new ProgressCounters(), signal: new AbortController().signal, concurrency: 1 });
      assert.deepEqual(ok.copied, []);
      assert.equal(ok.skipped[0]?.reason, 'shrank');
      assert.equal(fs.existsSync(optional.path), false);

      const required = place(scratch.dir, 'collection-2.wt', randomBytes(10), 20);
      await assert.rejects(
        sealClones([required], [scratch.dir], { progress: new ProgressCounters(), signal: new AbortController().signal, concurrency: 1 }),
        (err: unknown) => err instanceof SourceTooShortError && err.expectedSize === 20 && err.actualSize === 10,
      );
    } finally {
      scratch.remove();
    }
  });

  it('stops with the abort reason', async () => {
    const scratch = tempDir('seal-abort');
    try {
      const file = place(scratch.dir, 'collection-3.wt', randomBytes(4 * 1024 * 1024));
      const abort = new AbortController();
      const counters = new ProgressCounters();
      counters.begin([file]);
      const progress = {
        fileStarted: (f: SourceFile) => counters.fileStarted(f),
        chunkCopied: (f: SourceFile, n: number) => {
          counters.chunkCopied(f, n);
          abort.abort(new Error('shutting down'));
        },
        fileFinished: () => assert.fail('finished after an abort'),
        fileSkipped: () => assert.fail('skipped'),
      };
      await assert.rejects(sealClones([file], [scratch.dir], { progress, signal: abort.signal, concurrency: 1, chunkSize: 1024 * 1024 }), /shutting down/);
    } finally {
      scratch.remove();
    }
  });
});
