/**
 * Copy throughput: an unthrottled `backupStart` through the proxy against plain file
 * copies of the same files, in one run, and the ratios between them.
 *
 *   backupStart     the proxy's engine, strategy backupCursor: 4 workers, 1 MiB
 *                   positioned reads/writes, sha256 of every byte, fsync of every file
 *                   and directory, a manifest written last (timed at the client)
 *   cp -a + sync    `cp -a --parents <files> <dst> && sync -f <dst>` (durable, like ours)
 *   cp -a           the same without the sync (the data may still be in the page cache)
 *   fs.copyFile     a sequential fs.copyFile loop over the files, no fsync
 *
 * The baselines copy exactly the files a backup would: for each baseline run the
 * bench opens a `$backupCursor` on the dev server itself (untimed), copies the files
 * it lists with the method under test (timed), then closes it. That is also how an
 * operator would hot-copy with cp. Not the whole dbpath: WiredTiger's preallocated
 * WiredTigerPreplog.* files (100 MiB each) are never part of a backup. Before every
 * timed run a checkpoint (a one-document write and `fsync: 1`, untimed) lets WiredTiger archive old log files;
 * otherwise each backup cursor, which moves logging on to a new 100 MiB log file,
 * would make the next backup 100 MiB larger.
 *
 * The page cache is warm: nothing is dropped from it (the warm-up backup reads every
 * source file first), so reads come from memory and the figures measure the copy
 * path and the writes. Before every timed copy, `sync` flushes what earlier copies
 * left dirty, so no copy pays for another's writeback. Destinations are removed
 * between runs. Each method runs once per round, methods rotated each round (4 rounds:
 * each method runs once in each position); the median over rounds is reported.
 *
 *   node dist/bench/backup.js [--rounds 4] [--budget 140] [--data-mb 250]
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';
import { MongoClient, type Document } from 'mongodb';
import { startBenchStack } from './stack.js';
import { openBackupCursor, closeBackupCursor } from '../test/helpers/backup_cursor_spy.js';
import { MB, fmt, median, onCleanup, printHeader, ratio, runRounds, runBench, table } from './common.js';

const exec = promisify(execFile);
/** Hard stop: cleanup and exit 2. The round budget (--budget) normally ends the run well before. */
const TIME_LIMIT_MS = 175_000;
/** {_id: int32, data: 4076 chars} is 4 KiB of BSON. */
const DOC_BYTES = 4096;
const BATCH = 1000;

const { values: opts } = parseArgs({
  options: {
    rounds: { type: 'string', default: '4' },
    /** Rounds stop early (at least one runs) when the next would end past this many seconds. */
    budget: { type: 'string', default: '140' },
    'data-mb': { type: 'string', default: '250' },
  },
  strict: true,
});
const ROUNDS = Number(opts.rounds);
/** From process start (performance.now() counts from there). */
const BUDGET_MS = Number(opts.budget) * 1000;
const DATA_BATCHES = Math.max(1, Math.round((Number(opts['data-mb']) * MB) / (DOC_BYTES * BATCH)));

type Method = 'backupStart' | 'cp -a + sync' | 'cp -a' | 'fs.copyFile';
const METHODS: Method[] = ['backupStart', 'cp -a + sync', 'cp -a', 'fs.copyFile'];

interface ListedFile {
  /** Relative to the dbpath (and to the backup directory). */
  path: string;
  size: number;
}

interface Run {
  /** The copy alone for the baselines; the whole command, as the client waits for it, for backupStart. */
  ms: number;
  bytes: number;
  files: number;
  /** For backupStart: the engine's own duration (backupStatus.last.seconds). */
  serverMs?: number;
}

/** Total bytes and files of regular files under `dir`, leaving out `skip`. */
function tally(dir: string, skip: Set<string>): { bytes: number; files: number } {
  let bytes = 0;
  let files = 0;
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || skip.has(entry.name)) continue;
    bytes += fs.statSync(path.join(entry.parentPath, entry.name)).size;
    files++;
  }
  return { bytes, files };
}

async function loadData(client: MongoClient): Promise<void> {
  const collection = client.db('bench').collection('data');
  for (let b = 0; b < DATA_BATCHES; b++) {
    // Random content (base64 of random bytes), so no layer can compress it away.
    const blob = randomBytes((BATCH * 4076 * 3) / 4).toString('base64');
    const docs: Document[] = Array.from({ length: BATCH }, (_, i) => ({ _id: b * BATCH + i, data: blob.slice(i * 4076, (i + 1) * 4076) }));
    await collection.insertMany(docs);
  }
  await settle(client);
}

