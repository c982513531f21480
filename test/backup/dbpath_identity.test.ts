/**
 * The --dbpath identity check, on plain directories: the same directory passes by
 * device and inode; another path passes only when it holds the open backup's
 * WiredTiger.backup at its listed size and every listed file; anything else is
 * refused with CannotBackup naming both paths.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { checkSameDbpath, rebaseListedFiles } from '../../src/backup/strategies/dbpath_identity.js';
import { CommandError } from '../../src/errors.js';
import { tempDir } from '../helpers/paths.js';

const scratch = tempDir('identity');
after(() => scratch.remove());

function dbpathWith(name: string, files: Record<string, number>): string {
  const dir = path.join(scratch.dir, name);
  fs.mkdirSync(dir, { recursive: true });
  for (const [rel, size] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), Buffer.alloc(size));
  }
  return dir;
}

const LISTED = { 'WiredTiger.backup': 300, 'collection-1.wt': 8192, 'journal/WiredTigerLog.0000000001': 1000 };

function listed(mongodDbpath: string) {
  return Object.entries(LISTED).map(([rel, size]) => ({ filename: path.join(mongodDbpath, rel), fileSize: size }));
}

function refusal(pattern: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof CommandError);
    assert.equal(err.code, 268);
    assert.match(err.message, pattern);
    return true;
  };
}

describe('checkSameDbpath', () => {
  const mongodDbpath = '/nonexistent/mongod/dbpath';

  it('accepts the same directory by device and inode, without looking at files', async () => {
    const dir = dbpathWith('same', {});
    await checkSameDbpath(dir, dir, rebaseListedFiles(dir, dir, listed(dir)));
  });

  it('accepts a hidden mongod path when the open backup and its files are here', async () => {
    const local = dbpathWith('alias', { ...LISTED, 'collection-1.wt': 9000 });
    const files = rebaseListedFiles(mongodDbpath, local, listed(mongodDbpath));
    assert.deepEqual(files.map((f) => f.path), Object.keys(LISTED).map((rel) => path.join(local, rel)));
    await checkSameDbpath(mongodDbpath, local, files);
  });

  it('refuses a directory without the open backup\'s WiredTiger.backup', async () => {
    const { ['WiredTiger.backup']: _marker, ...rest } = LISTED;
    const local = dbpathWith('stale', rest);
    await assert.rejects(
      checkSameDbpath(mongodDbpath, local, rebaseListedFiles(mongodDbpath, local, listed(mongodDbpath))),
      refusal(new RegExp(`^The proxy's dbpath ${local} is not mongod's dbpath ${mongodDbpath}: there is no .*WiredTiger\\.backup`)),
    );
  });

  it('refuses a WiredTiger.backup of another size, or a listed file that is shorter', async () => {
    const wrongMarker = dbpathWith('other-backup', { ...LISTED, 'WiredTiger.backup': 301 });
    await assert.rejects(checkSameDbpath(mongodDbpath, wrongMarker, rebaseListedFiles(mongodDbpath, wrongMarker, listed(mongodDbpath))), refusal(/is 301 bytes/));
    const short = dbpathWith('short', { ...LISTED, 'collection-1.wt': 4096 });
    await assert.rejects(checkSameDbpath(mongodDbpath, short, rebaseListedFiles(mongodDbpath, short, listed(mongodDbpath))), refusal(/collection-1\.wt is 4096 bytes/));
  });

  it('refuses a --dbpath that does not exist', async () => {
    const missing = path.join(scratch.dir, 'missing');
    await assert.rejects(checkSameDbpath(mongodDbpath, missing, []), refusal(/does not exist here/));
  });
});
