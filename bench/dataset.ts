/**
 * A realistic dbpath of a requested size, built through the driver against the dev
 * server, for the backup benchmarks:
 *
 *   small   many small collections (16 KiB to 2 MiB of 1 KiB documents each), each one
 *           a `collection-*.wt` and an `_id` index `index-*.wt`: the many small files a
 *           real mongod with many collections and indexes has; about 10% of the bytes
 *   large   4 large collections of 64 KiB documents: the few large files; the rest of
 *           the bytes (64 KiB rather than a more typical few KiB because the dev server
 *           inserts bytes faster in larger documents: about 130 MB/s against 90 MB/s
 *           for 16 KiB ones on our 2-core VM; a file copy sees only the files' sizes)
 *   journal whatever WiredTiger's log keeps (the current 100 MB log file, preallocated
 *           ones), after a checkpoint has let it archive the rest
 *
 * Document bodies are BSON binary cut from a pool of random bytes, so neither WiredTiger
 * nor anything downstream can compress them: the sizes are real. (The dev server's
 * tables have no block compressor; a real mongod's snappy would not shrink them either.)
 *
 * Fast: insertMany batches of about 8 MB, several collections at once, straight to the
 * dev server (the dataset is not what is measured), a checkpoint every 512 MB so the
 * log files of earlier inserts are archived rather than piling up on disk.
 *
 * Growable: the plan for a size is deterministic, and a marker document records what has
 * been inserted, so growDataset(client, 4 GB) after growDataset(client, 1 GB) adds 3 GB
 * (new small collections, and more documents in the large ones) without rebuilding.
 *
 * Run alone, to see how long a size takes:  node dist/bench/dataset.js [--gb 1] [--parallel 4]
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Binary, MongoClient, type Db, type Document } from 'mongodb';
import { MB, fmt, onCleanup, printHeader, runBench } from './common.js';
import { startDevServer } from '../test/helpers/dev_server.js';

const DATASET_DB = 'dataset';
const MARKER = '_dataset';
const SMALL_DOC = 1024;
const LARGE_DOC = 64 * 1024;
const LARGE_COLLECTIONS = 4;
/** The share of the bytes in small collections. */
const SMALL_SHARE = 0.1;
/** Bytes per insertMany: big enough that per-command costs vanish, far below the 48 MB message limit. */
const BATCH_BYTES = 8 * 1024 * 1024;
const CHECKPOINT_EVERY = 512 * MB;
/** Fields other than the body (_id, a date, a short string, a counter) and BSON overhead. */
const DOC_OVERHEAD = 80;

/** What one collection should hold: its name and how many documents of which size. */
interface PlannedCollection {
  name: string;
  docBytes: number;
  docs: number;
}

interface Marker {
  _id: string;
  /** Documents inserted so far, per collection. */
  docs: Record<string, number>;
  bytes: number;
}

export interface DatasetReport {
  /** Bytes of documents this call inserted, and how long it took (seconds, with the final checkpoint). */
  insertedBytes: number;
  seconds: number;
  /** Bytes of documents in the dataset now. */
  documentBytes: number;
  collections: number;
  /** The dbpath as it is on disk now: every regular file's size, by kind. */
  disk: DbpathTally;
}

export interface DbpathTally {
  files: number;
  bytes: number;
  /** collection-*.wt and index-*.wt */
  tables: { files: number; bytes: number };
  /** journal/* */
  journal: { files: number; bytes: number };
}

/** Sizes of small collection `i`: log-uniform between 16 KiB and 2 MiB, the same every run. */
function smallCollectionBytes(i: number): number {
  // A fixed hash of i (Knuth's multiplicative), so growing keeps every earlier size.
  const u = ((Math.imul(i + 1, 2654435761) >>> 0) % 10_000) / 10_000;
  return Math.round(16 * 1024 * Math.pow(128, u));
}

/** The whole plan for `targetBytes` of documents. A bigger target keeps every collection of a smaller one. */
function plan(targetBytes: number): PlannedCollection[] {
  const small: PlannedCollection[] = [];
  let smallBytes = 0;
  for (let i = 0; smallBytes < targetBytes * SMALL_SHARE; i++) {
    const bytes = smallCollectionBytes(i);
    small.push({ name: `small_${String(i).padStart(4, '0')}`, docBytes: SMALL_DOC, docs: Math.max(1, Math.round(bytes / SMALL_DOC)) });
    smallBytes += bytes;
  }
  const perLarge = Math.max(0, targetBytes - smallBytes) / LARGE_COLLECTIONS;
  const large = Array.from({ length: LARGE_COLLECTIONS }, (_, i) => ({
    name: `large_${i}`,
    docBytes: LARGE_DOC,
    docs: Math.round(perLarge / LARGE_DOC),
  }));
  return [...large, ...small];
}

/** 32 MiB of random bytes; document bodies are slices of it at random offsets. */
let pool: Buffer | undefined;
function body(bytes: number): Binary {
  pool ??= randomBytes(32 * 1024 * 1024);
  const offset = Math.floor(Math.random() * (pool.length - bytes));
  return new Binary(pool.subarray(offset, offset + bytes));
}

function makeDocs(docBytes: number, from: number, to: number): Document[] {
  const docs: Document[] = [];
  const now = new Date();
  for (let id = from; id < to; id++) {
    docs.push({ _id: id, at: now, kind: id % 7 === 0 ? 'archived' : 'active', n: id, body: body(docBytes - DOC_OVERHEAD) });
  }
  return docs;
}

/** A checkpoint WiredTiger cannot skip, so it archives the log files of what came before. */
async function checkpoint(db: Db): Promise<void> {
  await db.collection<Marker>(MARKER).updateOne({ _id: 'checkpoint' }, { $inc: { bytes: 1 } }, { upsert: true });
  await db.admin().command({ fsync: 1 });
}

