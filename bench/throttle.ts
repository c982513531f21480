/**
 * Throttle accuracy on the real clock: how closely the rate is held, and how soon a
 * raise shows. The tests assert only what must never happen (more bytes than the
 * throttle allowed: test/backup/throttle.test.ts on a fake clock,
 * test/integration/throttle.test.ts end to end); these are the figures a quiet
 * machine should show, and a busy one will not.
 *
 *   bucket steady   TokenBucket alone, no I/O: 4 takers loop until 2 s worth of the
 *                   rate is granted; rate = bytes / elapsed, printed ÷ target
 *   bucket raise    takers at 1 MiB/s, setRate(16 MiB/s) after 1 s; printed: bytes
 *                   granted before the raise ÷ what the low rate allows in that time, the
 *                   first grant after the raise, the raise's lag, and the rate in
 *                   [0.5 s, 1 s) after the raise ÷ target
 *   backup steady   backupStart through the proxy at 16 MiB/s, backupStatus polled every
 *                   20 ms: the copy's rate between the first and last samples strictly
 *                   inside the copy, and the whole backup (bytes / client-timed seconds)
 *   backup raise    backupStart at 8 MiB/s, backupThrottle 32 MiB/s after 2 s; as for
 *                   the bucket (no first grant: status samples are 20 ms apart), with the
 *                   rate in [0.5 s, 1.5 s) after the raise
 *
 * The lag of a raise is how much of the new rate's first second was lost: 1000 ms minus
 * the bytes copied in [raise, raise + 1 s) ÷ the new rate. 0 means the new rate applied
 * at once. Grants and samples come in steps (a chunk; 20 ms of polling), so read it to
 * about a chunk's time at the new rate (64 ms for 1 MiB at 16 MiB/s) or 20 ms.
 *
 * Every round runs all four; medians over rounds, then every round.
 *
 *   node dist/bench/throttle.js [--rounds 3]
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { type MongoClient, type Db, type Document } from 'mongodb';
import { TokenBucket } from '../src/backup/throttle.js';
import { startBenchStack } from './stack.js';
import { MiB, fmt, median, printHeader, runBench, sleep, table } from './common.js';

const TIME_LIMIT_MS = 175_000;
const KiB = 1024;

const { values: opts } = parseArgs({ options: { rounds: { type: 'string', default: '3' } }, strict: true });
const ROUNDS = Math.max(1, Number(opts.rounds));

/** Cumulative bytes against time (ms): a step at each grant, or at each status sample. */
type Series = Array<{ at: number; total: number }>;

function totalAt(series: Series, at: number): number {
  let total = 0;
  for (const point of series) {
    if (point.at > at) break;
    total = point.total;
  }
  return total;
}

/** Bytes per second over [from, to). */
function rateBetween(series: Series, from: number, to: number): number {
  return ((totalAt(series, to) - totalAt(series, from)) * 1000) / (to - from);
}

/** Ms of the new `rate` lost in the first second after `raisedAt` (see the header). */
function lagMs(series: Series, raisedAt: number, rate: number): number {
  return 1000 - ((totalAt(series, raisedAt + 1000) - totalAt(series, raisedAt)) / rate) * 1000;
}

function firstAfter(series: Series, at: number): number {
  return (series.find((p) => p.at > at)?.at ?? Number.NaN) - at;
}

/** `workers` loops taking `chunk` bytes until `stop` aborts; the grants as a series. */
function takers(bucket: TokenBucket, workers: number, chunk: number, stop: AbortSignal): { series: Series; done: Promise<void> } {
  const series: Series = [];
  let total = 0;
  const loop = async (): Promise<void> => {
    while (!stop.aborted) {
      try {
        await bucket.take(chunk, stop);
      } catch {
        return;
      }
      series.push({ at: performance.now(), total: (total += chunk) });
    }
  };
  return { series, done: Promise.all(Array.from({ length: workers }, loop)).then(() => undefined) };
}

async function bucketSteady(rate: number, chunk: number, workers: number): Promise<number> {
  const bucket = new TokenBucket(rate);
  const total = 2 * rate;
  let taken = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (taken < total) {
        taken += chunk;
        await bucket.take(chunk);
      }
    }),
  );
  return total / ((performance.now() - started) / 1000) / rate;
}

interface RaiseFigures {
  before: number;
  firstMs: number;
  lagMs: number;
  after: number;
}

async function bucketRaise(chunk: number, workers: number): Promise<RaiseFigures> {
  const [low, high] = [MiB, 16 * MiB];
  const bucket = new TokenBucket(low);
  const stop = new AbortController();
  const start = performance.now();
  const { series, done } = takers(bucket, workers, chunk, stop.signal);
  await sleep(1000);
  const raisedAt = performance.now();
  bucket.setRate(high);
  await sleep(1000);
  stop.abort();
  await done;
  return {
    before: rateBetween(series, start, raisedAt) / low,
    firstMs: firstAfter(series, raisedAt),
    lagMs: lagMs(series, raisedAt, high),
    after: rateBetween(series, raisedAt + 500, raisedAt + 1000) / high,
  };
}

/** Polls backupStatus every 20 ms until `stopAt` (performance.now) or the backup ends. */
async function sample(admin: Db, series: Series, stopAt = Infinity): Promise<Document> {
  for (;;) {
    const status = await admin.command({ backupStatus: 1 });
    series.push({ at: performance.now(), total: Number(status['bytesCopied']) });
    if (status['inProgress'] !== true || performance.now() >= stopAt) return status;
    await sleep(20);
  }
}

