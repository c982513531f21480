/**
 * A backup on S3 for the tests of what reads one (verify, restore), made without the
 * S3 uploader: a real backup taken through the proxy into a directory, then put object
 * by object with the SDK at `<prefix>/<relativePath>` (the layout docs/s3.md gives: the
 * manifest last; s3_backups.ts's putBackup). Also: the data it holds, as counts and a checksum of every document,
 * to compare with what the dev server serves from a restore.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { MongoClient } from 'mongodb';
import { serialize } from 'bson';
import { xxh3Hex } from './checksum.js';
import { startDevServer } from './dev_server.js';
import { putBackup, putObject } from './s3_backups.js';

/** Per collection (`db.collection`): how many documents, and XXH3 of their BSON in _id order. */
export type Digest = Record<string, { count: number; checksum: string }>;

export async function digestOf(uri: string): Promise<Digest> {
  const client = await MongoClient.connect(uri);
  try {
    const digest: Digest = {};
    for (const db of ['app', 'shop']) {
      for (const { name } of await client.db(db).listCollections().toArray()) {
        const docs = await client.db(db).collection(name).find({}).sort({ _id: 1 }).toArray();
        digest[`${db}.${name}`] = { count: docs.length, checksum: xxh3Hex(Buffer.concat(docs.map((doc) => serialize(doc)))) };
      }
    }
    return digest;
  } finally {
    await client.close();
  }
}

/** Opens `dbpath` with the dev server, returns its digest, and stops the server. */
export async function openAndDigest(dbpath: string): Promise<Digest> {
  const server = await startDevServer({ dbpath });
  try {
    return await digestOf(server.uri);
  } finally {
    await server.stop();
  }
}

/**
 * Through the proxy at `uri`: data in three collections of two databases (`megabytes` of
 * it in incompressible documents, so that the files have that size), then a backup into
 * `dir`. Resolves with the digest at backup time; writes made after it are in no backup.
 */
export async function takeBackup(uri: string, dir: string, megabytes: number): Promise<Digest> {
  const client = await MongoClient.connect(uri);
  try {
    const docs = client.db('app').collection('docs');
    const perDoc = 16 * 1024;
    const count = Math.ceil((megabytes * 1024 * 1024) / perDoc);
    for (let i = 0; i < count; i += 100) {
      await docs.insertMany(Array.from({ length: Math.min(100, count - i) }, (_, j) => ({ i: i + j, pad: randomBytes(perDoc).toString('base64') })));
    }
    await client.db('app').collection('notes').insertMany(Array.from({ length: 120 }, (_, i) => ({ i, text: `note ${i}` })));
    await client.db('shop').collection('orders').insertMany(Array.from({ length: 45 }, (_, i) => ({ i, total: i * 3 })));
    const atBackup = await digestOf(uri);
    assert.deepEqual(await client.db('admin').command({ backupStart: dir }), { ok: 1 });
    await docs.insertOne({ after: true });
    return atBackup;
  } finally {
    await client.close();
  }
}

export { putBackup, putObject };

export async function getObject(client: S3Client, bucket: string, key: string): Promise<Buffer> {
  const reply = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await (reply.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
}

export async function deleteObject(client: S3Client, bucket: string, key: string): Promise<void> {
  await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
}

/** The keys under `prefix/`, sorted. */
export async function keysBelow(client: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const reply = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/` }));
  return (reply.Contents ?? []).map((object) => object.Key as string).sort();
}

/** The object `key` re-put with its middle byte flipped. */
export async function corruptObject(client: S3Client, bucket: string, key: string): Promise<void> {
  const bytes = await getObject(client, bucket, key);
  const at = Math.floor(bytes.length / 2);
  bytes[at] = (bytes[at] as number) ^ 0xff;
  await putObject(client, bucket, key, bytes);
}

/** The modes (permission bits) of every file and every directory under `dir`, `dir` included. */
export function modesUnder(dir: string): { files: Map<string, number>; dirs: Map<string, number> } {
  const files = new Map<string, number>();
  const dirs = new Map<string, number>([['.', fs.statSync(dir).mode & 0o777]]);
  const walk = (relative: string): void => {
    for (const entry of fs.readdirSync(path.join(dir, relative), { withFileTypes: true })) {
      const rel = relative === '' ? entry.name : `${relative}/${entry.name}`;
      const mode = fs.lstatSync(path.join(dir, rel)).mode & 0o777;
      if (entry.isDirectory()) {
        dirs.set(rel, mode);
        walk(rel);
      } else files.set(rel, mode);
    }
  };
  walk('');
  return { files, dirs };
}
