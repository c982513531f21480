/**
 * A destination that backupStart creates is durable: the parent of every level that
 * mkdir -p created is fsync'ed (and only those: an existing tree is left alone).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { prepareDestination, type DestinationFs } from '../../src/backup/destination.js';
import { fsyncDirectory } from '../../src/backup/durable.js';
import { tempDir } from '../helpers/paths.js';

/** The real directory operations, with every directory fsync recorded. */
function recordingFs(): { dirs: DestinationFs; fsynced: string[] } {
  const fsynced: string[] = [];
  return {
    fsynced,
    dirs: {
      mkdirs: (dir) => fsp.mkdir(dir, { recursive: true }),
      async fsyncDirectory(dir) {
        fsynced.push(dir);
        await fsyncDirectory(dir);
      },
    },
  };
}

describe('prepareDestination', () => {
  it('fsyncs the parent of every directory level it creates', async () => {
    const root = tempDir('dest');
    const dbpath = tempDir('dest-dbpath');
    try {
      const { dirs, fsynced } = recordingFs();
      const destination = path.join(root.dir, 'a', 'b', 'c');
      assert.equal(await prepareDestination(destination, dbpath.dir, dirs), destination);
      assert.ok(fs.statSync(destination).isDirectory());
      assert.deepEqual(fsynced, [root.dir, path.join(root.dir, 'a'), path.join(root.dir, 'a', 'b')]);
    } finally {
      root.remove();
      dbpath.remove();
    }
  });

  it('fsyncs only the parent when one level is created', async () => {
    const root = tempDir('dest');
    const dbpath = tempDir('dest-dbpath');
    try {
      const { dirs, fsynced } = recordingFs();
      await prepareDestination(path.join(root.dir, 'backup'), dbpath.dir, dirs);
      assert.deepEqual(fsynced, [root.dir]);
    } finally {
      root.remove();
      dbpath.remove();
    }
  });

  it('creates nothing and fsyncs nothing for an existing empty directory', async () => {
    const root = tempDir('dest');
    const dbpath = tempDir('dest-dbpath');
    try {
      const { dirs, fsynced } = recordingFs();
      assert.equal(await prepareDestination(root.dir, dbpath.dir, dirs), root.dir);
      assert.deepEqual(fsynced, []);
    } finally {
      root.remove();
      dbpath.remove();
    }
  });
});
