/**
 * Copy throughput of a realistic dbpath: an unthrottled `backupStart` through the proxy
 * against plain file copies of the same files, in one run, alone and again while a
 * foreground writer runs, and the ratios between them.
 *
 *   backupStart     the proxy's engine, strategy backupCursor, whatever copier it has;
 *                   timed at the client, so it includes opening and closing the backup
 *                   cursor, every fsync and the manifest
 *   cp -a + fsync   `cp -a --parents <files> <dst>`, then `sync <each copied file and
 *                   directory>` (coreutils' sync fsyncs each path it is given): the same
 *                   bytes, as durable as a backup's
 *   cp -a           the same without the fsyncs: the bytes may still be in the page cache
 *   dd direct       the disk's ceiling: the files of 4 MiB or more, two lanes of
 *                   `dd oflag=direct conv=fsync`; printed as ratios without a target
 *
 * Targets (issue 9): backupStart ÷ (cp -a + fsync) >= 1.2 and backupStart ÷ cp -a >= 0.8,
 * both alone and with the writer.
 *
 * The dataset (bench/dataset.ts): --gb gigabytes of documents in many small collections
 * (hundreds of small files), 4 large ones, and the journal. The baselines copy exactly
 * the files a backup copies: for each baseline run the bench opens a `$backupCursor` on
 * the dev server (untimed), copies the files it lists (timed), then closes it, as an
 * operator hot-copying with cp would. Before every timed run a checkpoint lets
 * WiredTiger archive old log files (each backup cursor moves logging on to a new
 * 100 MiB log file, which would otherwise make the next copy 100 MiB larger), and
 * `sync` flushes what earlier copies left dirty, so no copy pays for another's
 * writeback. Destinations are removed between runs. The page cache is warm: the dataset
 * was just written and a warm-up backup reads it all, so the figures measure the copy
 * path and the writes, not the source disk.
 *
 * The writer: sequential `insertOne`s of 256-byte documents through the proxy, one
 * connection, started before the first copy of the "with writer" half of a round and
 * stopped after its last. Its rate during each copy is reported against its rate alone
 * (measured for 1.5 s just before the copies). It runs for 4 s, unmeasured, before the
 * first round: its path runs at a fraction of its speed until V8 has optimised it.
 *
 * The bench also reports whether WiredTiger's log files are sparse (bench/sparse.ts):
 * the dev server's, and the copies backupStart and `cp -a` make of them.
 *
 * Each round runs every method alone, then every method with the writer, methods
 * rotated each round; medians over rounds are reported.
 *
 *   node dist/bench/backup.js [--gb 2] [--rounds 3] [--budget 150] [--json FILE] [--smoke]
 *
 * --smoke: 0.03 GB and one round (seconds), to check the bench runs, not what it measures.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';
import { MongoClient } from 'mongodb';
import { startBenchStack } from './stack.js';
import { openBackupCursor, closeBackupCursor } from '../test/helpers/backup_cursor_spy.js';
import { MB, fmt, median, onCleanup, printHeader, ratio, runRounds, runBench, sleep, table, writeBenchResult, type BenchMetric } from './common.js';
import { describeDataset, growDataset, settle } from './dataset.js';
import { startLoop, windowStats, type Loop } from './load.js';
import { allocationsIn, describeAllocations, totalAllocation } from './sparse.js';

const exec = promisify(execFile);
/** Hard stop: cleanup and exit 2. The round budget (--budget) normally ends the run well before. */
const TIME_LIMIT_MS = 175_000;

const { values: opts } = parseArgs({
  options: {
    gb: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '3' },
    /** Rounds stop early (at least one runs) when the next would end past this many seconds. */
    budget: { type: 'string', default: '150' },
    json: { type: 'string' },
    smoke: { type: 'boolean', default: false },
  },
  strict: true,
});
const SMOKE = opts.smoke === true;
const DATA_BYTES = (SMOKE ? 0.03 : Number(opts.gb)) * 1e9;
const ROUNDS = SMOKE ? 1 : Math.max(1, Number(opts.rounds));
/** From process start (performance.now() counts from there). */
const BUDGET_MS = Number(opts.budget) * 1000;
const WRITER_ALONE_MS = SMOKE ? 500 : 1500;
const WRITER_WARMUP_MS = SMOKE ? 1000 : 4000;

