/**
 * Taking a file from an incremental base (copyOrReuse), on real temp files: a base whose
 * copy of a file is a symbolic link, as whoever may write in the base could leave one.
 * The link must not be followed: nothing it points to is cloned, linked or made
 * read-only, and the file is copied from the source instead, saying why.
 */
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { copyOrReuse, REUSED_FILE_MODE, type ReuseHooks } from '../../src/backup/file_reuse.js';
import { mtimeText } from '../../src/backup/source_stamp.js';
import type { SourceFile } from '../../src/backup/copy_types.js';
import { xxh3Hex } from '../helpers/checksum.js';
import { tempDir } from '../helpers/paths.js';

const hooks: ReuseHooks = { beforeRead: () => undefined, chunkCopied: () => undefined, chunkCompared: () => undefined };

describe('copyOrReuse: the base copy of a file', () => {
  let scratch: ReturnType<typeof tempDir>;
  let base: string;
  let dest: string;
  let source: string;
  let elsewhere: string;
  const data = randomBytes(64 * 1024);

  beforeEach(() => {
    scratch = tempDir('file-reuse');
    base = path.join(scratch.dir, 'base');
    dest = path.join(scratch.dir, 'dest');
    for (const dir of [base, dest]) fs.mkdirSync(dir);
    source = path.join(scratch.dir, 'source.wt');
    elsewhere = path.join(scratch.dir, 'elsewhere.wt');
    fs.writeFileSync(source, data);
    // Not the base's: same size, an old mtime, so that only its being a link can stop it being taken.
    fs.writeFileSync(elsewhere, data, { mode: 0o644 });
    fs.chmodSync(elsewhere, 0o644);
    fs.utimesSync(elsewhere, new Date('2020-01-01T00:00:00Z'), new Date('2020-01-01T00:00:00Z'));
  });
  afterEach(() => scratch.remove());

  function reusing(from: string, compare: boolean): SourceFile {
    const now = mtimeText(fs.statSync(source, { bigint: true }));
    assert.ok(now !== undefined);
    return { path: source, relativePath: 'table.wt', size: data.length, reuse: { from, backupId: 'base', checksum: xxh3Hex(data), baseWrittenAt: now, compare } };
  }

  for (const compare of [false, true]) {
    it(`does not follow a symbolic link in the base (compare: ${compare}): copies from the source, and leaves what it points to alone`, async () => {
      const link = path.join(base, 'table.wt');
      fs.symlinkSync(elsewhere, link);
      const target = path.join(dest, 'table.wt');
      const outcome = await copyOrReuse(reusing(link, compare), target, Buffer.alloc(16 * 1024), 0o600, hooks);
      assert.ok('copied' in outcome);
      assert.equal(outcome.copied.reused, undefined);
      assert.match(String(outcome.copied.notReused), /is a symbolic link/);
      assert.equal(fs.statSync(elsewhere).mode & 0o7777, 0o644, 'the file the link points to keeps its mode');
      assert.equal(fs.statSync(elsewhere).nlink, 1, 'and is linked nowhere');
      const written = fs.lstatSync(target);
      assert.ok(written.isFile());
      assert.equal(written.mode & 0o7777, 0o600);
      assert.deepEqual(fs.readFileSync(target), data);
    });
  }

  it('takes a regular file of the base, read-only on both sides', async () => {
    const copy = path.join(base, 'table.wt');
    fs.writeFileSync(copy, data);
    fs.utimesSync(copy, new Date('2020-01-01T00:00:00Z'), new Date('2020-01-01T00:00:00Z'));
    const target = path.join(dest, 'table.wt');
    const outcome = await copyOrReuse(reusing(copy, false), target, Buffer.alloc(16 * 1024), 0o600, hooks);
    assert.ok('copied' in outcome);
    assert.equal(outcome.copied.notReused, undefined);
    assert.ok(outcome.copied.reused !== undefined);
    for (const file of [copy, target]) assert.equal(fs.statSync(file).mode & 0o7777, REUSED_FILE_MODE, file);
    assert.deepEqual(fs.readFileSync(target), data);
  });
});
