/**
 * Where the proxy keeps its state and staged clones: one proxy per state dir, claimed for
 * its whole life (a second claim names the holder), and never the dbpath, inside it, or
 * holding it, whether written so or reached through a symbolic link.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { claimStateDir } from '../../src/backup/state_dir_claim.js';
import { checkWorkDirs, defaultStateDir, workDirs } from '../../src/backup/work_dirs.js';
import { tempDir } from '../helpers/paths.js';

describe('state dir claim', () => {
  it('refuses a second claim, naming the holder, and frees the dir on release', async () => {
    const dir = tempDir('claim');
    try {
      const first = await claimStateDir(dir.dir, 4242);
      await assert.rejects(claimStateDir(dir.dir), (err: Error) => {
        assert.equal(
          err.message,
          `another hotbackup proxy (pid 4242) already uses the state dir ${dir.dir}: two proxies cannot share one, or a crash of one ` +
            'would leave what its backup holds unknown to both. Give each proxy its own --state-dir.',
        );
        return true;
      });
      // The same directory through a symbolic link is the same claim.
      const link = `${dir.dir}-link`;
      fs.symlinkSync(dir.dir, link);
      try {
        await assert.rejects(claimStateDir(link), /already uses the state dir/);
      } finally {
        fs.unlinkSync(link);
      }
      await first.release();
      const again = await claimStateDir(dir.dir);
      await again.release();
    } finally {
      dir.remove();
    }
  });
});

describe('work dirs', () => {
  it('defaults to one hidden directory next to the dbpath', () => {
    assert.equal(defaultStateDir('/var/lib/mongodb'), '/var/lib/.mongodb.hotbackup');
    assert.deepEqual(workDirs('/var/lib/mongodb/'), { stateDir: '/var/lib/.mongodb.hotbackup', stagingRoot: '/var/lib/.mongodb.hotbackup/staging' });
  });

  it('refuses a state dir or staging root that is the dbpath, inside it, or holds it, also through a link', async () => {
    const root = tempDir('workdirs');
    try {
      const dbpath = path.join(root.dir, 'db');
      fs.mkdirSync(dbpath);
      const link = path.join(root.dir, 'alias');
      fs.symlinkSync(dbpath, link);
      await checkWorkDirs(dbpath, workDirs(dbpath));
      for (const [given, flag] of [
        [{ stagingRoot: dbpath }, '--staging-dir'],
        [{ stagingRoot: path.join(dbpath, 'staging') }, '--staging-dir'],
        [{ stateDir: root.dir }, '--state-dir'],
        [{ stagingRoot: path.join(link, 'x') }, '--staging-dir'],
      ] as const) {
        await assert.rejects(checkWorkDirs(dbpath, workDirs(dbpath, given)), (err: Error) => {
          assert.match(err.message, new RegExp(`^${flag} .* must be outside the dbpath ${dbpath}, and must not contain it`));
          return true;
        });
      }
    } finally {
      root.remove();
    }
  });
});
