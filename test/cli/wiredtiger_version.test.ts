/**
 * Which WiredTiger wrote a dbpath, from its files alone (src/cli/wiredtiger_version.ts): the
 * guard that keeps the dev server's WiredTiger 3.2.1 off files a newer one wrote. The files
 * are written here as WiredTiger writes them: the `WiredTiger` file's banner only when the
 * database is created (src/conn/conn_api.c, __conn_single), WiredTiger.turtle's
 * `WiredTiger version` at each checkpoint (src/meta/meta_turtle.c, __wt_turtle_update).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { devServerCanOpen, newerWiredTigerFiles, readWiredTigerVersion } from '../../src/cli/wiredtiger_version.js';
import { freshDirs } from '../helpers/paths.js';

const banner = (version: string) => `WiredTiger\nWiredTiger ${version}: (August 27, 2019)\n`;
const turtle = (major: number, minor: number, patch: number) =>
  `WiredTiger version string\nWiredTiger ${major}.${minor}.${patch}: (March 20, 2019)\nWiredTiger version\nmajor=${major},minor=${minor},patch=${patch}\nfile:WiredTiger.wt\naccess_pattern_hint=none\n`;

describe('readWiredTigerVersion and newerWiredTigerFiles', () => {
  const dirs = freshDirs('wt-version');
  after(() => dirs.remove());

  const dbpath = (files: Record<string, string>): string => {
    const dir = dirs.fresh();
    for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text, 'latin1');
    return dir;
  };

  it("a database created by an old WiredTiger and upgraded in place: the turtle's newer version, not the banner's", async () => {
    const dir = dbpath({ WiredTiger: banner('3.2.1'), 'WiredTiger.turtle': turtle(10, 0, 2) });
    const version = await readWiredTigerVersion(dir);
    assert.deepEqual(version, { major: 10, minor: 0, patch: 2 });
    assert.equal(devServerCanOpen(version), false);
  });

  it('the newer of the two when the banner is the newer (a turtle left by an older writer cannot vouch for the files)', async () => {
    assert.deepEqual(await readWiredTigerVersion(dbpath({ WiredTiger: banner('11.2.0'), 'WiredTiger.turtle': turtle(3, 2, 1) })), { major: 11, minor: 2, patch: 0 });
  });

  it('either file alone names the version; neither: undefined', async () => {
    assert.deepEqual(await readWiredTigerVersion(dbpath({ 'WiredTiger.turtle': turtle(3, 2, 1) })), { major: 3, minor: 2, patch: 1 });
    assert.deepEqual(await readWiredTigerVersion(dbpath({ WiredTiger: banner('3.2.1') })), { major: 3, minor: 2, patch: 1 });
    assert.equal(await readWiredTigerVersion(dbpath({})), undefined);
  });

  it("the history store (WiredTigerHS.wt, WiredTiger 10+) marks a newer WiredTiger's files whatever the version lines say; mongod's own files do not", async () => {
    const dir = dbpath({ WiredTiger: banner('3.2.1'), 'WiredTiger.turtle': turtle(3, 2, 1), 'WiredTigerHS.wt': '', 'sizeStorer.wt': '', '_mdb_catalog.wt': '', 'WiredTigerLAS.wt': '' });
    assert.deepEqual(await newerWiredTigerFiles(dir), ['WiredTigerHS.wt']);
    assert.deepEqual(await newerWiredTigerFiles(dbpath({ WiredTiger: banner('3.2.1'), 'sizeStorer.wt': '', 'WiredTigerLAS.wt': '' })), []);
  });
});
