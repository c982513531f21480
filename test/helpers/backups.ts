/**
 * Checks on a finished backup directory that the incremental and catalog tests share:
 * every file as its manifest says (size and XXH3-64, computed here independently of the
 * product), and the data as the dev server serves it from a copy of the backup.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { readManifest, type Manifest } from '../../src/backup/manifest.js';
import { xxh3Hex } from './checksum.js';
import { startDevServer } from './dev_server.js';

/** Reads `dir`'s manifest and checks every file it lists against the bytes there. */
export async function assertMatchesManifest(dir: string): Promise<Manifest> {
  const manifest = await readManifest(dir);
  for (const file of manifest.files) {
    const bytes = fs.readFileSync(path.join(dir, file.path));
    assert.equal(bytes.length, file.size, file.path);
    assert.equal(xxh3Hex(bytes), file.checksum, file.path);
  }
  return manifest;
}

/**
 * Document counts of `collections` (in db `app`) as the dev server serves them from a
 * copy of `backupDir` made in `scratchDir`: never the backup itself, whose reused files
 * are shared with other backups (a restore copies too). `cp -a`, then write permission
 * for the owner, as a restore gives its files.
 */
export async function countsOfCopy(backupDir: string, scratchDir: string, collections: readonly string[]): Promise<Record<string, number>> {
  const copy = path.join(scratchDir, `opened-${path.basename(backupDir)}-${Date.now()}`);
  execFileSync('cp', ['-a', backupDir, copy]);
  execFileSync('chmod', ['-R', 'u+w', copy]);
  const server = await startDevServer({ dbpath: copy });
  const client = new MongoClient(server.uri);
  try {
    const counts: Record<string, number> = {};
    for (const name of collections) counts[name] = await client.db('app').collection(name).countDocuments();
    return counts;
  } finally {
    await client.close();
    await server.stop();
    fs.rmSync(copy, { recursive: true, force: true });
  }
}

/** The collection-*.wt files in `dbpath` now. */
export function collectionFiles(dbpath: string): string[] {
  return fs.readdirSync(dbpath).filter((name) => /^collection-.*\.wt$/.test(name));
}
