/**
 * The manifest's checksum is XXH3-64 as xxHash's own CLI prints it (`xxhsum -H3`), so
 * anyone can check a backup file without this program. The expected values below were
 * printed by xxhsum 0.8.1 (Debian's `xxhash` package), not by the library under test.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { CHECKSUM_ALGORITHM, startChecksum } from '../../src/backup/checksum.js';
import { copyFiles } from '../../src/backup/copier.js';
import { TokenBucket } from '../../src/backup/throttle.js';
import { xxh3Hex } from '../helpers/checksum.js';
import { tempDir } from '../helpers/paths.js';

const MiB = 1024 * 1024;

/** 3 MiB + 7 bytes that differ from one 2 KiB stretch to the next: crosses every chunk size used here. */
function pattern(): Buffer {
  const data = Buffer.alloc(3 * MiB + 7);
  for (let i = 0; i < data.length; i++) data[i] = (i * 131 + (i >>> 11)) & 0xff;
  return data;
}

/** Input → `xxhsum -H3` of it. */
const XXHSUM: ReadonlyArray<readonly [string, Buffer, string]> = [
  ['empty', Buffer.alloc(0), '2d06800538d394c2'],
  ['abc', Buffer.from('abc'), '78af5f94892f3950'],
  // Its digest is below 2^60: the leading zero must be printed.
  ['a digest with a leading zero', Buffer.from('leading zero 1'), '0973dba78928f9b0'],
  ['3 MiB + 7 bytes', pattern(), '6d0aff1f185bf82f'],
];

/** Feeds `data` to a running checksum in pieces of the given sizes, cycling through them. */
function streamed(data: Buffer, pieces: readonly number[]): string {
  const checksum = startChecksum();
  let offset = 0;
  for (let i = 0; offset < data.length; i++) {
    const piece = pieces[i % pieces.length] ?? 1;
    checksum.update(data.subarray(offset, offset + piece));
    offset += piece;
  }
  return checksum.hex();
}

describe('backup checksum', () => {
  let root: { dir: string; remove: () => void };
  before(() => {
    root = tempDir('checksum');
  });
  after(() => root.remove());

  it('is named xxh3-64', () => {
    assert.equal(CHECKSUM_ALGORITHM, 'xxh3-64');
  });

  for (const [name, data, expected] of XXHSUM) {
    it(`matches xxhsum -H3 for ${name}, whole or in uneven pieces, as does the tests' helper`, () => {
      assert.equal(streamed(data, [data.length || 1]), expected);
      assert.equal(streamed(data, [MiB, 1, 240, 241, 64 * 1024 - 3]), expected);
      assert.equal(xxh3Hex(data), expected);
    });
  }

  it('is what the copy records for a file, read in chunks by a worker thread', async () => {
    const [, data, expected] = XXHSUM[3]!;
    const source = path.join(root.dir, 'pattern.wt');
    fs.writeFileSync(source, data);
    const dest = path.join(root.dir, 'dest');
    fs.mkdirSync(dest);
    const files = [{ path: source, relativePath: 'pattern.wt', size: data.length }];
    const { copied } = await copyFiles(files, dest, { limiter: new TokenBucket(0), chunkSize: 256 * 1024 - 1 });
    assert.deepEqual(copied, [{ relativePath: 'pattern.wt', size: data.length, checksum: expected }]);
  });
});
