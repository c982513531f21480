/**
 * What the application notices of a backup, and what the backup costs the proxy in
 * memory.
 *
 * Impact. A foreground writer (sequential `insertOne` of 256 B documents) and a reader
 * (sequential `findOne` by a random `_id` among 10,000 documents of 1 KiB), each on its
 * own connection, run as a pair, either through the proxy or straight to the dev server,
 * during:
 *   no backup       a window of --window seconds just before each backup below
 *   unthrottled     a whole unthrottled `backupStart` of the --gb dataset
 *   throttled       the first --window seconds of a backup at --throttle MiB/s (then the
 *                   throttle is lifted so that the rest of it ends quickly, unmeasured)
 * Reported per phase and path: ops/s and p99 of each, and during ÷ before of each run.
 *
 * Fairness. The proxied and the direct pairs never run at the same moment. On two cores
 * each would take CPU and dev-server turns from the other, and since the pair that
 * suffers more from the backup leaves turns unused, the other would gain them: the two
 * ratios we compare would be coupled. So each path gets a backup of its own, with its
 * own no-backup window immediately before it, on the same dataset after the same
 * checkpoint; paths alternate and their order rotates each round. Within a pair the
 * writer and the reader do run at once, as an application's would. The backup always
 * runs in the proxy, the product under test: for the direct pair the proxy only copies,
 * so the comparison asks how much more an application notices the backup when its
 * traffic crosses the process that copies. Ratios are paired (a run's during ÷ its own
 * before), then the median over rounds. Each pair runs 4 s unmeasured before the first
 * round: the path runs at a fraction of its speed until V8 has optimised it.
 *
 * Targets (issue 9, section 4), same run:
 *   unthrottled   proxied writer's during ÷ before >= 0.9 × the direct writer's
 *   throttled     proxied p99 (writer, reader) <= 1.2 × its no-backup p99
 *   Percona       the proxied writer's rate during an (unthrottled) backup >= 25% of its
 *                 rate before: the criterion of jstests/backup/updates_during_backup.js
 *                 in percona-server-mongodb (backupSpeedRatio = 0.25)
 *
 * Memory. A fresh proxy process per size, 16 clients forwarding through it (half
 * `findOne` loops, half `insertOne` loops), one unthrottled backup of the --gb dataset;
 * then the dataset grows (bench/dataset.ts, no rebuild) to --big-gb and the same again.
 * Peak RSS is VmHWM from /proc/<pid>/status, which covers every thread of the process,
 * worker threads included; a child process the proxy may start is reported beside it.
 * Targets: peak <= 128 MiB, and flat as the data grows (peak at --big-gb ÷ at --gb; we
 * call flat within 10%).
 *
 *   node dist/bench/impact.js [--gb 1] [--big-gb 4] [--rounds 3] [--budget 120] [--window 3]
 *                             [--throttle 32] [--clients 16] [--json FILE] [--smoke]
 *
 * --budget: impact rounds stop early when another would end past that many seconds
 * from the start, or sooner if the memory part, which runs after them, would not fit in
 * the 270 s time limit (its growth estimated at the first build's rate). --smoke: 0.04 and 0.08 GB, one round,
 * 0.5 s windows (about 15 s in all), to check the bench runs, not what it measures.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { MongoClient, type Collection, type Document } from 'mongodb';
import { startBenchStack } from './stack.js';
import { startProxy } from '../test/helpers/proxy.js';
import { MB, MiB, fmt, onCleanup, printHeader, runRounds, runBench, sleep, writeBenchResult } from './common.js';
import { describeDataset, growDataset, settle } from './dataset.js';
import { startLoop, windowStats, type Loop } from './load.js';
import { report, type Metric, type MemoryRun, type PathName, type PhaseRun, type Phase } from './impact_report.js';

const { values: opts } = parseArgs({
  options: {
    gb: { type: 'string', default: '1' },
    'big-gb': { type: 'string', default: '4' },
    rounds: { type: 'string', default: '3' },
    budget: { type: 'string', default: '120' },
    window: { type: 'string', default: '3' },
    throttle: { type: 'string', default: '32' },
    clients: { type: 'string', default: '16' },
    json: { type: 'string' },
    smoke: { type: 'boolean', default: false },
  },
  strict: true,
});
const SMOKE = opts.smoke === true;
const GB = SMOKE ? 0.04 : Number(opts.gb);
const BIG_GB = SMOKE ? 0.08 : Number(opts['big-gb']);
const ROUNDS = SMOKE ? 1 : Math.max(1, Number(opts.rounds));
const BUDGET_MS = Number(opts.budget) * 1000;
const WINDOW_MS = SMOKE ? 500 : Number(opts.window) * 1000;
const THROTTLE = Number(opts.throttle) * MiB;
const CLIENTS = Math.max(2, Number(opts.clients));
const WARMUP_MS = SMOKE ? 500 : 4000;
/** After a pair starts (or restarts after a checkpoint), before its no-backup window. */
const RAMP_MS = SMOKE ? 100 : 500;
const READ_DOCS = 10_000;
/** Hard stop: cleanup and exit 2. */
const TIME_LIMIT_MS = 270_000;
const PATHS: PathName[] = ['proxy', 'direct'];
const PHASES: Exclude<Phase, 'no backup'>[] = ['unthrottled', 'throttled'];