async function checkpoint(client: MongoClient): Promise<void> {
  // A real checkpoint archives the log file the last backup cursor moved off (see bench/backup.ts).
  await client.db('bench').collection<{ _id: number; n?: number }>('marker').updateOne({ _id: 1 }, { $inc: { n: 1 } }, { upsert: true });
  await client.db('admin').command({ fsync: 1 });
}

function finished(status: Document): number {
  const last = status['last'] as Document | undefined;
  if (status['inProgress'] === true || last?.['ok'] !== true) throw new Error(`backup did not succeed: ${JSON.stringify(last)}`);
  return Number(last['bytes']);
}

async function backupSteady(client: MongoClient, dest: string): Promise<{ copy: number; whole: number; mib: number }> {
  const rate = 16 * MiB;
  const admin = client.db('admin');
  await checkpoint(client);
  await admin.command({ backupThrottle: rate });
  const series: Series = [];
  const started = performance.now();
  await admin.command({ backupStart: dest, async: true });
  const bytes = finished(await sample(admin, series));
  const seconds = (performance.now() - started) / 1000;
  const inside = series.filter((p) => p.total > 0 && p.total < bytes);
  const [first, last] = [inside[0], inside.at(-1)];
  const copy = first && last && last.at > first.at ? rateBetween(series, first.at, last.at) : Number.NaN;
  return { copy: copy / rate, whole: bytes / seconds / rate, mib: bytes / MiB };
}

async function backupRaise(client: MongoClient, dest: string): Promise<RaiseFigures> {
  const [low, high] = [8 * MiB, 32 * MiB];
  const admin = client.db('admin');
  await checkpoint(client);
  await admin.command({ backupThrottle: low });
  const series: Series = [];
  const started = performance.now();
  await admin.command({ backupStart: dest, async: true });
  await sample(admin, series, started + 2000);
  const raisedAt = performance.now();
  await admin.command({ backupThrottle: high });
  finished(await sample(admin, series));
  return {
    before: rateBetween(series, started, raisedAt) / low,
    firstMs: Number.NaN,
    lagMs: lagMs(series, raisedAt, high),
    after: rateBetween(series, raisedAt + 500, raisedAt + 1500) / high,
  };
}

async function main(): Promise<void> {
  printHeader('bench/throttle: how closely the throttle holds its rate, and how soon a raise shows', {
    rounds: `${ROUNDS}`,
    units: 'MiB = 2^20 bytes; rate figures are measured ÷ target (1.00 is exact)',
  });
  const { workDir, client } = await startBenchStack('bench-throttle');
  // Some data besides the journal's preallocated 100 MiB log file.
  const docs = Array.from({ length: 8000 }, (_, i) => ({ i, pad: 't'.repeat(1000) }));
  await client.db('bench').collection('bulk').insertMany(docs);

  const rows = new Map<string, number[]>();
  const add = (name: string, value: number) => rows.set(name, [...(rows.get(name) ?? []), value]);
  let backupMiB = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const roundStart = performance.now();
    add('bucket 8 MiB/s, 4 takers of 256 KiB: rate ÷ target', await bucketSteady(8 * MiB, 256 * KiB, 4));
    add('bucket 16 MiB/s, 4 takers of 1 MiB: rate ÷ target', await bucketSteady(16 * MiB, MiB, 4));
    for (const [chunk, workers] of [
      [64 * KiB, 4],
      [MiB, 1],
    ] as const) {
      const label = `bucket 1→16 MiB/s, ${workers} × ${chunk / KiB} KiB`;
      const r = await bucketRaise(chunk, workers);
      add(`${label}: 0-1 s before ÷ 1 MiB/s`, r.before);
      add(`${label}: first grant after raise, ms`, r.firstMs);
      add(`${label}: lag of the raise, ms`, r.lagMs);
      add(`${label}: 0.5-1 s after ÷ 16 MiB/s`, r.after);
    }
    const dests = [path.join(workDir, `steady-${round}`), path.join(workDir, `raise-${round}`)] as const;
    const steady = await backupSteady(client, dests[0]);
    backupMiB = steady.mib;
    add('backupStart 16 MiB/s: copy rate ÷ target', steady.copy);
    add('backupStart 16 MiB/s: whole backup ÷ target', steady.whole);
    const raise = await backupRaise(client, dests[1]);
    add('backupStart 8→32 MiB/s: 0-2 s before ÷ 8 MiB/s', raise.before);
    add('backupStart 8→32 MiB/s: lag of the raise, ms', raise.lagMs);
    add('backupStart 8→32 MiB/s: 0.5-1.5 s after ÷ 32 MiB/s', raise.after);
    await client.db('admin').command({ backupThrottle: 0 });
    for (const dest of dests) fs.rmSync(dest, { recursive: true, force: true });
    console.log(`round ${round + 1}/${ROUNDS}: ${fmt((performance.now() - roundStart) / 1000)} s`);
  }
  console.log(`each backup copied ${fmt(backupMiB)} MiB`);
  console.log('');
  console.log(`Medians over ${ROUNDS} rounds, then every round in order.`);
  console.log(table(['figure', 'median', 'per round'], [...rows].map(([name, values]) => [name, fmt(median(values)), values.map((v) => fmt(v)).join(' / ')])));
}

await runBench('bench/throttle', TIME_LIMIT_MS, main);
