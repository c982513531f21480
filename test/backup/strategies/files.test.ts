/**
 * The fsyncLock strategy's listing of a dbpath: what is required, optional or never
 * copied, and symbolic links followed (cycles and dangling links refused by name);
 * and the link detection the engine applies to either strategy's list.
 */
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { dbpathRole, listDbpath, sourceFile, withLinks } from '../../../src/backup/strategies/files.js';
import { CommandError } from '../../../src/errors.js';
import { tempDir } from '../../helpers/paths.js';

function write(file: string, size: number): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, Buffer.alloc(size, 1));
}

describe('dbpathRole', () => {
  it('knows what a restore needs, what it must not get, and what is nice to have', () => {
    const required = [
      'WiredTiger',
      'WiredTiger.turtle',
      'WiredTiger.wt',
      'WiredTiger.basecfg',
      'WiredTigerHS.wt',
      'WiredTigerLAS.wt',
      'storage.bson',
      '_mdb_catalog.wt',
      'sizeStorer.wt',
      'collection-7-123.wt',
      'app/collection-7-123.wt',
      'app/collection/7-123.wt',
      'app/index/8-123.wt',
      'journal/WiredTigerLog.0000000012',
    ];
    const excluded = [
      'diagnostic.data',
      'diagnostic.data/metrics.interim',
      'diagnostic.data/metrics.2026-11-30T12-00-00Z-00000',
      '_tmp',
      '_tmp/extsort-index.1',
      'mongod.lock',
      'WiredTiger.lock',
      'journal/WiredTigerPreplog.0000000013',
      'journal/WiredTigerTmplog.0000000014',
    ];
    const optional = ['mongod.log', 'keyfile', 'journal/README', 'app/notes.txt', 'app/mongod.lock'];
    for (const p of required) assert.equal(dbpathRole(p), 'required', p);
    for (const p of excluded) assert.equal(dbpathRole(p), 'excluded', p);
    for (const p of optional) assert.equal(dbpathRole(p), 'optional', p);
  });
});

