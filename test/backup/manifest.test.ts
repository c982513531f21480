import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  type Manifest,
  MANIFEST_FILENAME,
  ManifestError,
  type ManifestErrorCode,
  manifestFiles,
  readManifest,
  writeManifest,
} from '../../src/backup/manifest.js';
import { tempDir } from '../helpers/paths.js';

const HASH_A = 'a'.repeat(16);
const HASH_B = '0123456789abcdef';

function sample(): Manifest {
  return {
    format: 'mongo-hotbackup-proxy',
    version: 2,
    backupId: randomUUID(),
    strategy: 'backupCursor',
    source: { dbpath: '/var/lib/mongodb', host: '127.0.0.1:27017', serverVersion: '7.0.14' },
    startedAt: '2025-01-02T03:04:05.000Z',
    finishedAt: '2025-01-02T03:04:07.500Z',
    durationMs: 2500,
    throttleBytesPerSec: 16 * 1024 * 1024,
    ...manifestFiles([
      { relativePath: 'WiredTiger.wt', size: 4096, checksum: HASH_A },
      { relativePath: 'journal/WiredTigerLog.0000000001', size: 1000, checksum: HASH_B },
    ]),
  };
}

describe('manifest', () => {
  let root: { dir: string; remove: () => void };
  let n = 0;
  const fresh = (): string => {
    const dir = path.join(root.dir, `b${n++}`);
    fs.mkdirSync(dir);
    return dir;
  };
  before(() => {
    root = tempDir('manifest');
  });
  after(() => root.remove());

  async function expectManifestError(dir: string, code: ManifestErrorCode, pattern: RegExp): Promise<void> {
    await assert.rejects(readManifest(dir), (err) => {
      assert.ok(err instanceof ManifestError, String(err));
      assert.equal(err.code, code);
      assert.equal(err.file, path.join(dir, MANIFEST_FILENAME));
      assert.match(err.message, pattern);
      return true;
    });
  }

  /** Writes a valid manifest into a fresh dir, then lets `tamper` edit its JSON text. */
  async function tampered(tamper: (json: Record<string, unknown>) => unknown): Promise<string> {
    const dir = fresh();
    await writeManifest(dir, sample());
    const file = path.join(dir, MANIFEST_FILENAME);
    const json = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
    fs.writeFileSync(file, JSON.stringify(tamper(json) ?? json));
    return dir;
  }

  it('records the link a file came through, and still reads manifests without links', async () => {
    const link = { path: 'journal', target: '/mnt/journal-disk/journal' };
    const manifest: Manifest = {
      ...sample(),
      ...manifestFiles(
        [
          { relativePath: 'WiredTiger.wt', size: 4096, checksum: HASH_A },
          { relativePath: 'journal/WiredTigerLog.0000000001', size: 1000, checksum: HASH_B },
        ],
        [
          { path: '/var/lib/mongodb/WiredTiger.wt', relativePath: 'WiredTiger.wt', size: 4096 },
          { path: '/var/lib/mongodb/journal/WiredTigerLog.0000000001', relativePath: 'journal/WiredTigerLog.0000000001', size: 1000, link },
        ],
      ),
    };
    assert.deepEqual(manifest.files[1], { path: 'journal/WiredTigerLog.0000000001', size: 1000, checksum: HASH_B, link });
    assert.equal('link' in (manifest.files[0] ?? {}), false);
    const dir = fresh();
    await writeManifest(dir, manifest);
    assert.deepEqual(await readManifest(dir), manifest);

    const relative = await tampered((json) => {
      (json['files'] as Array<Record<string, unknown>>)[0] = { path: 'WiredTiger.wt', size: 4096, checksum: HASH_A, link: { path: 'x', target: 'not/absolute' } };
    });
    await expectManifestError(relative, 'INVALID', /files\.0\.link\.target: must be absolute/);
  });

  it('round-trips, as readable JSON, with no temp file left', async () => {
    const dir = fresh();
    const manifest = sample();
    assert.deepEqual(manifest.totals, { files: 2, bytes: 5096 });
    assert.deepEqual(manifest.checksum, { algorithm: 'xxh3-64' });
    await writeManifest(dir, manifest);
    assert.deepEqual(await readManifest(dir), manifest);
    assert.deepEqual(fs.readdirSync(dir), [MANIFEST_FILENAME]);
    assert.match(fs.readFileSync(path.join(dir, MANIFEST_FILENAME), 'utf8'), /^\{\n {2}"format": "mongo-hotbackup-proxy",\n/);
  });

  it('says MISSING when there is none', async () => {
    await expectManifestError(fresh(), 'MISSING', /has no hotbackup-manifest\.json: the backup is incomplete/);
  });

  it('says INVALID for broken JSON, wrong totals and bad fields, naming them', async () => {
    const broken = fresh();
    fs.writeFileSync(path.join(broken, MANIFEST_FILENAME), '{"format": "mongo-hotbackup-proxy", ');
    await expectManifestError(broken, 'INVALID', /is not valid JSON/);

    await expectManifestError(
      await tampered((m) => {
        (m['totals'] as { bytes: number }).bytes = 5097;
      }),
      'INVALID',
      /totals\.bytes: is 5097 but the listed sizes add up to 5096/,
    );
    await expectManifestError(
      await tampered((m) => {
        (m['files'] as unknown[]).pop();
      }),
      'INVALID',
      /totals\.files: is 2 but 1 files are listed/,
    );
    await expectManifestError(
      await tampered((m) => {
        (m['files'] as Array<{ checksum: string }>)[1]!.checksum = 'XYZ';
      }),
      'INVALID',
      /files\.1\.checksum: must be 16 lowercase hex digits/,
    );
    await expectManifestError(
      await tampered((m) => {
        (m['files'] as Array<{ checksum: string }>)[0]!.checksum = 'A'.repeat(16);
      }),
      'INVALID',
      /files\.0\.checksum: must be 16 lowercase hex digits/,
    );
    await expectManifestError(await tampered((m) => ({ ...m, checksum: { algorithm: 'sha256' } })), 'INVALID', /checksum\.algorithm:/);
    await expectManifestError(
      await tampered((m) => {
        delete m['checksum'];
      }),
      'INVALID',
      /checksum:/,
    );
    await expectManifestError(
      await tampered((m) => {
        (m['files'] as Array<{ path: string }>)[0]!.path = '../../etc/passwd';
      }),
      'INVALID',
      /files\.0\.path: must be a relative path/,
    );
    await expectManifestError(await tampered((m) => ({ ...m, strategy: 'rsync' })), 'INVALID', /strategy:/);
    await expectManifestError(await tampered((m) => ({ ...m, backupId: 'not-a-uuid' })), 'INVALID', /backupId:/);
    await expectManifestError(await tampered(() => [1, 2, 3]), 'INVALID', /\(root\)/);
    await expectManifestError(await tampered((m) => ({ ...m, format: 'something-else' })), 'INVALID', /format:/);
  });

  it('says UNSUPPORTED_VERSION for a manifest from another version', async () => {
    // Version 1, as earlier builds wrote it: a sha256 per file and no checksum algorithm.
    const versionOne = await tampered((m) => {
      const files = (m['files'] as Array<Record<string, unknown>>).map(({ checksum: _, ...f }) => ({ ...f, sha256: 'a'.repeat(64) }));
      const { checksum: _, ...rest } = m;
      return { ...rest, version: 1, files };
    });
    await expectManifestError(versionOne, 'UNSUPPORTED_VERSION', /manifest version 1; this build reads version 2/);
    await expectManifestError(await tampered((m) => ({ ...m, version: 3 })), 'UNSUPPORTED_VERSION', /manifest version 3; this build reads version 2/);
  });

  it('refuses to write an invalid manifest', async () => {
    const dir = fresh();
    const bad = { ...sample(), totals: { files: 3, bytes: 5096 } };
    await assert.rejects(writeManifest(dir, bad), (err) => err instanceof ManifestError && err.code === 'INVALID' && /totals\.files/.test(err.message));
    assert.deepEqual(fs.readdirSync(dir), []);
  });
});