type Method = 'backupStart' | 'cp -a + fsync' | 'cp -a' | 'dd direct';
const METHODS: Method[] = ['backupStart', 'cp -a + fsync', 'cp -a', 'dd direct'];
/** Files at least this large are what `dd direct` copies: the disk's own streaming write rate. */
const DD_MIN_FILE = 4 * 1024 * 1024;
type Condition = 'alone' | 'with writer';
const CONDITIONS: Condition[] = ['alone', 'with writer'];

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
  /** The writer's ops/s during this copy ÷ its rate alone (with writer only). */
  writerRatio?: number;
  writerP99?: number;
}

// ---------------------------------------------------------------- JSON result

/** The shared result shape (bench/common.ts). */
type Metric = BenchMetric;

/** The shared writer (bench/common.ts) recomputes each `pass`, so every bench judges targets alike. */
function emitResult(result: { bench: string; metrics: Metric[] }): void {
  writeBenchResult(result.bench, { metrics: result.metrics.map(({ pass: _pass, ...metric }) => metric) });
}

/** A value against a baseline: ratio value ÷ baseline, and whether the ratio meets `target`. */
function versus(name: string, value: number, unit: string, baseline: { name: string; value: number }, target?: Metric['target']): Metric {
  const r = value / baseline.value;
  const pass = target === undefined || !Number.isFinite(r) ? undefined : target.op === '>=' ? r >= target.value : r <= target.value;
  return { name, value, unit, baseline, ratio: r, ...(target === undefined ? {} : { target }), ...(pass === undefined ? {} : { pass }) };
}

// ---------------------------------------------------------------- copies

/** Total bytes and files of regular files under `dir`, leaving out the manifest. */
function tally(dir: string): { bytes: number; files: number } {
  let bytes = 0;
  let files = 0;
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || entry.name === 'hotbackup-manifest.json') continue;
    bytes += fs.statSync(path.join(entry.parentPath, entry.name)).size;
    files++;
  }
  return { bytes, files };
}

/**
 * The disk's ceiling for durable writes: the listed files of DD_MIN_FILE bytes or more,
 * copied by two lanes of `dd oflag=direct conv=fsync` (coreutils), largest first. No
 * copy that ends durable on this disk can beat it by much; a copy to the page cache can.
 */
async function ddDirect(dbpath: string, files: readonly ListedFile[], dest: string): Promise<void> {
  const large = files.filter((f) => f.size >= DD_MIN_FILE).sort((a, b) => b.size - a.size);
  for (const dir of new Set(large.map((f) => path.dirname(path.join(dest, f.path))))) fs.mkdirSync(dir, { recursive: true });
  let next = 0;
  const lane = async (): Promise<void> => {
    for (let file = large[next++]; file !== undefined; file = large[next++]) {
      await exec('dd', [`if=${path.join(dbpath, file.path)}`, `of=${path.join(dest, file.path)}`, 'bs=4M', 'oflag=direct', 'conv=fsync', 'status=none']);
    }
  };
  await Promise.all([lane(), lane()]);
}

/** Opens a `$backupCursor` on the dev server, runs `fn` over its files while it is open, closes it. */
async function withBackupCursor<T>(direct: MongoClient, dbpath: string, fn: (files: ListedFile[]) => Promise<T>): Promise<T> {
  const cursor = await openBackupCursor(direct);
  try {
    return await fn(cursor.files.map((f) => ({ path: path.relative(dbpath, f.filename), size: f.fileSize })));
  } finally {
    await closeBackupCursor(direct, cursor);
  }
}

/** `cp -a --parents` of the listed files into `dest` (created), from the dbpath. */
async function cpA(dbpath: string, names: readonly string[], dest: string): Promise<void> {
  fs.mkdirSync(dest);
  await exec('cp', ['-a', '--parents', ...names, dest], { cwd: dbpath, maxBuffer: 16 * MB });
}

