/**
 * What each snapshot strategy costs the application: how long writes were blocked, and
 * how long a writer waited.
 *
 * The dev server, its dbpath on a fresh XFS on a loop device
 * (reflink=1), --mb of incompressible documents in --collections collections with an
 * index each, checkpointed; its periodic checkpoint off, so that only the backup stalls
 * the writer. A writer inserts small documents with j:true through the proxy throughout.
 * Each round runs one backup per strategy, asked for by name (so one server, which
 * has $backupCursor, serves all three; the order rotates), to a destination on the
 * ordinary disk (so reflink goes through staging), at --throttle MiB/s (0: unlimited):
 *   backupCursor  $backupCursor: WiredTiger keeps the checkpoint's blocks while we copy
 *   reflink       fsyncLock, clone every file, fsyncUnlock, copy the clones
 *   fsyncLock     fsyncLock for the whole copy (allowWriteBlocking)
 * Reported per strategy, median over rounds: backupStatus.last.writesBlockedMs, and the
 * writer's p99 and longest insert among those that started during the backup; beside
 * them, the writer's p99 in the --window seconds before the backups.
 * Targets (issue 10): reflink's writesBlockedMs < 100 and longest insert < 200 ms.
 *
 * Needs root and a loop device (as the tests that mount XFS do); says why and exits 1
 * without them.
 *
 *   node dist/bench/strategies.js [--mb 600] [--collections 100] [--rounds 3] [--throttle 0]
 *                                 [--window 2] [--json FILE] [--smoke]
 *
 * --smoke: 24 MB in 12 collections, one round, 0.5 s window: checks that it runs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { Binary, MongoClient, type Db } from 'mongodb';
import { MiB, fmt, median, onCleanup, printHeader, runBench, runRounds, sleep, table, writeBenchResult, type BenchMetricInput } from './common.js';
import { startLoop, windowStats } from './load.js';
import { percentileSorted } from './common.js';
import { startDevServer } from '../test/helpers/dev_server.js';
import { startProxy } from '../test/helpers/proxy.js';
import { tempDir } from '../test/helpers/paths.js';
import { loopFsUnavailable, mountLoopFs } from '../test/helpers/loop_fs.js';
import { listDbpath } from '../src/backup/strategies/files.js';

const { values: opts } = parseArgs({
  options: {
    mb: { type: 'string', default: '600' },
    collections: { type: 'string', default: '100' },
    rounds: { type: 'string', default: '3' },
    throttle: { type: 'string', default: '0' },
    window: { type: 'string', default: '2' },
    json: { type: 'string' },
    smoke: { type: 'boolean', default: false },
  },
  strict: true,
});
const SMOKE = opts.smoke === true;
const MB_TOTAL = SMOKE ? 24 : Number(opts.mb);
const COLLECTIONS = SMOKE ? 12 : Number(opts.collections);
const ROUNDS = SMOKE ? 1 : Math.max(1, Number(opts.rounds));
const THROTTLE_MIB = Number(opts.throttle);
const WINDOW_MS = (SMOKE ? 0.5 : Number(opts.window)) * 1000;
const DOC_BYTES = 256 * 1024;
const TIME_LIMIT_MS = SMOKE ? 110_000 : 290_000;

type Strategy = 'backupCursor' | 'reflink' | 'fsyncLock';
const STRATEGIES: readonly Strategy[] = ['backupCursor', 'reflink', 'fsyncLock'];

interface Run {
  writesBlockedMs: number;
  p99: number;
  max: number;
  inserts: number;
  seconds: number;
}

async function loadDataset(db: Db): Promise<void> {
  const docs = Math.max(1, Math.round((MB_TOTAL * 1e6) / DOC_BYTES / COLLECTIONS));
  for (let c = 0; c < COLLECTIONS; c++) {
    const coll = db.collection(`c${c}`);
    await coll.createIndex({ n: 1 });
    await coll.insertMany(Array.from({ length: docs }, (_, n) => ({ n, blob: new Binary(randomBytes(DOC_BYTES)) })));
  }
}

async function backupOnce(admin: Db, strategy: Strategy, dest: string, writer: ReturnType<typeof startLoop>): Promise<Run> {
  const started = performance.now();
  await admin.command({ backupStart: dest, strategy, allowWriteBlocking: true });
  const ended = performance.now();
  const last = (await admin.command({ backupStatus: 1 }))['last'] as { ok: boolean; strategy: string; writesBlockedMs: unknown; errmsg?: string };
  if (last.ok !== true || last.strategy !== strategy) throw new Error(`the ${strategy} backup did not succeed: ${JSON.stringify(last)}`);
  // Inserts in flight at any moment of the backup: those that started before its end and ended after its start.
  const { ends, latencies } = writer.log;
  const during: number[] = [];
  for (let i = 0; i < ends.length; i++) {
    const end = ends[i] as number;
    if (end >= started && end - (latencies[i] as number) <= ended) during.push(latencies[i] as number);
  }
  during.sort((a, b) => a - b);
  return {
    writesBlockedMs: Number(last.writesBlockedMs),
    p99: percentileSorted(during, 99),
    max: during.at(-1) ?? Number.NaN,
    inserts: during.length,
    seconds: (ended - started) / 1000,
  };
}

async function main(): Promise<void> {
  const unavailable = loopFsUnavailable('xfs');
  if (unavailable !== undefined) throw new Error(`bench/strategies ${unavailable}`);
  printHeader('bench/strategies: writes blocked, and a j:true writer\'s waits, for each strategy, on XFS', {
    dataset: `${MB_TOTAL} MB in ${COLLECTIONS} collections with an index each`,
    rounds: String(ROUNDS),
    throttle: THROTTLE_MIB === 0 ? 'unlimited' : `${THROTTLE_MIB} MiB/s`,
    window: `${WINDOW_MS / 1000} s before the backups`,
  });
  const fsys = await mountLoopFs('xfs', Math.max(512, Math.ceil((MB_TOTAL * 2.5) / 64) * 64 + 512));
  onCleanup(`XFS at ${fsys.dir}`, () => fsys.remove());
  const work = tempDir('bench-strategies');
  onCleanup(`temp dir ${work.dir}`, () => work.remove());
  const dbpath = path.join(fsys.dir, 'db');
  fs.mkdirSync(dbpath);
  const server = await startDevServer({ dbpath, args: ['--checkpoint-interval', '0'] });
  onCleanup('dev server', () => server.stop());
  const proxy = await startProxy(server);
  onCleanup('proxy', () => proxy.stop());
  const direct = new MongoClient(server.uri);
  onCleanup('driver client (direct)', () => direct.close(true));
  const client = new MongoClient(proxy.uri, { maxPoolSize: 2 });
  onCleanup('driver client (proxy)', () => client.close(true));

  const loadStart = performance.now();
  await loadDataset(direct.db('load'));
  await direct.db('admin').command({ fsync: 1 });
  const files = await listDbpath(dbpath);
  const bytes = files.reduce((sum, f) => sum + f.size, 0);
  console.log(`dataset: ${files.length} files, ${fmt(bytes / MiB)} MiB in the dbpath, loaded in ${fmt((performance.now() - loadStart) / 1000)} s`);

  const admin = client.db('admin');
  await admin.command({ backupThrottle: THROTTLE_MIB * MiB });
  const seq = client.db('app').collection<{ _id: number }>('seq');
  const writer = startLoop((i) => seq.insertOne({ _id: i }, { writeConcern: { w: 1, j: true } }));
  onCleanup('writer', () => writer.stop().catch(() => undefined));
  const runs: Record<Strategy, Run[]> = { backupCursor: [], reflink: [], fsyncLock: [] };
  const before: number[] = [];
  let n = 0;
  await runRounds(STRATEGIES, ROUNDS, TIME_LIMIT_MS - 30_000, async (order) => {
    const from = performance.now();
    await sleep(WINDOW_MS);
    before.push(windowStats(writer.log, from, performance.now()).p99);
    for (const strategy of order) {
      // The checkpoint a dbpath would have had anyway: each backup starts from the same state.
      await direct.db('admin').command({ fsync: 1 });
      const dest = path.join(work.dir, `b${n++}`);
      runs[strategy].push(await backupOnce(admin, strategy, dest, writer));
      fs.rmSync(dest, { recursive: true, force: true });
    }
  });
  await writer.stop();

  const m = (strategy: Strategy, key: keyof Run) => median(runs[strategy].map((r) => r[key]));
  console.log('');
  console.log(
    table(
      ['strategy', 'writesBlockedMs', 'writer p99 ms', 'writer max ms', 'inserts', 'backup s'],
      STRATEGIES.map((s) => [s, fmt(m(s, 'writesBlockedMs')), fmt(m(s, 'p99')), fmt(m(s, 'max')), fmt(m(s, 'inserts')), fmt(m(s, 'seconds'))]),
    ),
  );
  console.log(`writer p99 before the backups: ${fmt(median(before))} ms (median over rounds); every round:`);
  for (const s of STRATEGIES) {
    console.log(`  ${s}: ${runs[s].map((r) => `${fmt(r.writesBlockedMs)} ms blocked, max ${fmt(r.max)} ms`).join('; ')}`);
  }
  const metrics: BenchMetricInput[] = [
    { name: 'reflink: writesBlockedMs', value: m('reflink', 'writesBlockedMs'), unit: 'ms', target: { op: '<=', value: 100 } },
    { name: 'reflink: longest insert during the backup', value: m('reflink', 'max'), unit: 'ms', target: { op: '<=', value: 200 } },
    { name: 'reflink: writer p99 during the backup', value: m('reflink', 'p99'), unit: 'ms', baseline: { name: 'writer p99 before', value: median(before) } },
    { name: 'backupCursor: longest insert during the backup', value: m('backupCursor', 'max'), unit: 'ms' },
    { name: 'fsyncLock: writesBlockedMs', value: m('fsyncLock', 'writesBlockedMs'), unit: 'ms' },
    { name: 'fsyncLock: longest insert during the backup', value: m('fsyncLock', 'max'), unit: 'ms' },
    { name: 'fsyncLock: writer p99 during the backup', value: m('fsyncLock', 'p99'), unit: 'ms', baseline: { name: 'writer p99 before', value: median(before) } },
  ];
  writeBenchResult('strategies', { metrics });
}

await runBench('bench/strategies', TIME_LIMIT_MS, main);
