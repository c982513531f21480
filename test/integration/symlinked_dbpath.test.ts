/**
 * A dbpath whose collection files and `journal/` live on "another disk", linked
 * back with symbolic links (common practice with --directoryperdb or a separate
 * journal volume): both strategies back it up, the manifest says which files came
 * through a link, and the copy opens in a fresh dev server with every document.
 * Under fsyncLock a link cycle or a dangling link fails the backup, naming the link.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient, type Document } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/paths.js';

const MANIFEST = 'hotbackup-manifest.json';
type Linked = { _id: number; pad: string };
type ManifestEntry = { path: string; size: number; link?: { path: string; target: string } };

const cases = [
  { strategy: 'backupCursor', serverArgs: [] as string[], start: {} },
  { strategy: 'fsyncLock', serverArgs: ['--no-backup-cursor'], start: { allowWriteBlocking: true } },
] as const;

/** Moves `name` out of the dbpath to `elsewhere` and links it back, as an operator would. */
function moveAndLink(dbpath: string, name: string, elsewhere: string): string {
  const target = path.join(elsewhere, name);
  fs.renameSync(path.join(dbpath, name), target);
  fs.symlinkSync(target, path.join(dbpath, name));
  return fs.realpathSync(target);
}

async function countDocs(uri: string): Promise<{ linked: number; plain: number; ids: number[] }> {
  const client = new MongoClient(uri);
  try {
    const db = client.db('app');
    const ids = (await db.collection('linked').find({}, { projection: { _id: 1 } }).sort({ _id: 1 }).toArray()).map((d) => Number(d['_id']));
    return { linked: ids.length, plain: await db.collection('plain').countDocuments(), ids };
  } finally {
    await client.close();
  }
}

for (const { strategy, serverArgs, start } of cases) {
  describe(`a dbpath with symlinked files, backed up with the ${strategy} strategy`, () => {
    it('backs up, restores and reads back every document; the manifest names the links', async () => {
      const scratch = tempDir(`symlinks-${strategy}`);
      const dbpath = path.join(scratch.dir, 'db');
      const elsewhere = path.join(scratch.dir, 'other-disk');
      fs.mkdirSync(dbpath);
      fs.mkdirSync(elsewhere);
      let server: RunningDevServer | undefined = await startDevServer({ dbpath, args: [...serverArgs] });
      try {
        const seed = new MongoClient(server.uri);
        try {
          await seed.db('app').collection<Linked>('linked').insertMany(Array.from({ length: 3000 }, (_, i) => ({ _id: i, pad: 'l'.repeat(300) })));
          await seed.db('app').collection('plain').insertMany(Array.from({ length: 500 }, (_, i) => ({ i })));
        } finally {
          await seed.close();
        }
        await server.stop();
        server = undefined;

        // The collection files and journal/ go to the other disk; links bring them back.
        const collectionFiles = fs.readdirSync(dbpath).filter((n) => /^collection-.*\.wt$/.test(n));
        assert.ok(collectionFiles.length >= 2, collectionFiles.join(','));
        const linkTargets = new Map(collectionFiles.map((n) => [n, moveAndLink(dbpath, n, elsewhere)]));
        linkTargets.set('journal', moveAndLink(dbpath, 'journal', elsewhere));

        // The dev server, like mongod, works through the links; more writes go to the linked journal.
        server = await startDevServer({ dbpath, args: [...serverArgs] });
        const writer = new MongoClient(server.uri);
        try {
          await writer.db('app').collection<Linked>('linked').insertMany(Array.from({ length: 500 }, (_, i) => ({ _id: 3000 + i, pad: 'm' })), { writeConcern: { j: true } });
        } finally {
          await writer.close();
        }
        assert.deepEqual((await countDocs(server.uri)).linked, 3500, 'the dev server reads the moved files through their links');

        const proxy = await startProxy(server);
        const client = new MongoClient(proxy.uri);
        const dest = path.join(scratch.dir, 'backup');
        try {
          assert.deepEqual(await client.db('admin').command({ backupStart: dest, ...start }), { ok: 1 });
          const last = (await client.db('admin').command({ backupStatus: 1 }))['last'] as Document;
          assert.equal(last['strategy'], strategy);

          const manifest = JSON.parse(fs.readFileSync(path.join(dest, MANIFEST), 'utf8')) as { files: ManifestEntry[] };
          for (const name of collectionFiles) {
            const entry = manifest.files.find((f) => f.path === name);
            assert.ok(entry !== undefined, `${name} is in the manifest`);
            assert.deepEqual(entry.link, { path: name, target: linkTargets.get(name) });
            assert.equal(entry.size, fs.statSync(path.join(dest, name)).size);
          }
          const journal = manifest.files.filter((f) => f.path.startsWith('journal/WiredTigerLog.'));
          assert.ok(journal.length >= 1, 'the journal is in the manifest');
          for (const entry of journal) assert.deepEqual(entry.link, { path: 'journal', target: linkTargets.get('journal') });
          const unlinked = manifest.files.find((f) => f.path === 'storage.bson');
          assert.equal(unlinked?.link, undefined, 'files not reached through a link have no link');
          // The copy holds the files themselves, not links.
          for (const entry of manifest.files) assert.ok(fs.lstatSync(path.join(dest, entry.path)).isFile(), entry.path);
          assert.deepEqual(last['warnings'], []);

          if (strategy === 'fsyncLock') {
            fs.symlinkSync(dbpath, path.join(dbpath, 'loop'));
            await expectRefused(client, path.join(scratch.dir, 'cycle'), start, /the symbolic link loop \(.* -> .*\) leads back to the dbpath itself: a cycle/);
            fs.unlinkSync(path.join(dbpath, 'loop'));
            fs.symlinkSync(path.join(elsewhere, 'moved-away.wt'), path.join(dbpath, 'collection-99-1.wt'));
            await expectRefused(client, path.join(scratch.dir, 'dangling'), start, /the symbolic link collection-99-1\.wt \(.* -> .*moved-away\.wt\) is dangling: No such file or directory/);
            fs.unlinkSync(path.join(dbpath, 'collection-99-1.wt'));
            const direct = new MongoClient(server.uri);
            try {
              const op = await direct.db('admin').command({ currentOp: 1 });
              assert.equal(op['fsyncLock'], undefined, 'the refused backups left no fsync lock');
            } finally {
              await direct.close();
            }
          }
        } finally {
          await client.close();
          await proxy.stop();
        }
        await server.stop();
        server = undefined;

        const restored = await startDevServer({ dbpath: dest });
        try {
          const counts = await countDocs(restored.uri);
          assert.equal(counts.linked, 3500);
          assert.equal(counts.plain, 500);
          counts.ids.forEach((id, i) => assert.equal(id, i, `gap at ${i}`));
        } finally {
          await restored.stop();
        }
      } finally {
        await server?.stop();
        scratch.remove();
      }
    });
  });
}

async function expectRefused(client: MongoClient, dest: string, start: object, message: RegExp): Promise<void> {
  await assert.rejects(client.db('admin').command({ backupStart: dest, ...start }), (err: unknown) => {
    const e = err as { code?: number; codeName?: string; message: string };
    assert.equal(e.code, 268, e.message);
    assert.equal(e.codeName, 'CannotBackup');
    assert.match(e.message, message);
    return true;
  });
  assert.equal(fs.existsSync(path.join(dest, MANIFEST)), false, 'a refused backup has no manifest');
  const last = (await client.db('admin').command({ backupStatus: 1 }))['last'] as Document;
  assert.equal(last['ok'], false);
  assert.match(String(last['errmsg']), message);
}
