/**
 * Backups put on S3 object by object, for the tests of what reads an S3 root (list,
 * purge): a real local backup copied as it lies (every file at `<prefix>/<relativePath>`,
 * the manifest last, as the engine writes one), and unfinished ones crafted from a
 * marker object and a few file objects. Independent of the product's uploader.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { CreateMultipartUploadCommand, PutObjectCommand, UploadPartCommand, paginateListObjectsV2, type S3Client } from '@aws-sdk/client-s3';
import { MANIFEST_FILENAME, MANIFEST_FORMAT, MANIFEST_VERSION, serializeManifest, type Manifest } from '../../src/backup/manifest.js';
import { CHECKSUM_ALGORITHM } from '../../src/backup/checksum.js';
import { xxh3Hex } from './checksum.js';
import { INCOMPLETE_MARKER_FILENAME, serializeMarker, type BackupMarker } from '../../src/backup/backup_marker.js';

async function put(client: S3Client, bucket: string, key: string, body: Buffer | string): Promise<void> {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes, ContentLength: bytes.length }));
}

/**
 * Copies the backup directory `dir` to `s3://bucket/<prefix>/`, its manifest last (`skip`
 * leaves files out, the manifest too: an incomplete backup). Returns the bytes put.
 */
export async function putBackup(client: S3Client, bucket: string, prefix: string, dir: string, skip: readonly string[] = []): Promise<number> {
  const files = (fs.readdirSync(dir, { recursive: true }) as string[]).filter(
    (name) => fs.lstatSync(path.join(dir, name)).isFile() && name !== MANIFEST_FILENAME && !skip.includes(name.split(path.sep).join('/')),
  );
  let bytes = 0;
  for (const name of files) {
    const body = fs.readFileSync(path.join(dir, name));
    bytes += body.length;
    await put(client, bucket, `${prefix}/${name.split(path.sep).join('/')}`, body);
  }
  if (!skip.includes(MANIFEST_FILENAME)) await put(client, bucket, `${prefix}/${MANIFEST_FILENAME}`, fs.readFileSync(path.join(dir, MANIFEST_FILENAME)));
  return bytes;
}

/** An unfinished backup at `s3://bucket/<prefix>/`: its marker, then `files` (relative path to content). Returns the bytes put. */
export async function putUnfinished(client: S3Client, bucket: string, prefix: string, marker: BackupMarker | undefined, files: Record<string, string>): Promise<number> {
  let bytes = 0;
  if (marker !== undefined) {
    const text = serializeMarker(marker);
    bytes += Buffer.byteLength(text);
    await put(client, bucket, `${prefix}/${INCOMPLETE_MARKER_FILENAME}`, text);
  }
  for (const [name, content] of Object.entries(files)) {
    bytes += Buffer.byteLength(content);
    await put(client, bucket, `${prefix}/${name}`, content);
  }
  return bytes;
}

/** Puts one object. */
export async function putObject(client: S3Client, bucket: string, key: string, body: Buffer | string): Promise<void> {
  await put(client, bucket, key, body);
}

/** Begins a multipart upload of `key` and uploads one part, as a backup cut short mid-file leaves one. */
export async function beginUpload(client: S3Client, bucket: string, key: string): Promise<string> {
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
  if (UploadId === undefined) throw new Error('CreateMultipartUpload returned no UploadId');
  await client.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: 1, Body: Buffer.alloc(1024, 1) }));
  return UploadId;
}

/** Every key in `bucket` under `prefix` (all when ''), with its size, sorted: what "nothing changed" compares. */
export async function keysUnder(client: S3Client, bucket: string, prefix = ''): Promise<string[]> {
  const keys: string[] = [];
  for await (const page of paginateListObjectsV2({ client }, { Bucket: bucket, Prefix: prefix })) {
    for (const item of page.Contents ?? []) keys.push(`${item.Key ?? ''} ${item.Size ?? 0} ${item.ETag ?? ''}`);
  }
  return keys.sort();
}

/** A valid manifest for `files` (no database behind it: verify, restore and purge only read, hash and count). */
export function craftedManifest(files: ReadonlyMap<string, Buffer>, options: { finishedAt?: Date; hostname?: string } = {}): Manifest {
  const finishedAt = options.finishedAt ?? new Date();
  const list = [...files].map(([p, body]) => ({ path: p, size: body.length, checksum: xxh3Hex(body) }));
  return {
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    checksum: { algorithm: CHECKSUM_ALGORITHM },
    backupId: randomUUID(),
    strategy: 'backupCursor',
    source: { dbpath: '/data/db', host: '127.0.0.1:27017', serverVersion: '7.0.0', ...(options.hostname === undefined ? {} : { hostname: options.hostname }) },
    startedAt: new Date(finishedAt.getTime() - 1000).toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationMs: 1000,
    throttleBytesPerSec: 0,
    files: list,
    totals: { files: list.length, bytes: list.reduce((sum, f) => sum + f.size, 0) },
  };
}

/** Puts `files` and a manifest listing them (last) at `s3://bucket/<prefix>`; returns the manifest. */
export async function putCrafted(client: S3Client, bucket: string, prefix: string, files: ReadonlyMap<string, Buffer>, options: { finishedAt?: Date; hostname?: string } = {}): Promise<Manifest> {
  const manifest = craftedManifest(files, options);
  const keyOf = (p: string) => (prefix === '' ? p : `${prefix}/${p}`);
  const entries = [...files];
  for (let i = 0; i < entries.length; i += 32) await Promise.all(entries.slice(i, i + 32).map(([p, body]) => put(client, bucket, keyOf(p), body)));
  await put(client, bucket, keyOf(MANIFEST_FILENAME), serializeManifest(manifest, 'crafted by a test'));
  return manifest;
}
