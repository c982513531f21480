/**
 * The catalog and purge's plan over a source and a store that are not directories (as an
 * S3 root's are): the same entries, order, verdicts and wording as for a directory; an
 * unfinished backup sized when its source counts bytes; the streamed oplog, hidden names
 * and entries gone meanwhile passed over; a base kept exactly when a kept incremental
 * lacks a file it took from it, and the plan naming how the store holds shared files.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readCatalogFrom, type CatalogChild, type CatalogSource } from '../../src/backup/backup_catalog.js';
import { ManifestError, manifestFiles, type Manifest, type ReadManifest } from '../../src/backup/manifest.js';
import { endedMarker, runningMarker, type BackupMarker } from '../../src/backup/backup_marker.js';
import { abandonedSourceWarnings, planPurge, sourceGroups, type PurgeStore } from '../../src/backup/retention.js';
import { catalogTable } from '../../src/cli/catalog_output.js';

const HASH = 'a'.repeat(16);

function manifest(finishedAt: string, base?: Manifest): Manifest {
  const files = manifestFiles([
    { relativePath: 'WiredTiger.wt', size: 4096, checksum: HASH },
    { relativePath: 'collection-0.wt', size: 1000, checksum: HASH },
  ]);
  return {
    format: 'mongo-hotbackup-proxy',
    version: 2,
    backupId: randomUUID(),
    strategy: 'backupCursor',
    source: { dbpath: '/var/lib/mongodb', host: '127.0.0.1:27017', serverVersion: '7.0.14' },
    startedAt: finishedAt,
    finishedAt,
    durationMs: 0,
    throttleBytesPerSec: 0,
    ...files,
    ...(base === undefined
      ? {}
      : {
          base: { backupId: base.backupId, path: '/unused' },
          files: files.files.map((f) => (f.path === 'collection-0.wt' ? { ...f, reusedFrom: { backupId: base.backupId, method: 'hardlink', check: 'sizeMtime' } } : f)),
        }),
  };
}

type Fake = { manifest?: Manifest; marker?: BackupMarker; time?: Date; bytes?: number; gone?: boolean };

function source(entries: Record<string, Fake>): CatalogSource {
  const child = (name: string, fake: Fake): CatalogChild => ({
    name,
    path: `s3://bucket/root/${name}`,
    readManifest: async (): Promise<ReadManifest> => {
      if (fake.manifest === undefined) throw new ManifestError('MISSING', `${name}/hotbackup-manifest.json`, 'no manifest');
      return { manifest: fake.manifest, fileChecksum: '0123456789abcdef' };
    },
    readMarker: async () => (fake.marker === undefined ? { kind: 'absent' } : { kind: 'present', marker: fake.marker }),
    readVerification: async () => (name === 'b' ? { ok: true, verifiedAt: '2026-11-30T10:00:00.000Z' } : undefined),
    contents: async () => (fake.gone === true ? undefined : { time: fake.time ?? new Date(0), bytes: fake.bytes }),
  });
  return { root: 's3://bucket/root', children: async () => Object.entries(entries).map(([name, fake]) => child(name, fake)) };
}

describe('a catalog over a source that is not a directory', () => {
  const a = manifest('2026-11-21T02:00:00.000Z');
  const b = manifest('2026-11-22T02:00:00.000Z');
  const c = manifest('2026-11-23T02:00:00.000Z', b);
  const started = { backupId: randomUUID(), startedAt: new Date('2026-11-24T02:00:00.000Z') };
  const failed = endedMarker(runningMarker(started), { code: 96, codeName: 'OperationFailed', errmsg: 'S3 upload failed', extra: {} }, new Date(), 'failed');
  const fakes: Record<string, Fake> = {
    c: { manifest: c },
    'z-failed': { marker: failed, time: new Date('2026-11-24T02:00:05.000Z'), bytes: 12345 },
    a: { manifest: a },
    b: { manifest: b },
    'y-running': { marker: runningMarker(started), time: new Date('2026-11-24T02:00:06.000Z'), bytes: 10 },
    oplog: { time: new Date('2026-11-25T00:00:00.000Z'), bytes: 1 },
    '.hidden': { time: new Date(), bytes: 1 },
    gone: { gone: true },
  };

  it('reads the entries as the directory catalog does, oldest first, unfinished ones sized', async () => {
    const catalog = await readCatalogFrom(source(fakes));
    assert.deepEqual(
      catalog.map((e) => [e.name, e.manifest !== undefined, e.unfinished ?? null, e.bytesHeld ?? null, e.verification?.ok ?? null]),
      [
        ['a', true, null, null, null],
        ['b', true, null, null, true],
        ['c', true, null, null, null],
        ['z-failed', false, 'failed', 12345, null],
        ['y-running', false, 'running', 10, null],
      ],
    );
    assert.equal(catalog[2]?.bytesReused, 1000);
    assert.match(catalog[3]?.incomplete ?? '', /^an unfinished backup: no manifest, and its hotbackup-incomplete.json says it failed \(backup /);
    assert.match(catalog[4]?.incomplete ?? '', /^a backup still being written \(by pid \d+ on /);
  });

  it('plans purge with the store: a base goes when the kept incremental holds its own copy, and stays when it lacks it', async () => {
    const catalog = await readCatalogFrom(source(fakes));
    const store = (holds: boolean): PurgeStore => ({
      holds: async () => holds,
      reusedCopies: 'server-side copies',
      remove: async () => assert.fail('planning deletes nothing'),
    });
    const actions = (plan: Awaited<ReturnType<typeof planPurge>>) => plan.map((item) => [item.entry.name, item.action]);
    const held = await planPurge(catalog, { keep: 1, removeIncomplete: true, store: store(true) });
    assert.deepEqual(actions(held), [['a', 'remove'], ['b', 'remove'], ['c', 'keep'], ['z-failed', 'remove'], ['y-running', 'leave']]);
    assert.match(held.find((item) => item.entry.name === 'b')?.reason ?? '', /the base of c, which holds its own copies \(server-side copies\) of the 1 files it took from it$/);
    const lacking = await planPurge(catalog, { keep: 1, store: store(false) });
    assert.deepEqual(actions(lacking), [['a', 'remove'], ['b', 'keep'], ['c', 'keep'], ['z-failed', 'leave'], ['y-running', 'leave']]);
    assert.match(lacking.find((item) => item.entry.name === 'b')?.reason ?? '', /^needed by c: it lists collection-0.wt as taken from here, and its own copy is missing$/);
  });

  it('purge --keep counts the backups of each machine apart: sidecars reaching 127.0.0.1:27017 with one dbpath, told apart by their hostname; manifests without one share a key as before', async () => {
    const on = (host: string | undefined, finishedAt: string): Manifest => {
      const m = manifest(finishedAt);
      return host === undefined ? m : { ...m, source: { ...m.source, hostname: host } };
    };
    const catalog = await readCatalogFrom(
      source({
        'a-1': { manifest: on('db-a', '2026-11-21T02:00:00.000Z') },
        'b-1': { manifest: on('db-b', '2026-11-21T02:05:00.000Z') },
        'a-2': { manifest: on('db-a', '2026-11-22T02:00:00.000Z') },
        'b-2': { manifest: on('db-b', '2026-11-22T02:05:00.000Z') },
        'old-1': { manifest: on(undefined, '2026-11-01T02:00:00.000Z') },
        'old-2': { manifest: on(undefined, '2026-11-02T02:00:00.000Z') },
      }),
    );
    const store: PurgeStore = { holds: async () => true, reusedCopies: 'server-side copies', remove: async () => assert.fail('planning deletes nothing') };
    const plan = await planPurge(catalog, { keep: 1, store });
    assert.deepEqual(
      plan.filter((item) => item.action === 'keep').map((item) => item.entry.name),
      ['old-2', 'a-2', 'b-2'],
    );
    assert.match(catalogTable(catalog), /^b-2 .* db-b 127\.0\.0\.1:27017:\/var\/lib\/mongodb$/m);
    assert.match(catalogTable(catalog), /^old-1 .*  127\.0\.0\.1:27017:\/var\/lib\/mongodb$/m);
    assert.match(plan.find((item) => item.entry.name === 'a-1')?.reason ?? '', /of the backups of \/var\/lib\/mongodb \(mongod at 127\.0\.0\.1:27017 from db-a\)$/);
  });

  it('backups without a hostname join the one machine of their dbpath and mongod (purge keeps N in all, not N more); a source far behind the newest is named', async () => {
    const on = (host: string | undefined, finishedAt: string): Manifest => {
      const m = manifest(finishedAt);
      return host === undefined ? m : { ...m, source: { ...m.source, hostname: host } };
    };
    const gone = (finishedAt: string): Manifest => ({ ...manifest(finishedAt), source: { dbpath: '/var/lib/mongodb', host: '127.0.0.1:27017', serverVersion: '7.0.14', hostname: 'f3a9c2d1e0b4' } });
    const catalog = await readCatalogFrom(
      source({
        'old-1': { manifest: on(undefined, '2026-11-01T02:00:00.000Z') },
        'old-2': { manifest: on(undefined, '2026-11-02T02:00:00.000Z') },
        'a-1': { manifest: on('db-a', '2026-11-21T02:00:00.000Z') },
        'a-2': { manifest: on('db-a', '2026-11-22T02:00:00.000Z') },
      }),
    );
    const store: PurgeStore = { holds: async () => true, reusedCopies: 'server-side copies', remove: async () => assert.fail('planning deletes nothing') };
    const plan = await planPurge(catalog, { keep: 1, store });
    assert.deepEqual(plan.filter((item) => item.action === 'keep').map((item) => item.entry.name), ['a-2']);
    assert.deepEqual(sourceGroups(catalog).map((group) => group.entries.map((entry) => entry.name)), [['old-1', 'old-2', 'a-1', 'a-2']]);
    assert.deepEqual(abandonedSourceWarnings(catalog), []);
    const withGone = await readCatalogFrom(
      source({
        'c-1': { manifest: gone('2026-11-10T02:00:00.000Z') },
        'a-2': { manifest: on('db-a', '2026-11-22T02:00:00.000Z') },
        'a-3': { manifest: on('db-a', '2026-11-23T02:00:00.000Z') },
      }),
    );
    const warnings = abandonedSourceWarnings(withGone);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] ?? '', /^the newest backup of \/var\/lib\/mongodb \(mongod at 127\.0\.0\.1:27017 from f3a9c2d1e0b4\) is 13 days older than the newest under this root/);
  });

  it('a source that cannot be read fails the catalog', async () => {
    const failing: CatalogSource = { root: 's3://bucket/root', children: () => Promise.reject(new Error('NoSuchBucket')) };
    await assert.rejects(readCatalogFrom(failing), /NoSuchBucket/);
  });
});
