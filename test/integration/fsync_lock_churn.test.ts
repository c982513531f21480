/**
 * Files that change in the dbpath while mongod is fsync-locked must not sink a
 * long, write-blocking backup:
 * - FTDC replaces diagnostic.data/metrics.interim by temp file and rename, and
 *   deletes it when it archives a chunk, lock or no lock: never copied at all;
 * - a log kept in the dbpath that is rotated away (deleted, or truncated by
 *   copytruncate) mid-copy: left out, with a warning in backupStatus.last.
 * One copy worker and a throttle make the order and pace of the copy predictable:
 * the 100 MB journal file goes first, and the churn happens while it is copied.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient, type Document } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/paths.js';
import { until, untilBackupEnds } from '../helpers/poll.js';

const MANIFEST = 'hotbackup-manifest.json';
const MiB = 1024 * 1024;
const DOCS = 2000;

type Manifest = { files: Array<{ path: string }>; totals: { files: number; bytes: number } };

describe('an fsyncLock backup while files in the dbpath change', () => {
  let server: RunningDevServer;
  let proxy: RunningProxy;
  let client: MongoClient;
  const scratch = tempDir('churn');
  const admin = () => client.db('admin');

  before(async () => {
    server = await startDevServer({ args: ['--no-backup-cursor'] });
    proxy = await startProxy(server, ['--concurrency', '1']);
    client = new MongoClient(proxy.uri);
    await client.db('app').collection('docs').insertMany(Array.from({ length: DOCS }, (_, i) => ({ i, pad: 'c'.repeat(200) })));
  });

  after(async () => {
    await client?.close();
    await proxy?.stop();
    await server?.stop();
    server?.cleanup();
    scratch.remove();
  });

  async function status(): Promise<Document> {
    return admin().command({ backupStatus: 1 });
  }

  /** Polls backupStatus until `holds` is true of it; fails if the backup ends first. */
  async function waitForCopying(holds: (s: Document) => boolean, what: string): Promise<void> {
    await until(async () => {
      const s = await status();
      if (!s['inProgress']) assert.fail(`the backup ended before ${what}: ${JSON.stringify(s['last'])}`);
      return s['phase'] === 'copying' && holds(s);
    }, 10);
  }

  const copyingJournal = (s: Document): boolean =>
    (s['currentFiles'] as string[]).some((f) => f.startsWith('journal/WiredTigerLog.')) && Number(s['bytesCopied']) > 0;

  async function expectRestorable(dest: string): Promise<void> {
    const restoreDir = path.join(scratch.dir, `${path.basename(dest)}-restored`);
    fs.cpSync(dest, restoreDir, { recursive: true });
    const restored = await startDevServer({ dbpath: restoreDir });
    const reader = new MongoClient(restored.uri);
    try {
      assert.equal(await reader.db('app').collection('docs').countDocuments(), DOCS);
    } finally {
      await reader.close();
      await restored.stop();
    }
  }

  it('leaves out diagnostic.data, which FTDC rewrites and deletes while mongod is locked', async () => {
    const ftdc = path.join(server.dbpath, 'diagnostic.data');
    const interim = path.join(ftdc, 'metrics.interim');
    fs.mkdirSync(ftdc, { recursive: true });
    fs.writeFileSync(interim, Buffer.alloc(4 * MiB, 1));
    fs.writeFileSync(path.join(ftdc, 'metrics.2026-11-30T12-00-00Z-00000'), Buffer.alloc(2 * MiB, 2));
    const dest = path.join(scratch.dir, 'ftdc');
    await admin().command({ backupThrottle: '16MB' });
    try {
      assert.equal((await admin().command({ backupStart: dest, async: true, allowWriteBlocking: true }))['ok'], 1);
      await waitForCopying(copyingJournal, 'the journal was being copied');
      // What FTDC does on its own schedule: a new interim through temp file and rename...
      fs.writeFileSync(`${interim}.temp`, Buffer.alloc(3 * MiB, 3));
      fs.renameSync(`${interim}.temp`, interim);
      // ...then a chunk archived: the interim goes, a new archive file appears.
      fs.unlinkSync(interim);
      fs.writeFileSync(path.join(ftdc, 'metrics.2026-11-30T12-05-00Z-00000'), Buffer.alloc(MiB, 4));
    } finally {
      await admin().command({ backupThrottle: 0 });
    }
    const done = (await untilBackupEnds(admin())) as Document;
    const last = done['last'] as Document;
    assert.equal(last['ok'], true, String(last['errmsg']));
    assert.deepEqual(last['warnings'], []);
    assert.equal(fs.existsSync(path.join(dest, 'diagnostic.data')), false, 'no diagnostic.data in the copy');
    const manifest = JSON.parse(fs.readFileSync(path.join(dest, MANIFEST), 'utf8')) as Manifest;
    assert.deepEqual(manifest.files.filter((f) => f.path.startsWith('diagnostic.data')), []);
    assert.ok(!manifest.files.some((f) => f.path === 'mongod.lock' || f.path === 'WiredTiger.lock'), 'no lock files');
    await expectRestorable(dest);
  });

  it('leaves out, with a warning, a log in the dbpath that is rotated away mid-copy', async () => {
    const vanishing = path.join(server.dbpath, 'mongod.log');
    const truncated = path.join(server.dbpath, 'mongod.log.1');
    fs.writeFileSync(vanishing, Buffer.alloc(30 * MiB, 5));
    fs.writeFileSync(truncated, Buffer.alloc(40 * MiB, 6));
    const dest = path.join(scratch.dir, 'logs');
    await admin().command({ backupThrottle: '16MB' });
    try {
      assert.equal((await admin().command({ backupStart: dest, async: true, allowWriteBlocking: true }))['ok'], 1);
      // Largest first, one at a time: the journal, then mongod.log.1, then mongod.log.
      await waitForCopying(copyingJournal, 'the journal was being copied');
      fs.unlinkSync(vanishing);
      await waitForCopying((s) => (s['currentFiles'] as string[]).includes('mongod.log.1'), 'mongod.log.1 was being copied');
      fs.truncateSync(truncated, 0); // logrotate's copytruncate
    } finally {
      await admin().command({ backupThrottle: 0 });
    }
    const done = (await untilBackupEnds(admin())) as Document;
    const last = done['last'] as Document;
    assert.equal(last['ok'], true, String(last['errmsg']));
    const warnings = last['warnings'] as string[];
    assert.equal(warnings.length, 2, warnings.join('; '));
    // In the order of the listing, not of the events.
    assert.equal(warnings[0], 'mongod.log was left out: it vanished before it could be copied (ENOENT)');
    assert.match(warnings[1] ?? '', /^mongod\.log\.1 was left out: it ended after \d+ bytes while being copied \(listed at 41943040\)$/);

    const manifest = JSON.parse(fs.readFileSync(path.join(dest, MANIFEST), 'utf8')) as Manifest;
    assert.deepEqual(manifest.files.filter((f) => f.path.startsWith('mongod.log')), []);
    assert.deepEqual(fs.readdirSync(dest).filter((n) => n.startsWith('mongod.log')), [], 'no partial copy left');
    // The counters agree with what was copied: skipped files left the totals.
    assert.equal(Number(done['filesCopied']), manifest.totals.files);
    assert.equal(Number(done['filesTotal']), manifest.totals.files);
    assert.equal(Number(done['bytesCopied']), manifest.totals.bytes);
    assert.equal(Number(done['bytesTotal']), manifest.totals.bytes);
    assert.equal(done['percent'], 100);
    const logged = proxy.logs.filter((l) => l['level'] === 40 && String(l['msg']).includes('was left out'));
    assert.equal(logged.length, 2, 'each skipped file is logged as a warning');
    await expectRestorable(dest);
  });
});