/** The shared writer (bench/common.ts) recomputes each `pass`, so every bench judges targets alike. */
function emitResult(result: { bench: string; metrics: Metric[] }): void {
  writeBenchResult(result.bench, { metrics: result.metrics.map(({ pass: _pass, ...metric }) => metric) });
}

// ---------------------------------------------------------------- foreground load

/** A client with one connection; closed at cleanup. */
async function connect(uri: string, what: string): Promise<MongoClient> {
  const client = new MongoClient(uri, { maxPoolSize: 1, serverSelectionTimeoutMS: 10_000 });
  onCleanup(`driver client (${what})`, () => client.close(true));
  await client.connect();
  return client;
}

const pad = 'w'.repeat(200);
let inserted = 0;

function writeLoop(collection: Collection): Loop {
  return startLoop(() => collection.insertOne({ n: inserted++, at: new Date(), pad }));
}

interface ReadDoc {
  _id: number;
  payload: string;
}

function readLoop(collection: Collection<ReadDoc>): Loop {
  return startLoop(async () => {
    const doc = await collection.findOne({ _id: Math.floor(Math.random() * READ_DOCS) });
    if (doc === null) throw new Error('the reader found no document');
  });
}

interface Pair {
  writes: Collection;
  reads: Collection<ReadDoc>;
}

async function openPair(uri: string, name: PathName): Promise<Pair> {
  const writer = await connect(uri, `${name} writer`);
  const reader = await connect(uri, `${name} reader`);
  return { writes: writer.db('impact').collection('writes'), reads: reader.db('impact').collection<ReadDoc>('reads') };
}

// ---------------------------------------------------------------- proxy memory

function statusKiB(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
}

/** Pids of `pid`'s live child processes, from /proc/<n>/stat (field 4 is the parent). */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) children.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return children;
}

