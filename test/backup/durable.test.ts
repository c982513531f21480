import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fsyncDirectory, writeFileDurably } from '../../src/backup/durable.js';
import { tempDir } from '../helpers/paths.js';

describe('writeFileDurably', () => {
  let root: { dir: string; remove: () => void };
  before(() => {
    root = tempDir('durable');
  });
  after(() => root.remove());

  it('writes, replaces, and leaves no temp file behind', async () => {
    const file = path.join(root.dir, 'meta.json');
    await writeFileDurably(file, '{"a":1}');
    assert.equal(fs.readFileSync(file, 'utf8'), '{"a":1}');
    const big = Buffer.alloc(3 * 1024 * 1024, 7);
    await writeFileDurably(file, big);
    assert.deepEqual(fs.readFileSync(file), big);
    await writeFileDurably(file, '');
    assert.equal(fs.statSync(file).size, 0);
    assert.deepEqual(fs.readdirSync(root.dir), ['meta.json']);
  });

  it('leaves the target untouched and no temp file when the rename fails', async () => {
    const dir = path.join(root.dir, 'blocked');
    fs.mkdirSync(path.join(dir, 'target'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'target', 'inside'), 'x');
    // Renaming a file over a non-empty directory fails (EISDIR or ENOTEMPTY).
    await assert.rejects(writeFileDurably(path.join(dir, 'target'), 'data'), (err: NodeJS.ErrnoException) => typeof err.code === 'string');
    assert.deepEqual(fs.readdirSync(dir), ['target']);
  });

  it('fails with ENOENT when the directory does not exist', async () => {
    await assert.rejects(writeFileDurably(path.join(root.dir, 'nope', 'file'), 'x'), { code: 'ENOENT' });
  });

  it('fsyncs a directory, and reports a missing one', async () => {
    await fsyncDirectory(root.dir);
    await assert.rejects(fsyncDirectory(path.join(root.dir, 'missing')), { code: 'ENOENT' });
  });
});
