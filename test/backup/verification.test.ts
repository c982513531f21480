/**
 * A verify's record (hotbackup-verified.json) as `hotbackup list` reads it, on small
 * backups made here: none before a verify; the verdict after one, good or damaged; a
 * record that names another manifest or another directory counts for nothing; a
 * manifest that cannot be trusted removes it; verify never takes it (or a temp file of
 * it) for a file of the backup.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { readCatalog } from '../../src/backup/backup_catalog.js';
import { manifestFiles, writeManifest, MANIFEST_FILENAME } from '../../src/backup/manifest.js';
import { TokenBucket } from '../../src/backup/throttle.js';
import { verifyAndRecord } from '../../src/backup/verification.js';
import { readVerificationRecord, VERIFICATION_FILENAME } from '../../src/backup/verification_record.js';
import { xxh3Hex } from '../helpers/checksum.js';
import { tempDir } from '../helpers/paths.js';

/** A complete backup of three small files in `dir`, with a manifest whose checksums are right. */
async function makeBackup(dir: string): Promise<string> {
  const contents: Record<string, string> = { WiredTiger: 'WiredTiger\n', 'collection-1-42.wt': 'c'.repeat(5000), 'journal/WiredTigerLog.0000000001': 'j'.repeat(3000) };
  for (const [name, text] of Object.entries(contents)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  const backupId = randomUUID();
  await writeManifest(dir, {
    format: 'mongo-hotbackup-proxy',
    version: 2,
    backupId,
    strategy: 'backupCursor',
    source: { dbpath: '/var/lib/mongodb', host: '127.0.0.1:27017', serverVersion: '8.0.4' },
    startedAt: '2026-11-21T02:00:00.000Z',
    finishedAt: '2026-11-21T02:00:01.000Z',
    durationMs: 1000,
    throttleBytesPerSec: 0,
    ...manifestFiles(Object.entries(contents).map(([relativePath, text]) => ({ relativePath, size: text.length, checksum: xxh3Hex(text) }))),
  });
  return backupId;
}

const verify = (dir: string) => verifyAndRecord(dir, { limiter: new TokenBucket(0), concurrency: 2 }, 'hotbackup verify');

async function listed(root: string, name: string) {
  const entry = (await readCatalog(root)).find((e) => e.name === name);
  assert.ok(entry !== undefined, `${name} is listed`);
  return entry.verification;
}

describe('the verification record', () => {
  let root: { dir: string; remove: () => void };
  before(() => {
    root = tempDir('verification');
  });
  after(() => root.remove());

  it('is shown after a good verify, not before; a later verify is not put off by it', async () => {
    const dir = path.join(root.dir, 'good');
    const backupId = await makeBackup(dir);
    assert.equal(await listed(root.dir, 'good'), undefined, 'never verified');

    const before = Date.now();
    const first = await verify(dir);
    assert.equal(first.state, 'complete');
    assert.deepEqual(first.notes, []);
    const shown = await listed(root.dir, 'good');
    assert.equal(shown?.ok, true);
    assert.ok(Date.parse(shown.verifiedAt) >= before - 1000, shown.verifiedAt);
    const read = await readVerificationRecord(dir);
    assert.ok(read.kind === 'present');
    assert.equal(read.record.backupId, backupId);
    assert.equal(read.record.by, 'hotbackup verify');
    assert.equal(read.record.directory, fs.realpathSync(dir));

    // The record, and a temp file a crash left of it, are not files of the backup.
    fs.writeFileSync(path.join(dir, `.${VERIFICATION_FILENAME}.0123456789ab.tmp`), '{');
    const second = await verify(dir);
    assert.equal(second.state, 'complete', JSON.stringify(second.problems));
    assert.deepEqual(second.problems, []);
  });

  it('says FAILED once the backup was damaged and verified again', async () => {
    const dir = path.join(root.dir, 'damaged');
    await makeBackup(dir);
    assert.equal((await verify(dir)).state, 'complete');
    assert.equal((await listed(root.dir, 'damaged'))?.ok, true);

    const fd = fs.openSync(path.join(dir, 'collection-1-42.wt'), 'r+');
    fs.writeSync(fd, 'x', 100);
    fs.closeSync(fd);
    const verdict = await verify(dir);
    assert.equal(verdict.state, 'damaged');
    assert.deepEqual(verdict.notes, []);
    assert.equal((await listed(root.dir, 'damaged'))?.ok, false, 'the damaged verdict replaced the good one');
  });

  it('counts for nothing in a copy of the backup, nor once another manifest is in its place', async () => {
    const dir = path.join(root.dir, 'original');
    await makeBackup(dir);
    await verify(dir);
    const copy = path.join(root.dir, 'copy');
    fs.cpSync(dir, copy, { recursive: true });
    assert.ok(fs.existsSync(path.join(copy, VERIFICATION_FILENAME)), 'the copy carries the record');
    assert.equal(await listed(root.dir, 'copy'), undefined, 'its bytes were never checked where they are now');

    // Another backup written into the directory (its manifest replaced): the record is about the old one.
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST_FILENAME), 'utf8')) as { backupId: string };
    fs.writeFileSync(path.join(dir, MANIFEST_FILENAME), JSON.stringify({ ...manifest, backupId: randomUUID() }));
    assert.equal(await listed(root.dir, 'original'), undefined);
    // The same backupId, a manifest edited since: the same.
    fs.writeFileSync(path.join(dir, MANIFEST_FILENAME), `${JSON.stringify(manifest)}\n\n`);
    assert.equal(await listed(root.dir, 'original'), undefined);
  });

  it('is removed by a verify that finds the manifest invalid, and left alone where there is no backup to speak for', async () => {
    const dir = path.join(root.dir, 'invalid');
    await makeBackup(dir);
    await verify(dir);
    fs.writeFileSync(path.join(dir, MANIFEST_FILENAME), '{"format": "mongo-hotbackup-proxy", "vers');
    const verdict = await verify(dir);
    assert.equal(verdict.state, 'damaged');
    assert.equal(fs.existsSync(path.join(dir, VERIFICATION_FILENAME)), false);

    // A dbpath (no manifest, no marker) that holds one: not ours to touch.
    const dbpath = path.join(root.dir, 'dbpath');
    fs.mkdirSync(dbpath);
    fs.writeFileSync(path.join(dbpath, 'WiredTiger'), 'WiredTiger\n');
    fs.writeFileSync(path.join(dbpath, VERIFICATION_FILENAME), '{}');
    assert.equal((await verify(dbpath)).state, 'notABackup');
    assert.equal(fs.readFileSync(path.join(dbpath, VERIFICATION_FILENAME), 'utf8'), '{}');
  });
});
