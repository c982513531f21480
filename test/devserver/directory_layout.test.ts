/**
 * `--directoryperdb` and `--wiredTigerDirectoryForIndexes`, as PSMDB's backup_wt_perdb.js,
 * backup_wt_forindexes.js and backup_wt_perdb_forindexes.js run them: the files land in
 * mongod's subdirectories, the backup cursor lists them there, a backup through the proxy
 * keeps them and verifies, and the copy opens (with the same flags) holding every document.
 * A restart with another layout is refused, as mongod refuses it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient, type Document } from 'mongodb';
import { startDevServer } from '../helpers/dev_server.js';
import { startProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/paths.js';
import { untilBackupEnds } from '../helpers/poll.js';
import { runCli } from '../helpers/cli_run.js';
import { openBackupCursor, closeBackupCursor } from '../helpers/backup_cursor_spy.js';

interface Layout {
  name: string;
  args: string[];
  /** Where `app`'s collection and index files live, relative to the dbpath. */
  collection: RegExp;
  index: RegExp;
  /** How many tables of each kind match: `other`'s share the directory without directoryperdb. */
  tables: number;
}

const LAYOUTS: Layout[] = [
  { name: '--directoryperdb', args: ['--directoryperdb'], collection: /^app\/collection-[^/]+\.wt$/, index: /^app\/index-[^/]+\.wt$/, tables: 2 },
  { name: '--wiredTigerDirectoryForIndexes', args: ['--wiredTigerDirectoryForIndexes'], collection: /^collection\/[^/]+\.wt$/, index: /^index\/[^/]+\.wt$/, tables: 3 },
  {
    name: 'both',
    args: ['--directoryperdb', '--wiredTigerDirectoryForIndexes'],
    collection: /^app\/collection\/[^/]+\.wt$/,
    index: /^app\/index\/[^/]+\.wt$/,
    tables: 2,
  },
];

const DOCS = { c1: 700, c2: 300 };

function relativeFiles(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => fs.statSync(path.join(dir, f)).isFile()).sort();
}

async function countsIn(dbpath: string, args: string[]): Promise<Record<string, number>> {
  const server = await startDevServer({ dbpath, args });
  const client = new MongoClient(server.uri);
  try {
    const out: Record<string, number> = {};
    for (const name of Object.keys(DOCS)) out[name] = await client.db('app').collection(name).countDocuments();
    out['other.c'] = await client.db('other').collection('c').countDocuments();
    return out;
  } finally {
    await client.close();
    await server.stop();
  }
}

describe('dev server directory layouts', () => {
  for (const layout of LAYOUTS) {
    it(`${layout.name}: files in mongod's subdirectories, listed there by the backup cursor, kept by a proxy backup`, async () => {
      const scratch = tempDir('layout');
      const server = await startDevServer({ args: layout.args });
      const client = new MongoClient(server.uri);
      try {
        for (const [name, n] of Object.entries(DOCS)) {
          await client.db('app').collection<{ _id: number; pad: string }>(name).insertMany(Array.from({ length: n }, (_, i) => ({ _id: i, pad: 'x'.repeat(200) })));
        }
        await client.db('other').collection<{ _id: number }>('c').insertOne({ _id: 1 });
        // A dropped database's directory goes with its last table, as on mongod.
        await client.db('gone').collection<{ _id: number }>('c').insertOne({ _id: 1 });
        if (layout.args.includes('--directoryperdb')) assert.ok(fs.existsSync(path.join(server.dbpath, 'gone')));
        await client.db('gone').dropDatabase();
        assert.ok(!fs.existsSync(path.join(server.dbpath, 'gone')), 'the dropped database leaves no directory');
        await client.db('admin').command({ fsync: 1 });

        const files = relativeFiles(server.dbpath);
        assert.equal(files.filter((f) => layout.collection.test(f)).length, layout.tables, files.join('\n'));
        assert.equal(files.filter((f) => layout.index.test(f)).length, layout.tables, files.join('\n'));
        assert.ok(!files.some((f) => /^(collection|index)-.*\.wt$/.test(f)), `no table file at the top level: ${files.join(' ')}`);

        const cursor = await openBackupCursor(client);
        try {
          const listed = cursor.files.map((f) => path.relative(server.dbpath, f.filename));
          assert.equal(listed.filter((f) => layout.collection.test(f)).length, layout.tables, listed.join('\n'));
          assert.equal(listed.filter((f) => layout.index.test(f)).length, layout.tables, listed.join('\n'));
          for (const f of cursor.files) assert.ok(fs.existsSync(f.filename), f.filename);
        } finally {
          await closeBackupCursor(client, cursor);
        }

        // A restart with another layout is refused, with mongod's message.
        await client.close();
        await server.stop();
        const wrong = layout.args.includes('--directoryperdb') ? [] : ['--directoryperdb'];
        const refused = await runCli(['dev-server', '--dbpath', server.dbpath, '--port', '0', ...wrong]);
        assert.notEqual(refused.code, 0);
        assert.match(refused.stderr, /Requested option conflicts with current storage engine option for directoryPerDB; you requested (true|false) but the current server storage is already set to (true|false) and cannot be changed/);

        // Through the proxy: the backup keeps the subdirectories, verifies, and opens.
        const again = await startDevServer({ dbpath: server.dbpath, args: layout.args });
        const proxy = await startProxy(again);
        const proxyClient = new MongoClient(proxy.uri);
        try {
          const admin = proxyClient.db('admin');
          const dest = path.join(scratch.dir, 'backup');
          assert.equal((await admin.command({ backupStart: dest, async: true }))['ok'], 1);
          const done = await untilBackupEnds(admin);
          assert.equal((done['last'] as Document)['ok'], true, JSON.stringify(done['last']));
          assert.equal((await admin.command({ backupVerify: dest }))['ok'], 1);
          const copied = relativeFiles(dest);
          assert.equal(copied.filter((f) => layout.collection.test(f)).length, layout.tables, copied.join('\n'));
          assert.equal(copied.filter((f) => layout.index.test(f)).length, layout.tables, copied.join('\n'));

          const copy = path.join(scratch.dir, 'opened');
          execFileSync('cp', ['-a', dest, copy]);
          execFileSync('chmod', ['-R', 'u+w', copy]);
          assert.deepEqual(await countsIn(copy, layout.args), { ...DOCS, 'other.c': 1 });
        } finally {
          await proxyClient.close();
          await proxy.stop();
          await again.stop();
        }
      } finally {
        await client.close().catch(() => undefined);
        await server.stop().catch(() => undefined);
        server.cleanup();
        scratch.remove();
      }
    });
  }
});
