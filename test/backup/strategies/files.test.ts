/**
 * The fsyncLock strategy's listing of a dbpath: what is required, optional or never
 * copied, and symbolic links followed (cycles and dangling links refused by name);
 * the reflink strategy's listing ahead of its lock, while files come and go, and its
 * second reading of the names under the lock; and the link detection the engine
 * applies to either strategy's list.
 */
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import fsp from 'node:fs/promises';
import { dbpathRole, listDbpath, relistDbpath, sourceFile, stampFiles, withLinks } from '../../../src/backup/strategies/files.js';
import { FILE_CALL_CONCURRENCY } from '../../../src/backup/file_walk.js';
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

  it("never copies hotbackup's own files from the top of a dbpath (one that was a backup, or a restore's target); elsewhere they are anyone's", () => {
    const own = [
      'hotbackup-manifest.json',
      'hotbackup-incomplete.json',
      'hotbackup-verified.json',
      'hotbackup-restore-incomplete.json',
      'hotbackup-restore.WiredTiger.turtle',
      'hotbackup-restore.WiredTiger.backup',
      // What a crash leaves of a durable write of one (durable.ts).
      '.hotbackup-manifest.json.0123456789ab.tmp',
      '.hotbackup-verified.json.ba9876543210.tmp',
    ];
    for (const p of own) assert.equal(dbpathRole(p), 'excluded', p);
    for (const p of ['app/hotbackup-manifest.json', 'journal/hotbackup-incomplete.json', 'hotbackup-manifest.json.bak', 'hotbackup-notes.txt', '.hotbackup-manifest.json.tmp']) {
      assert.equal(dbpathRole(p), 'optional', p);
    }
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

  it("takes a file whose name starts with '..' as inside the dbpath, and refuses one outside", () => {
    assert.equal(sourceFile(dbpath, path.join(dbpath, '..x'), 1).relativePath, '..x');
    assert.throws(() => sourceFile(dbpath, path.join(path.dirname(dbpath), 'x'), 1), /outside the dbpath/);
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

  async function expectRefusal(pattern: RegExp, errno?: number, tolerateVanishing = false): Promise<void> {
    await assert.rejects(listDbpath(dbpath, { tolerateVanishing }), (err: unknown) => {
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
    const dangling = /the symbolic link collection-9-42\.wt \(.*\/db\/collection-9-42\.wt -> .*\/other-disk\/moved-away\) is dangling: No such file or directory/;
    await expectRefusal(dangling, 2);
    // A link that is there but leads nowhere has not vanished: even the listing ahead of the lock refuses it.
    await expectRefusal(dangling, 2, true);
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

describe("a dbpath holding hotbackup's own files", () => {
  it('lists none of them, ahead of the lock or under it, and keeps a file of the same name further down', async () => {
    const root = tempDir('ownfiles');
    try {
      const dbpath = path.join(root.dir, 'db');
      for (const name of ['WiredTiger', 'WiredTiger.turtle', 'WiredTiger.wt', 'collection-1-42.wt']) write(path.join(dbpath, name), 10);
      // mongod started on a copy of a backup: its manifest, marker and verification record came along.
      for (const name of ['hotbackup-manifest.json', 'hotbackup-incomplete.json', 'hotbackup-verified.json']) write(path.join(dbpath, name), 50);
      write(path.join(dbpath, 'notes', 'hotbackup-manifest.json'), 5);
      const expected = [
        ['collection-1-42.wt', false],
        ['notes/hotbackup-manifest.json', true],
        ['WiredTiger', false],
        ['WiredTiger.turtle', false],
        ['WiredTiger.wt', false],
      ];
      const listed = await listDbpath(dbpath, { tolerateVanishing: true });
      assert.deepEqual(listed.map((f) => [f.relativePath, f.optional === true]), expected);
      // Under the lock, a restore marker that appeared since is left out too.
      write(path.join(dbpath, 'hotbackup-restore-incomplete.json'), 60);
      const relisted = await relistDbpath(dbpath, listed);
      assert.deepEqual(relisted.map((f) => [f.relativePath, f.optional === true]), expected);
    } finally {
      root.remove();
    }
  });
});

describe('relistDbpath', () => {
  let root: { dir: string; remove: () => void };
  let dbpath: string;

  beforeEach(() => {
    root = tempDir('relistdbpath');
    dbpath = path.join(root.dir, 'db');
  });
  afterEach(() => root.remove());

  it('reads the names again: keeps the sizes of files still there, looks in full at everything that changed kind or is new', async () => {
    const layout: Record<string, number> = {
      'WiredTiger.wt': 10,
      'collection-1-42.wt': 100,
      'collection-2-42.wt': 200,
      'turned-into-dir.wt': 300,
      'journal/WiredTigerLog.0000000001': 1000,
      'journal/WiredTigerLog.0000000002': 1000,
      'olddb/collection-3-42.wt': 400,
      'app/collection-4-42.wt': 500,
    };
    for (const [name, size] of Object.entries(layout)) write(path.join(dbpath, name), size);
    const previous = await listDbpath(dbpath);
    assert.equal(previous.length, 8);

    // What a checkpoint and a few operations do meanwhile.
    fs.rmSync(path.join(dbpath, 'collection-2-42.wt'));
    fs.rmSync(path.join(dbpath, 'journal', 'WiredTigerLog.0000000001'));
    write(path.join(dbpath, 'journal', 'WiredTigerLog.0000000003'), 1001);
    fs.rmSync(path.join(dbpath, 'turned-into-dir.wt'));
    write(path.join(dbpath, 'turned-into-dir.wt', 'collection-5-42.wt'), 7);
    fs.rmSync(path.join(dbpath, 'olddb'), { recursive: true });
    write(path.join(dbpath, 'olddb'), 3);
    write(path.join(dbpath, 'app', 'index-6-42.wt'), 60);
    write(path.join(dbpath, 'newdb', 'collection-7-42.wt'), 70);
    write(path.join(dbpath, 'collection-8-42.wt'), 80);
    // Grown since: a name read again keeps the size listed before (the caller takes its clone's).
    write(path.join(dbpath, 'collection-1-42.wt'), 150);

    const relisted = await relistDbpath(dbpath, previous);
    assert.deepEqual(
      relisted.map((f) => [f.relativePath, f.size, f.optional === true]),
      [
        ['app/collection-4-42.wt', 500, false],
        ['app/index-6-42.wt', 60, false],
        ['collection-1-42.wt', 100, false],
        ['collection-8-42.wt', 80, false],
        ['journal/WiredTigerLog.0000000002', 1000, false],
        ['journal/WiredTigerLog.0000000003', 1001, false],
        ['newdb/collection-7-42.wt', 70, false],
        ['olddb', 3, true],
        ['turned-into-dir.wt/collection-5-42.wt', 7, false],
        ['WiredTiger.wt', 10, false],
      ],
    );
    for (const f of relisted) assert.equal(f.path, path.join(dbpath, f.relativePath));
    // The same names as a full listing now; only the sizes of names read again may differ.
    assert.deepEqual(
      relisted.map((f) => f.relativePath),
      (await listDbpath(dbpath)).map((f) => f.relativePath),
    );
  });
});

/**
 * Files made and removed in a tight loop on another thread while the dbpath is listed: a
 * name read by readdir is often gone by the time it is stat'ed, as WiredTiger's journal
 * files are after a checkpoint, and a dropped database's directory.
 */
const CHURN = `
const { workerData } = require('node:worker_threads');
const fs = require('node:fs');
const path = require('node:path');
const { dir, target } = workerData;
for (let i = 0; ; i = (i + 1) % 8) {
  const file = path.join(dir, 'collection-churn-' + i + '.wt');
  fs.writeFileSync(file, 'x');
  fs.unlinkSync(file);
  const db = path.join(dir, 'churndb-' + i);
  fs.mkdirSync(db);
  fs.writeFileSync(path.join(db, 'collection-0-1.wt'), 'x');
  fs.rmSync(db, { recursive: true });
  const link = path.join(dir, 'collection-link-' + i + '.wt');
  fs.symlinkSync(target, link);
  fs.unlinkSync(link);
}
`;

describe('listDbpath while files come and go', () => {
  it('ahead of the lock (tolerateVanishing) skips what vanished; under the lock it fails, since a required file must not vanish then', async () => {
    const root = tempDir('churn');
    const dbpath = path.join(root.dir, 'db');
    const stable = ['WiredTiger', 'WiredTiger.wt', '_mdb_catalog.wt', 'journal/WiredTigerLog.0000000001', 'app/collection-1-42.wt'];
    for (const name of stable) write(path.join(dbpath, name), 10);
    write(path.join(root.dir, 'target.wt'), 10);
    const churn = new Worker(CHURN, { eval: true, workerData: { dir: dbpath, target: path.join(root.dir, 'target.wt') } });
    const churnFailed = new Promise<never>((_resolve, reject) => churn.once('error', reject));
    try {
      // Side by side until the strict listing has run into vanished names a few times: the
      // tolerant one faced as many, and must never fail.
      let strictFailures = 0;
      let tolerantRuns = 0;
      while (strictFailures < 5) {
        const [strict, tolerant] = await Promise.race([
          Promise.all([
            listDbpath(dbpath).then(
              () => undefined,
              (err: unknown) => err,
            ),
            listDbpath(dbpath, { tolerateVanishing: true }),
          ]),
          churnFailed,
        ]);
        if (strict !== undefined) strictFailures += 1;
        tolerantRuns += 1;
        const names = new Set(tolerant.map((f) => f.relativePath));
        for (const name of stable) assert.ok(names.has(name), `${name} is listed`);
      }
      assert.ok(tolerantRuns >= strictFailures);
    } finally {
      await churn.terminate();
      root.remove();
    }
  });
});

describe('a dbpath of many files', () => {
  let dir: { dir: string; remove: () => void };
  beforeEach(() => (dir = tempDir('many-files')));
  afterEach(() => dir.remove());

  /**
   * Every file's stat in flight at once held all their requests and Stats objects
   * together: the proxy's heap grew with the number of files (docs/performance.md,
   * section 6). Counted on the calls themselves, through the module object files.ts
   * calls them on.
   */
  it('is listed, stamped and checked for links with at most FILE_CALL_CONCURRENCY calls in flight, every file in order', async (t) => {
    const count = 300;
    for (let i = 0; i < count; i++) write(path.join(dir.dir, 'db', `collection-${String(i).padStart(3, '0')}.wt`), 1);
    let inFlight = 0;
    let most = 0;
    const counted = <A extends unknown[], R>(call: (...args: A) => Promise<R>) =>
      async (...args: A): Promise<R> => {
        most = Math.max(most, ++inFlight);
        try {
          return await call(...args);
        } finally {
          inFlight--;
        }
      };
    t.mock.method(fsp, 'stat', counted(fsp.stat.bind(fsp)));
    t.mock.method(fsp, 'lstat', counted(fsp.lstat.bind(fsp)));

    const listed = await listDbpath(dir.dir);
    assert.equal(listed.length, count);
    assert.ok(most <= FILE_CALL_CONCURRENCY, `listing: ${most} calls in flight`);
    assert.ok(most > 1, 'the listing still runs calls in parallel');

    most = 0;
    const stamped = await stampFiles(listed);
    assert.deepEqual(stamped.map((f) => f.relativePath), listed.map((f) => f.relativePath));
    assert.ok(stamped.every((f) => f.stamp !== undefined));
    assert.ok(most <= FILE_CALL_CONCURRENCY, `stamping: ${most} calls in flight`);

    most = 0;
    const linked = await withLinks(listed);
    assert.deepEqual(linked.map((f) => f.relativePath), listed.map((f) => f.relativePath));
    assert.ok(most <= FILE_CALL_CONCURRENCY, `links: ${most} calls in flight`);
  });
});