async function main(): Promise<void> {
  printHeader('bench/backup: backupStart copy throughput vs cp -a (+ fsync), alone and with a writer', {
    data: `${fmt(DATA_BYTES / 1e9)} GB of documents (bench/dataset.ts: many small collections, 4 large, the journal)`,
    rounds: `${ROUNDS}${SMOKE ? ' (smoke)' : ''}; methods rotated each round; page cache warm; sync before every timed copy`,
    writer: 'sequential insertOne of 256 B documents through the proxy, one connection',
    units: 'MB = 10^6 bytes',
  });

  const { workDir, server, proxy, client } = await startBenchStack('bench-backup');
  const admin = client.db('admin');
  const direct = new MongoClient(server.uri, { serverSelectionTimeoutMS: 10_000, maxPoolSize: 6 });
  onCleanup('driver client (direct)', () => direct.close(true));
  await direct.connect();
  const writerClient = new MongoClient(proxy.uri, { maxPoolSize: 1, serverSelectionTimeoutMS: 10_000 });
  onCleanup('driver client (writer, proxy)', () => writerClient.close(true));
  await writerClient.connect();

  console.log(describeDataset(await growDataset(direct, server.dbpath, DATA_BYTES)));
  await admin.command({ backupThrottle: 0 });

  // Warm-up backup (untimed): reads every source file into the page cache, warms the
  // proxy's code, and shows what it makes of the log files.
  const warmDest = path.join(workDir, 'warmup');
  await settle(direct, server.dbpath);
  const logPattern = /^WiredTiger(Log|Preplog)\./;
  const sourceLogs = allocationsIn(path.join(server.dbpath, 'journal'), logPattern);
  const start = performance.now();
  await admin.command({ backupStart: warmDest });
  console.log(`warm-up backupStart: ${fmt((performance.now() - start) / 1000)} s`);
  const backupLogs = allocationsIn(path.join(warmDest, 'journal'), logPattern);
  fs.rmSync(warmDest, { recursive: true, force: true });
  const cpDest = path.join(workDir, 'sparse-cp');
  await cpA(server.dbpath, fs.readdirSync(path.join(server.dbpath, 'journal')).filter((n) => n.startsWith('WiredTigerLog.')).map((n) => `journal/${n}`), cpDest);
  const cpLogs = allocationsIn(path.join(cpDest, 'journal'), logPattern);
  fs.rmSync(cpDest, { recursive: true, force: true });
  console.log('');
  for (const line of [
    ...describeAllocations("the dev server's log files (journal/)", sourceLogs),
    ...describeAllocations("backupStart's copy of them", backupLogs),
    ...describeAllocations("cp -a's copy of the WiredTigerLog files", cpLogs),
  ]) {
    console.log(line);
  }
  console.log('');

  await settle(direct, server.dbpath);
  const sample = await withBackupCursor(direct, server.dbpath, async (files) => files);
  const sum = (list: readonly ListedFile[]) => list.reduce((total, f) => total + f.size, 0);
  const journal = sample.filter((f) => f.path.startsWith('journal/'));
  const tables = sample.filter((f) => /^(collection|index)-.*\.wt$/.test(path.basename(f.path)));
  const small = tables.filter((f) => f.size < 4 * MB);
  console.log(
    `a backup cursor lists ${sample.length} files, ${fmt(sum(sample) / MB)} MB: ${tables.length} collection/index files ` +
      `${fmt(sum(tables) / MB)} MB (${small.length} of them under 4 MB, ${fmt(sum(small) / MB)} MB), ` +
      `journal ${journal.length} file${journal.length === 1 ? '' : 's'} ${fmt(sum(journal) / MB)} MB, other ${fmt((sum(sample) - sum(tables) - sum(journal)) / MB)} MB`,
  );
  console.log('');

  const copyOnce = async (method: Method, dest: string): Promise<{ ms: number; from: number; to: number }> => {
    await settle(direct, server.dbpath);
    await exec('sync', []);
    if (method === 'backupStart') {
      const from = performance.now();
      const reply = await admin.command({ backupStart: dest });
      const to = performance.now();
      if (reply['ok'] !== 1) throw new Error(`backupStart: ${JSON.stringify(reply)}`);
      const last = (await admin.command({ backupStatus: 1 }))['last'] as { ok: boolean; strategy: string };
      if (!last.ok || last.strategy !== 'backupCursor') throw new Error(`backup outcome: ${JSON.stringify(last)}`);
      return { ms: to - from, from, to };
    }
    return withBackupCursor(direct, server.dbpath, async (files) => {
      const names = files.map((f) => f.path);
      const from = performance.now();
      if (method === 'dd direct') {
        await ddDirect(server.dbpath, files, dest);
        return { ms: performance.now() - from, from, to: performance.now() };
      }
      await cpA(server.dbpath, names, dest);
      if (method === 'cp -a + fsync') {
        const dirs = new Set([dest, ...names.map((n) => path.dirname(path.join(dest, n)))]);
        await exec('sync', ['--', ...names.map((n) => path.join(dest, n)), ...dirs], { maxBuffer: 16 * MB });
      }
      const to = performance.now();
      return { ms: to - from, from, to };
    });
  };

  const runs = new Map<string, Run[]>();
  const key = (c: Condition, m: Method) => `${c}/${m}`;
  const writerAlone: number[] = [];
  let writes = 0;
  const pad = 'w'.repeat(200);
  const writerCollection = writerClient.db('bench').collection('writer');
  const write = () => writerCollection.insertOne({ n: writes++, at: new Date(), pad });
  // The writer's path (driver, proxy, dev server) runs at a fraction of its speed for
  // its first seconds, until V8 has optimised it; warm it before measuring it.
  const warm = startLoop(write);
  await sleep(WRITER_WARMUP_MS);
  await warm.stop();
  const rounds = await runRounds(METHODS, ROUNDS, BUDGET_MS, async (order, round) => {
    for (const condition of CONDITIONS) {
      let writer: Loop | undefined;
      let aloneRate = Number.NaN;
      if (condition === 'with writer') {
        await settle(direct, server.dbpath);
        await exec('sync', []);
        writer = startLoop(write);
        await sleep(300);
        const from = performance.now();
        await sleep(WRITER_ALONE_MS);
        aloneRate = windowStats(writer.log, from, performance.now()).rate;
        writerAlone.push(aloneRate);
      }
      try {
        for (const method of order) {
          const dest = path.join(workDir, `r${round}-${condition.replace(/\W+/g, '_')}-${method.replace(/\W+/g, '_')}`);
          const { ms, from, to } = await copyOnce(method, dest);
          const run: Run = { ms, ...tally(dest) };
          if (writer !== undefined) {
            const during = windowStats(writer.log, from, to);
            run.writerRatio = during.rate / aloneRate;
            run.writerP99 = during.p99;
          }
          runs.set(key(condition, method), [...(runs.get(key(condition, method)) ?? []), run]);
          await fs.promises.rm(dest, { recursive: true, force: true });
        }
      } finally {
        await writer?.stop();
      }
    }
  });
  console.log('');

  // ---------------------------------------------------------------- report
  // Metadata files differ by a few bytes from one checkpoint to the next, and the
  // writer adds a little; more than 1% would mean the methods did not copy the same files.
  const all = [...runs.values()].flat();
  const [least, most] = [Math.min(...all.map((r) => r.bytes)), Math.max(...all.map((r) => r.bytes))];
  if (most - least > most / 100) console.log(`note: the runs copied between ${fmt(least / MB)} and ${fmt(most / MB)} MB`);
  const rate = (r: Run) => r.bytes / MB / (r.ms / 1000);
  const of = (c: Condition, m: Method): Run[] => runs.get(key(c, m)) ?? [];
  const medRate = (c: Condition, m: Method) => median(of(c, m).map(rate));
  const first = of('alone', 'backupStart')[0];
  console.log(
    `Medians over ${rounds} round${rounds === 1 ? '' : 's'}; each copy: ${first?.files ?? '?'} files, ${fmt((first?.bytes ?? Number.NaN) / MB)} MB. ` +
      'MB/s: higher is better; backupStart/x below 1.00 means backupStart is slower.',
  );
  const rows = METHODS.map((m) => [
    m,
    fmt(medRate('alone', m)),
    ratio(medRate('alone', 'backupStart'), medRate('alone', m)),
    fmt(medRate('with writer', m)),
    ratio(medRate('with writer', 'backupStart'), medRate('with writer', m)),
    fmt(median(of('with writer', m).map((r) => r.writerRatio ?? Number.NaN))),
    fmt(median(of('with writer', m).map((r) => r.writerP99 ?? Number.NaN))),
  ]);
  console.log(
    table(['method', 'alone MB/s', 'backupStart/x', 'w/ writer MB/s', 'backupStart/x', 'writer rate ÷ alone', 'writer p99 ms'], rows),
  );
  console.log(`writer alone (median): ${fmt(median(writerAlone))} inserts/s`);
  console.log('');

  const metrics: Metric[] = [];
  const targetRows: string[][] = [];
  for (const condition of CONDITIONS) {
    const ours = medRate(condition, 'backupStart');
    metrics.push({ name: `backupStart MB/s, ${condition}`, value: ours, unit: 'MB/s' });
    for (const [baseline, bound] of [['cp -a + fsync', 1.2], ['cp -a', 0.8]] as const) {
      const m = versus(`backupStart ÷ ${baseline}, ${condition}`, ours, 'MB/s', { name: `${baseline} MB/s, ${condition}`, value: medRate(condition, baseline) }, { op: '>=', value: bound });
      metrics.push(m);
      targetRows.push([m.name, fmt(m.ratio ?? Number.NaN), `>= ${bound}`, m.pass === true ? 'yes' : 'NO']);
    }
  }
  console.log('Targets (issue 9, section 2):');
  console.log(table(['ratio of MB/s', 'measured', 'target', 'holds'], targetRows));
  // The disk's ceiling: how close backupStart is to what the disk writes durably, and
  // how far beyond it `cp -a` goes by leaving its bytes in the page cache.
  const ceilingRows: string[][] = [];
  for (const condition of CONDITIONS) {
    const ceiling = { name: `dd direct MB/s, ${condition}`, value: medRate(condition, 'dd direct') };
    for (const m of ['backupStart', 'cp -a'] as const) {
      const metric = versus(`${m} ÷ dd direct (the disk's durable write rate), ${condition}`, medRate(condition, m), 'MB/s', ceiling);
      metrics.push(metric);
      ceilingRows.push([metric.name, fmt(metric.ratio ?? Number.NaN)]);
    }
  }
  console.log('');
  console.log(`The disk's ceiling (files of ${DD_MIN_FILE / 1024 / 1024} MiB or more, two lanes of dd oflag=direct conv=fsync):`);
  console.log(table(['ratio of MB/s', 'measured'], ceilingRows));
  for (const m of METHODS) {
    metrics.push({ name: `writer inserts/s during ${m} ÷ alone`, value: median(of('with writer', m).map((r) => r.writerRatio ?? Number.NaN)), unit: 'ratio' });
  }
  const logs = totalAllocation(sourceLogs.filter((a) => a.name.startsWith('WiredTigerLog.')));
  const copied = totalAllocation(backupLogs.filter((a) => a.name.startsWith('WiredTigerLog.')));
  metrics.push(
    { name: 'dev server WiredTigerLog files: allocated (st_blocks*512) ÷ size', value: logs.allocated / logs.size, unit: 'ratio' },
    { name: 'dev server WiredTigerLog files: unwritten (FIEMAP) ÷ size', value: (logs.unwritten ?? Number.NaN) / logs.size, unit: 'ratio' },
    { name: "backupStart's WiredTigerLog copies: allocated ÷ size", value: copied.allocated / copied.size, unit: 'ratio' },
    { name: "backupStart's WiredTigerLog copies: unwritten ÷ size", value: (copied.unwritten ?? Number.NaN) / copied.size, unit: 'ratio' },
  );
  const share = (part: number | undefined, whole: number) => (part === undefined ? 'n/a' : (part / whole).toFixed(2));
  console.log(
    `\nSparse? The dev server's WiredTigerLog files: allocated ${share(logs.allocated, logs.size)} of their size ` +
      `(st_blocks*512: no holes), of which unwritten (fallocated, read as zeros) ${share(logs.unwritten, logs.size)}; ` +
      `backupStart's copies: allocated ${share(copied.allocated, copied.size)}, unwritten ${share(copied.unwritten, copied.size)}.`,
  );
  console.log('');
  console.log('Every round (MB/s, in round order):');
  console.log(
    table(
      ['method', ...CONDITIONS.map((c) => `${c}, MB/s per round`)],
      METHODS.map((m) => [m, ...CONDITIONS.map((c) => of(c, m).map((r) => fmt(rate(r))).join(' / '))]),
    ),
  );
  emitResult({ bench: 'backup', metrics });
}

await runBench('bench/backup', TIME_LIMIT_MS, main);