/**
 * A checkpoint that really happens (`fsync: 1` after a one-document write; WiredTiger
 * skips a checkpoint when nothing changed), so WiredTiger archives the log files the
 * last backup cursor left behind. Every backup then lists the same files: the data
 * and one preallocated 100 MiB log file.
 */
async function settle(direct: MongoClient): Promise<void> {
  await direct.db('bench').collection<{ _id: number; n?: number }>('marker').updateOne({ _id: 1 }, { $inc: { n: 1 } }, { upsert: true });
  await direct.db('admin').command({ fsync: 1 });
}

/**
 * Opens a `$backupCursor` on the dev server, lists its files (relative to the dbpath),
 * runs `fn` while it is open, and closes it whatever happens.
 */
async function withBackupCursor<T>(direct: MongoClient, dbpath: string, fn: (files: ListedFile[]) => Promise<T>): Promise<T> {
  const cursor = await openBackupCursor(direct);
  try {
    return await fn(cursor.files.map((f) => ({ path: path.relative(dbpath, f.filename), size: f.fileSize })));
  } finally {
    await closeBackupCursor(direct, cursor);
  }
}

async function copyFileLoop(dbpath: string, files: readonly ListedFile[], dest: string): Promise<void> {
  for (const file of files) {
    const target = path.join(dest, file.path);
    await fs.promises.mkdir(path.dirname(target), { recursive: true });
    await fs.promises.copyFile(path.join(dbpath, file.path), target);
  }
}

/** sha256 of the listed bytes, read from the page cache in 1 MiB chunks: the hashing cost alone. */
async function sha256Only(dbpath: string, files: readonly ListedFile[]): Promise<number> {
  const buffer = Buffer.allocUnsafe(1024 * 1024);
  let bytes = 0;
  for (const file of files) {
    const hash = createHash('sha256');
    const handle = await fs.promises.open(path.join(dbpath, file.path), 'r');
    try {
      for (let offset = 0; offset < file.size; ) {
        const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, file.size - offset), offset);
        if (bytesRead === 0) break;
        hash.update(buffer.subarray(0, bytesRead));
        offset += bytesRead;
        bytes += bytesRead;
      }
    } finally {
      await handle.close();
    }
    hash.digest();
  }
  return bytes;
}

