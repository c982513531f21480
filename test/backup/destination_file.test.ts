/**
 * A destination written with O_DIRECT keeps every byte where the copy put it, whatever
 * the alignment of the offsets and lengths it is given: direct where they are whole
 * blocks, through the page cache where they are not (src/backup/destination_file.ts).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { DestinationFile } from '../../src/backup/destination_file.js';
import { findDirectBuffer } from '../../src/backup/direct_io.js';
import { copyFiles } from '../../src/backup/copier.js';
import { TokenBucket } from '../../src/backup/throttle.js';
import { xxh3Hex } from '../helpers/checksum.js';
import { tempDir } from '../helpers/paths.js';

const KiB = 1024;

describe('destination file', () => {
  let root: ReturnType<typeof tempDir>;
  before(() => (root = tempDir('destination-file')));
  after(() => root.remove());
  const fsType = (): string => execFileSync('stat', ['-f', '-c', '%T', root.dir], { encoding: 'utf8' }).trim();

  it('writes unaligned offsets and lengths exactly, as a copy after a short read would', (t) => {
    const raw = Buffer.allocUnsafeSlow(64 * KiB + 4 * KiB);
    const aligned = findDirectBuffer(root.dir, raw, 64 * KiB);
    if (aligned === undefined) return t.skip(`no direct writes on this temp dir (${fsType()}): nothing to test`);
    const file = path.join(root.dir, 'unaligned');
    const dest = DestinationFile.create(file, 0o600, true);
    const expected = Buffer.alloc(3 * 64 * KiB + 7);
    // An aligned chunk, a short one that leaves the offset unaligned, then whole chunks again.
    const pieces: [number, number][] = [[0, 64 * KiB], [64 * KiB, 1000], [64 * KiB + 1000, 64 * KiB], [2 * 64 * KiB + 1000, 64 * KiB - 993]];
    for (const [position, length] of pieces) {
      const bytes = randomBytes(length);
      bytes.copy(aligned);
      dest.write(aligned.subarray(0, length), position);
      bytes.copy(expected, position);
    }
    dest.fsync();
    dest.close();
    assert.ok(fs.readFileSync(file).equals(expected));
  });

  it('copies with a chunk size that is no multiple of a block, through the page cache', async () => {
    const data = randomBytes(300 * KiB + 3);
    const src = path.join(root.dir, 'odd-chunk-source');
    fs.writeFileSync(src, data);
    const dest = path.join(root.dir, 'odd-chunk-dest');
    fs.mkdirSync(dest);
    const { copied } = await copyFiles([{ path: src, relativePath: 'f', size: data.length }], dest, { limiter: new TokenBucket(0), chunkSize: 5000 });
    assert.equal(copied[0]?.checksum, xxh3Hex(data));
    assert.ok(fs.readFileSync(path.join(dest, 'f')).equals(data));
  });

  it('leaves no probe file behind', () => {
    findDirectBuffer(root.dir, Buffer.allocUnsafeSlow(8 * KiB), 4 * KiB);
    assert.deepEqual(fs.readdirSync(root.dir).filter((name) => name.startsWith('.hotbackup-direct-probe')), []);
  });
});