describe('listDbpath', () => {
  let root: { dir: string; remove: () => void };
  let dbpath: string;
  let elsewhere: string;

  beforeEach(() => {
    root = tempDir('listdbpath');
    dbpath = path.join(root.dir, 'db');
    elsewhere = path.join(root.dir, 'other-disk');
    for (const name of ['WiredTiger', 'WiredTiger.turtle', 'WiredTiger.wt', 'WiredTiger.lock', 'mongod.lock', 'storage.bson', '_mdb_catalog.wt']) {
      write(path.join(dbpath, name), 10);
    }
    write(path.join(dbpath, 'mongod.log'), 20);
    write(path.join(dbpath, 'diagnostic.data', 'metrics.interim'), 30);
    write(path.join(dbpath, '_tmp', 'spill'), 30);
    // A collection file and journal/ moved to another disk and linked back.
    write(path.join(elsewhere, 'collection-1-42.wt'), 4096);
    fs.symlinkSync(path.join(elsewhere, 'collection-1-42.wt'), path.join(dbpath, 'collection-1-42.wt'));
    write(path.join(elsewhere, 'journal', 'WiredTigerLog.0000000001'), 8192);
    write(path.join(elsewhere, 'journal', 'WiredTigerPreplog.0000000002'), 100);
    fs.symlinkSync(path.join(elsewhere, 'journal'), path.join(dbpath, 'journal'));
    // A --directoryperdb database directory linked with a relative link.
    write(path.join(elsewhere, 'app', 'collection', '3-42.wt'), 512);
    write(path.join(elsewhere, 'app', 'index', '4-42.wt'), 256);
    fs.symlinkSync(path.join('..', 'other-disk', 'app'), path.join(dbpath, 'app'));
  });
  afterEach(() => root.remove());

  it('follows links, copying the targets under the links’ names, and leaves out what a restore must not get', async () => {
    const files = await listDbpath(dbpath);
    const listed = files.map((f) => [f.relativePath, f.size, f.optional === true]);
    assert.deepEqual(listed, [
      ['_mdb_catalog.wt', 10, false],
      ['app/collection/3-42.wt', 512, false],
      ['app/index/4-42.wt', 256, false],
      ['collection-1-42.wt', 4096, false],
      ['journal/WiredTigerLog.0000000001', 8192, false],
      ['mongod.log', 20, true],
      ['storage.bson', 10, false],
      ['WiredTiger', 10, false],
      ['WiredTiger.turtle', 10, false],
      ['WiredTiger.wt', 10, false],
    ]);
    for (const f of files) assert.equal(f.path, path.join(dbpath, f.relativePath), 'read through the link, as mongod does');

    const links = (await withLinks(files)).map((f) => [f.relativePath, f.link]);
    const real = fs.realpathSync(elsewhere);
    assert.deepEqual(links, [
      ['_mdb_catalog.wt', undefined],
      ['app/collection/3-42.wt', { path: 'app', target: path.join(real, 'app') }],
      ['app/index/4-42.wt', { path: 'app', target: path.join(real, 'app') }],
      ['collection-1-42.wt', { path: 'collection-1-42.wt', target: path.join(real, 'collection-1-42.wt') }],
      ['journal/WiredTigerLog.0000000001', { path: 'journal', target: path.join(real, 'journal') }],
      ['mongod.log', undefined],
      ['storage.bson', undefined],
      ['WiredTiger', undefined],
      ['WiredTiger.turtle', undefined],
      ['WiredTiger.wt', undefined],
    ]);
  });

  it('finds the links of a list mongod made ($backupCursor names files under its dbpath)', async () => {
    const listed = [
      sourceFile(dbpath, path.join(dbpath, 'journal', 'WiredTigerLog.0000000001'), 8192),
      sourceFile(dbpath, path.join(dbpath, 'WiredTiger.wt'), 10),
    ];
    const [journal, table] = await withLinks(listed);
    assert.deepEqual(journal?.link, { path: 'journal', target: path.join(fs.realpathSync(elsewhere), 'journal') });
    assert.equal(table?.link, undefined);
  });

  async function expectRefusal(pattern: RegExp, errno?: number): Promise<void> {
    await assert.rejects(listDbpath(dbpath), (err: unknown) => {
      assert.ok(err instanceof CommandError, String(err));
      assert.equal(err.code, 268);
      assert.equal(err.codeName, 'CannotBackup');
      assert.match(err.message, pattern);
      if (errno !== undefined) assert.equal(err.extra['errno'], errno);
      return true;
    });
  }

  it('refuses a link that leads back into a directory it is inside of, naming it', async () => {
    fs.symlinkSync('..', path.join(elsewhere, 'app', 'collection', 'up'));
    await expectRefusal(/the symbolic link app\/collection\/up \(.*\/db\/app\/collection\/up -> \.\.\) leads back to app, a directory it is inside of: a cycle/);
  });

  it('refuses a link back to the dbpath itself', async () => {
    fs.symlinkSync(dbpath, path.join(dbpath, 'loop'));
    await expectRefusal(/the symbolic link loop \(.* -> .*\/db\) leads back to the dbpath itself: a cycle/);
  });

  it('refuses a dangling link, naming it, with errno and strerror', async () => {
    fs.symlinkSync(path.join(elsewhere, 'moved-away'), path.join(dbpath, 'collection-9-42.wt'));
    await expectRefusal(/the symbolic link collection-9-42\.wt \(.*\/db\/collection-9-42\.wt -> .*\/other-disk\/moved-away\) is dangling: No such file or directory/, 2);
  });

  it('refuses a link to itself, which cannot be followed', async () => {
    fs.symlinkSync('self', path.join(dbpath, 'self'));
    await expectRefusal(/the symbolic link self \(.* -> self\) cannot be followed: Too many (levels of )?symbolic links/, 40);
  });

  it('ignores links inside excluded directories', async () => {
    fs.symlinkSync('/nonexistent', path.join(dbpath, 'diagnostic.data', 'dangling'));
    fs.symlinkSync(dbpath, path.join(dbpath, '_tmp', 'loop'));
    assert.equal((await listDbpath(dbpath)).length, 10);
  });
});