async function main(): Promise<void> {
  printHeader('bench/backup: backupStart copy throughput vs cp -a and fs.copyFile', {
    data: `${DATA_BATCHES * BATCH} documents of ${DOC_BYTES} B (${fmt((DATA_BATCHES * BATCH * DOC_BYTES) / MB)} MB) via the driver, then fsync (checkpoint)`,
    rounds: `${ROUNDS}, methods rotated each round; page cache warm (nothing dropped); sync before every timed copy`,
    units: 'MB = 10^6 bytes',
  });

  const { workDir, server, client } = await startBenchStack('bench-backup');
  const admin = client.db('admin');
  const direct = new MongoClient(server.uri, { serverSelectionTimeoutMS: 10_000 });
  onCleanup('driver client (direct)', () => direct.close(true));
  await direct.connect();

  let start = performance.now();
  await loadData(direct);
  console.log(`load: ${fmt((performance.now() - start) / 1000)} s`);
  await admin.command({ backupThrottle: 0 });

  // Warm-up backup (untimed): reads every source file into the page cache and warms
  // the proxy's code.
  const warmDest = path.join(workDir, 'warmup');
  await settle(direct);
  start = performance.now();
  await admin.command({ backupStart: warmDest });
  console.log(`warm-up backupStart: ${fmt((performance.now() - start) / 1000)} s`);
  fs.rmSync(warmDest, { recursive: true, force: true });
  await settle(direct);
  const sample = await withBackupCursor(direct, server.dbpath, async (files) => files);
  const journal = sample.filter((f) => f.path.startsWith('journal/'));
  const big = sample.filter((f) => /^(collection|index)-.*\.wt$/.test(f.path));
  const sum = (list: readonly ListedFile[]) => list.reduce((total, f) => total + f.size, 0);
  console.log(
    `a backup cursor lists ${sample.length} files, ${fmt(sum(sample) / MB)} MB: ` +
      `collections+indexes ${fmt(sum(big) / MB)} MB, journal ${fmt(sum(journal) / MB)} MB ` +
      `(${journal.length} preallocated log file${journal.length === 1 ? '' : 's'}), other ${fmt((sum(sample) - sum(big) - sum(journal)) / MB)} MB`,
  );
  console.log('');

  const runs = new Map<Method, Run[]>(METHODS.map((m) => [m, []]));
  const skip = new Set(['hotbackup-manifest.json']);
  const hashRates: number[] = [];
  const rounds = await runRounds(METHODS, ROUNDS, BUDGET_MS, async (order, round) => {
    for (const method of order) {
      const dest = path.join(workDir, `r${round}-${method.replace(/[^\w]+/g, '_')}`);
      await settle(direct);
      await exec('sync', []);
      let serverMs: number | undefined;
      let ms: number;
      if (method === 'backupStart') {
        const t0 = performance.now();
        const reply = await admin.command({ backupStart: dest });
        ms = performance.now() - t0;
        if (reply['ok'] !== 1) throw new Error(`backupStart: ${JSON.stringify(reply)}`);
      } else {
        ms = await withBackupCursor(direct, server.dbpath, async (files) => {
          const names = files.map((f) => f.path);
          const t0 = performance.now();
          switch (method) {
            case 'cp -a + sync':
              fs.mkdirSync(dest);
              await exec('cp', ['-a', '--parents', ...names, dest], { cwd: server.dbpath });
              await exec('sync', ['-f', dest]);
              break;
            case 'cp -a':
              fs.mkdirSync(dest);
              await exec('cp', ['-a', '--parents', ...names, dest], { cwd: server.dbpath });
              break;
            case 'fs.copyFile':
              await copyFileLoop(server.dbpath, files, dest);
              break;
          }
          return performance.now() - t0;
        });
      }
      if (method === 'backupStart') {
        const status = await admin.command({ backupStatus: 1 });
        const last = status['last'] as { ok: boolean; seconds: number; strategy: string };
        if (!last.ok || last.strategy !== 'backupCursor') throw new Error(`backup outcome: ${JSON.stringify(last)}`);
        serverMs = last.seconds * 1000;
      }
      const { bytes, files: count } = tally(dest, skip);
      (runs.get(method) as Run[]).push({ ms, bytes, files: count, ...(serverMs === undefined ? {} : { serverMs }) });
      await fs.promises.rm(dest, { recursive: true, force: true });
    }
    // The hashing cost alone, once per round (reads from the page cache, no writes).
    await settle(direct);
    hashRates.push(
      await withBackupCursor(direct, server.dbpath, async (files) => {
        const h0 = performance.now();
        const hashed = await sha256Only(server.dbpath, files);
        return hashed / MB / ((performance.now() - h0) / 1000);
      }),
    );
  });
  console.log('');

  // ---------------------------------------------------------------- report
  // Metadata files differ by a few bytes from one checkpoint to the next; more than
  // 0.1% would mean the methods did not copy the same files.
  const all = [...runs.values()].flat();
  const [least, most] = [Math.min(...all.map((r) => r.bytes)), Math.max(...all.map((r) => r.bytes))];
  if (most - least > most / 1000) console.log(`note: the runs copied between ${least} and ${most} bytes`);
  const rate = (r: Run) => r.bytes / MB / (r.ms / 1000);
  const medRate = (m: Method) => median((runs.get(m) as Run[]).map(rate));
  const ours = medRate('backupStart');
  const rows = METHODS.map((m) => {
    const list = runs.get(m) as Run[];
    const first = list[0] as Run;
    return [
      m,
      `${first.files}`,
      fmt(first.bytes / MB),
      fmt(median(list.map((r) => r.ms / 1000))),
      fmt(medRate(m)),
      ratio(ours, medRate(m)),
    ];
  });
  console.log(`Medians over ${rounds} rounds (MB/s: higher is better; backupStart/x below 1.00 means backupStart is slower).`);
  console.log(table(['method', 'files', 'MB', 'seconds', 'MB/s', 'backupStart/x'], rows));
  const serverSecs = median((runs.get('backupStart') as Run[]).map((r) => (r.serverMs ?? Number.NaN) / 1000));
  console.log(`backupStart as the engine timed it (backupStatus.last.seconds, median): ${fmt(serverSecs)} s`);
  console.log(`sha256 alone over the same bytes, from the page cache, one thread (median): ${fmt(median(hashRates))} MB/s`);
  console.log('');
  console.log('Every round (MB/s, in round order):');
  console.log(table(['method', 'MB/s per round'], METHODS.map((m) => [m, (runs.get(m) as Run[]).map((r) => fmt(rate(r))).join(' / ')])));
}

await runBench('bench/backup', TIME_LIMIT_MS, main);