async function main(): Promise<void> {
  printHeader('bench/impact: what a foreground writer and reader notice of a backup, and the proxy\'s memory', {
    data: `${GB} GB of documents for the impact phases and the first memory run, then ${BIG_GB} GB (bench/dataset.ts)`,
    rounds: `${ROUNDS}${SMOKE ? ' (smoke)' : ''}; each round: both paths, each with its own unthrottled and throttled backup`,
    windows: `${WINDOW_MS / 1000} s no-backup window before each backup; throttled window ${WINDOW_MS / 1000} s at ${fmt(THROTTLE / MiB)} MiB/s`,
    'memory run': `fresh proxy, ${CLIENTS} clients forwarding (findOne / insertOne loops), one unthrottled backup`,
    units: 'MB = 10^6 bytes, MiB = 2^20 bytes',
  });
  const { workDir, server, proxy, client } = await startBenchStack('bench-impact');
  const admin = client.db('admin');
  const direct = new MongoClient(server.uri, { serverSelectionTimeoutMS: 10_000, maxPoolSize: 6 });
  onCleanup('driver client (direct)', () => direct.close(true));
  await direct.connect();

  const built = await growDataset(direct, server.dbpath, GB * 1e9);
  console.log(describeDataset(built));
  // The memory runs come after the rounds and must fit in the time limit: keep back the
  // growth to --big-gb at the rate the first build ran, with a margin, and 40 s for the
  // two backups and the proxies' starts.
  const growMs = (((BIG_GB - GB) * 1e9) / (built.insertedBytes / built.seconds)) * 1000;
  const budgetMs = Math.min(BUDGET_MS, TIME_LIMIT_MS - (growMs * 1.2 + 40_000));
  if (budgetMs < BUDGET_MS) console.log(`impact rounds must end by ${fmt(budgetMs / 1000)} s, to leave time for the memory runs`);
  const docs = Array.from({ length: READ_DOCS }, (_, i) => ({ _id: i, payload: 'r'.repeat(1000) }));
  await direct.db('impact').collection<ReadDoc>('reads').insertMany(docs);

  const pairs = new Map<PathName, Pair>([
    ['proxy', await openPair(proxy.uri, 'proxy')],
    ['direct', await openPair(server.uri, 'direct')],
  ]);
  const startPair = (name: PathName) => {
    const pair = pairs.get(name) as Pair;
    const loops = { writer: writeLoop(pair.writes), reader: readLoop(pair.reads) };
    return { ...loops, stop: () => Promise.all([loops.writer.stop(), loops.reader.stop()]) };
  };
  for (const name of PATHS) {
    const warm = startPair(name);
    await sleep(WARMUP_MS);
    await warm.stop();
  }

  // ---------------------------------------------------------------- impact rounds
  const runs: PhaseRun[] = [];
  let backupCount = 0;
  const measure = async (name: PathName, phase: Exclude<Phase, 'no backup'>, round: number): Promise<void> => {
    const dest = path.join(workDir, `backup-${backupCount++}`);
    await settle(direct, server.dbpath);
    await admin.command({ backupThrottle: phase === 'throttled' ? THROTTLE : 0 });
    const pair = startPair(name);
    let backup: Promise<Document> | undefined;
    try {
      await sleep(RAMP_MS);
      const beforeFrom = performance.now();
      await sleep(WINDOW_MS);
      const from = performance.now();
      backup = admin.command({ backupStart: dest });
      // Awaited below; until then a failure must not count as an unhandled rejection.
      backup.catch(() => undefined);
      if (phase === 'unthrottled') await backup;
      else await sleep(WINDOW_MS);
      const to = performance.now();
      if (phase === 'throttled' && (await admin.command({ backupStatus: 1 }))['inProgress'] !== true) {
        console.log('note: a throttled backup ended inside its window; use a larger --gb or a shorter --window');
      }
      await pair.stop();
      runs.push({
        path: name,
        phase,
        round,
        before: { writer: windowStats(pair.writer.log, beforeFrom, from), reader: windowStats(pair.reader.log, beforeFrom, from) },
        during: { writer: windowStats(pair.writer.log, from, to), reader: windowStats(pair.reader.log, from, to) },
        backupSeconds: phase === 'unthrottled' ? (to - from) / 1000 : Number.NaN,
      });
    } finally {
      await pair.stop();
      if (backup !== undefined) {
        await admin.command({ backupThrottle: 0 });
        const reply = await backup;
        if (reply['ok'] !== 1) throw new Error(`backupStart: ${JSON.stringify(reply)}`);
      }
      await fs.promises.rm(dest, { recursive: true, force: true });
    }
  };
  const rounds = await runRounds(PATHS, ROUNDS, budgetMs, async (order, round) => {
    for (const phase of PHASES) for (const name of order) await measure(name, phase, round);
  });
  const last = (await admin.command({ backupStatus: 1 }))['last'] as { bytes: number; files: number };
  const impactBackupMB = Number(last.bytes) / MB;
  console.log(`each backup copied ${fmt(impactBackupMB)} MB in ${Number(last.files)} files`);
  console.log('');

  // ---------------------------------------------------------------- memory
  const memory: MemoryRun[] = [];
  const memoryRun = async (gb: number): Promise<void> => {
    await settle(direct, server.dbpath);
    // Beside the impact phases' proxy, which still runs: one proxy per state dir.
    const memProxy = await startProxy(server, ['--state-dir', path.join(workDir, `memory-state-${gb}`)]);
    const stopProxy = onCleanup(`proxy for the memory run (pid ${memProxy.child.pid})`, () => memProxy.stop());
    const pid = memProxy.child.pid as number;
    const clients = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => connect(memProxy.uri, `memory client ${i}`)));
    const control = await connect(memProxy.uri, 'memory control');
    const dest = path.join(workDir, `memory-${gb}`);
    const loops = clients.map((c, i) =>
      i % 2 === 0 ? readLoop(c.db('impact').collection<ReadDoc>('reads')) : writeLoop(c.db('impact').collection('memory_writes')),
    );
    try {
      await control.db('admin').command({ backupThrottle: 0 });
      await sleep(WARMUP_MS / 2);
      const rssBefore = statusKiB(pid, 'VmRSS');
      const started = performance.now();
      let maxRss = rssBefore;
      const sampler = setInterval(() => (maxRss = Math.max(maxRss, statusKiB(pid, 'VmRSS'))), 100);
      try {
        const reply = await control.db('admin').command({ backupStart: dest });
        if (reply['ok'] !== 1) throw new Error(`backupStart: ${JSON.stringify(reply)}`);
      } finally {
        clearInterval(sampler);
      }
      const seconds = (performance.now() - started) / 1000;
      const ops = loops.reduce((sum, loop) => sum + windowStats(loop.log, started, started + seconds * 1000).ops, 0);
      const children = childrenOf(pid).map((child) => statusKiB(child, 'VmHWM'));
      const outcome = (await control.db('admin').command({ backupStatus: 1 }))['last'] as { bytes: number };
      memory.push({
        gb,
        copiedMB: Number(outcome.bytes) / MB,
        seconds,
        forwardedOpsPerSec: ops / seconds,
        rssBeforeMiB: rssBefore / 1024,
        maxSampledRssMiB: maxRss / 1024,
        hwmMiB: statusKiB(pid, 'VmHWM') / 1024,
        childrenHwmMiB: children.reduce((a, b) => a + b, 0) / 1024,
        children: children.length,
      });
    } finally {
      await Promise.all(loops.map((loop) => loop.stop()));
      await Promise.all([...clients, control].map((c) => c.close(true)));
      await stopProxy();
      await fs.promises.rm(dest, { recursive: true, force: true });
    }
  };
  await memoryRun(GB);
  console.log(describeDataset(await growDataset(direct, server.dbpath, BIG_GB * 1e9)));
  await memoryRun(BIG_GB);
  console.log('');

  const metrics = report({ runs, rounds, memory, throttleMiB: THROTTLE / MiB, impactBackupMB });
  emitResult({ bench: 'impact', metrics });
}

await runBench('bench/impact', TIME_LIMIT_MS, main);