/**
 * A checkpoint, then a wait (up to 5 s) until WiredTiger has archived every log file but
 * the current one, which it does in the background shortly after. Every backup or copy
 * that follows then lists the same files: the tables and one 100 MB log file.
 */
export async function settle(client: MongoClient, dbpath: string): Promise<void> {
  await checkpoint(client.db(DATASET_DB));
  const journal = path.join(dbpath, 'journal');
  const deadline = performance.now() + 5_000;
  while (fs.readdirSync(journal).filter((n) => n.startsWith('WiredTigerLog.')).length > 1 && performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Grows the dataset in `client`'s server to `targetBytes` of documents (never shrinks
 * it), `parallel` insertMany streams at once, then settles (a checkpoint, old log files
 * archived). `client` should talk to the dev server directly and allow `parallel`
 * connections.
 */
export async function growDataset(
  client: MongoClient,
  dbpath: string,
  targetBytes: number,
  options: { parallel?: number } = {},
): Promise<DatasetReport> {
  const started = performance.now();
  const db = client.db(DATASET_DB);
  const markers = db.collection<Marker>(MARKER);
  const marker = (await markers.findOne({ _id: 'dataset' })) ?? { _id: 'dataset', docs: {}, bytes: 0 };
  const wanted = plan(targetBytes);

  // One task per batch; the queue interleaves collections so parallel streams hit different tables.
  const tasks: Array<{ name: string; docBytes: number; from: number; to: number; k: number }> = [];
  for (const c of wanted) {
    const perBatch = Math.max(1, Math.floor(BATCH_BYTES / c.docBytes));
    for (let from = marker.docs[c.name] ?? 0, k = 0; from < c.docs; from += perBatch, k++) {
      tasks.push({ name: c.name, docBytes: c.docBytes, from, to: Math.min(c.docs, from + perBatch), k });
    }
  }
  tasks.sort((a, b) => a.k - b.k);

  let inserted = 0;
  let sinceCheckpoint = 0;
  let checkpointing: Promise<void> | undefined;
  const worker = async (): Promise<void> => {
    for (let task = tasks.shift(); task !== undefined; task = tasks.shift()) {
      await db.collection(task.name).insertMany(makeDocs(task.docBytes, task.from, task.to), { ordered: true });
      const bytes = (task.to - task.from) * task.docBytes;
      inserted += bytes;
      sinceCheckpoint += bytes;
      marker.docs[task.name] = Math.max(marker.docs[task.name] ?? 0, task.to);
      if (sinceCheckpoint >= CHECKPOINT_EVERY && checkpointing === undefined) {
        sinceCheckpoint = 0;
        checkpointing = checkpoint(db).finally(() => (checkpointing = undefined));
        await checkpointing;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.parallel ?? 4) }, worker));
  marker.bytes += inserted;
  await markers.replaceOne({ _id: 'dataset' }, marker, { upsert: true });
  await settle(client, dbpath);

  const documentBytes = wanted.reduce((sum, c) => sum + Math.min(c.docs, marker.docs[c.name] ?? 0) * c.docBytes, 0);
  return {
    insertedBytes: inserted,
    seconds: (performance.now() - started) / 1000,
    documentBytes,
    collections: wanted.length,
    disk: tallyDbpath(dbpath),
  };
}

/** Every regular file under the dbpath, by kind. */
function tallyDbpath(dbpath: string): DbpathTally {
  const tally: DbpathTally = { files: 0, bytes: 0, tables: { files: 0, bytes: 0 }, journal: { files: 0, bytes: 0 } };
  for (const entry of fs.readdirSync(dbpath, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const full = path.join(entry.parentPath, entry.name);
    const { size } = fs.statSync(full);
    tally.files++;
    tally.bytes += size;
    const relative = path.relative(dbpath, full);
    if (relative.startsWith(`journal${path.sep}`)) {
      tally.journal.files++;
      tally.journal.bytes += size;
    } else if (/^(collection|index)-.*\.wt$/.test(entry.name)) {
      tally.tables.files++;
      tally.tables.bytes += size;
    }
  }
  return tally;
}

/** One line: what was inserted, how long it took, and what the dbpath holds. */
export function describeDataset(report: DatasetReport): string {
  const { disk } = report;
  return (
    `dataset: inserted ${fmt(report.insertedBytes / MB)} MB in ${fmt(report.seconds)} s ` +
    `(${fmt(report.insertedBytes / MB / report.seconds)} MB/s, final checkpoint included); now ${fmt(report.documentBytes / MB)} MB of documents ` +
    `in ${report.collections} collections; dbpath ${disk.files} files, ${fmt(disk.bytes / MB)} MB: ` +
    `${disk.tables.files} collection/index files ${fmt(disk.tables.bytes / MB)} MB, ` +
    `journal ${disk.journal.files} files ${fmt(disk.journal.bytes / MB)} MB`
  );
}

// ---------------------------------------------------------------- run alone

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { gb: { type: 'string', default: '1' }, parallel: { type: 'string', default: '4' } },
    strict: true,
  });
  await runBench('bench/dataset', 600_000, async () => {
    printHeader('bench/dataset: build a realistic dbpath through the driver');
    const server = await startDevServer({ args: ['--checkpoint-interval', '0'] });
    onCleanup('dev server', async () => {
      await server.stop();
      server.cleanup();
    });
    const parallel = Number(values.parallel);
    const client = new MongoClient(server.uri, { maxPoolSize: parallel + 2 });
    onCleanup('driver client', () => client.close(true));
    console.log(describeDataset(await growDataset(client, server.dbpath, Number(values.gb) * 1e9, { parallel })));
  });
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
