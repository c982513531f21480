/**
 * Forwarding overhead: the same driver workloads against the dev server three ways,
 * in one run, and the ratios between them.
 *
 *   direct  driver -> dev server
 *   socat   driver -> socat (a dumb TCP relay, one forked process per connection) -> dev server
 *   proxy   driver -> `hotbackup serve` (framing, command peek, boundary tracking) -> dev server
 *
 * The claim under test: our proxy costs about what a dumb relay costs. Absolute numbers
 * on a shared 2-core VM are noise (the driver, the relay and the dev server all share
 * the two cores); ratios measured in the same run are the result.
 *
 * Workloads, each run once per path per round, paths rotated each round (6 rounds: each
 * path runs in each position twice):
 *   ping      sequential round trips: ops/s, p50, p99
 *   insert    insertMany of 1 KiB documents, batches of 1000: MB/s
 *   find      find() of a whole collection of 4 KiB documents, default batches, iterated: MB/s
 *   ping x8   8 clients pinging at once: total ops/s, p50, p99
 * Reported per path: the median over rounds. Also the CPU time the relay process
 * (socat and its forks, or the proxy) used during each workload, from /proc.
 *
 *   node dist/bench/proxy.js [--rounds 6] [--budget 140] [--pings 3000] [--write-mb 50] [--read-mb 50]
 *                            [--clients 8] [--socat-nagle]
 *
 * socat runs with `nodelay` on both sides, as the proxy sets TCP_NODELAY on both of its
 * sockets. Without it (--socat-nagle, the command as usually typed) Nagle's algorithm
 * meets delayed ACKs on every ~1 MB insert and socat's insert throughput halves: a
 * baseline that slow would flatter the proxy.
 */
import { parseArgs } from 'node:util';
import { MongoClient, type Collection, type Document } from 'mongodb';
import { calculateObjectSize } from 'bson';
import { startDevServer } from '../test/helpers/dev_server.js';
import { startProxy } from '../test/helpers/proxy.js';
import { MB, fmt, median, onCleanup, percentileSorted, printHeader, ratio, runRounds, runBench, table } from './common.js';
import { cpuMsOf, cpuMsOfGroup, startSocat } from './proc.js';

/** Hard stop: cleanup and exit 2. The round budget (--budget) normally ends the run well before. */
const TIME_LIMIT_MS = 175_000;
const DOC_BYTES = 1024;
/**
 * The collection find reads has 4 KiB documents. With 1 KiB ones the dev server's full
 * getMore batches overflow its 16 MiB reply limit (it budgets the documents' bytes but
 * not the array's per-element overhead) and it drops the connection; 4 KiB documents
 * stay inside the margin, so find runs with the driver's default batches.
 */
const READ_DOC_BYTES = 4096;
const BATCH = 1000;
const DB = 'bench';

const { values: opts } = parseArgs({
  options: {
    rounds: { type: 'string', default: '6' },
    /** Rounds stop early (at least one runs) when the next would end past this many seconds. */
    budget: { type: 'string', default: '140' },
    /** socat without nodelay, as `socat TCP-LISTEN:...,fork TCP:...` is usually typed. */
    'socat-nagle': { type: 'boolean', default: false },
    pings: { type: 'string', default: '3000' },
    'write-mb': { type: 'string', default: '50' },
    'read-mb': { type: 'string', default: '50' },
    clients: { type: 'string', default: '8' },
  },
  strict: true,
});
const ROUNDS = Number(opts.rounds);
/** From process start (performance.now() counts from there). */
const BUDGET_MS = Number(opts.budget) * 1000;
const PINGS = Number(opts.pings);
const WRITE_BATCHES = Math.max(1, Math.round((Number(opts['write-mb']) * MB) / (DOC_BYTES * BATCH)));
const READ_DOCS = Math.max(BATCH, Math.round((Number(opts['read-mb']) * MB) / READ_DOC_BYTES));
const CLIENTS = Number(opts.clients);

type PathName = 'direct' | 'socat' | 'proxy';
const PATHS: PathName[] = ['direct', 'socat', 'proxy'];

interface Path {
  name: PathName;
  uri: string;
  client: MongoClient;
  /** One client per concurrent pinger, each with its own connection. */
  pingers: MongoClient[];
  /** CPU ms used so far by the relay in this path (0 for direct). */
  relayCpuMs: () => number;
}

interface Sample {
  /** The workload's headline number: ops/s or MB/s. */
  rate: number;
  p50us?: number;
  p99us?: number;
  /** CPU ms the relay process used during this workload. */
  relayCpuMs: number;
}

type Workload = 'ping' | 'insert' | 'find' | 'pingConcurrent';

/** {_id: int32, pad: n - 24 chars} is exactly n bytes of BSON. */
function doc(id: number, bytes: number): Document {
  return { _id: id, pad: 'x'.repeat(bytes - 24) };
}

function makeBatches(count: number): Document[][] {
  const pad = 'x'.repeat(1000);
  return Array.from({ length: count }, (_, b) => Array.from({ length: BATCH }, (_, i) => ({ _id: b * BATCH + i, pad })));
}

async function connect(uri: string): Promise<MongoClient> {
  const client = new MongoClient(uri, { maxPoolSize: 1, serverSelectionTimeoutMS: 10_000 });
  onCleanup(`driver client ${uri}`, () => client.close(true));
  await client.connect();
  return client;
}

async function pingLoop(client: MongoClient, count: number, latencies: number[]): Promise<void> {
  const admin = client.db('admin');
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    await admin.command({ ping: 1 });
    latencies.push(performance.now() - start);
  }
}

function latencySample(latencies: number[], elapsedMs: number, relayCpuMs: number): Sample {
  latencies.sort((a, b) => a - b);
  return {
    rate: (latencies.length * 1000) / elapsedMs,
    p50us: percentileSorted(latencies, 50) * 1000,
    p99us: percentileSorted(latencies, 99) * 1000,
    relayCpuMs,
  };
}

async function measure(path: Path, body: () => Promise<void>): Promise<{ ms: number; cpu: number }> {
  const cpu0 = path.relayCpuMs();
  const start = performance.now();
  await body();
  const ms = performance.now() - start;
  return { ms, cpu: path.relayCpuMs() - cpu0 };
}

async function runWorkload(workload: Workload, path: Path, round: number, batches: Document[][]): Promise<Sample> {
  switch (workload) {
    case 'ping': {
      const latencies: number[] = [];
      const { ms, cpu } = await measure(path, () => pingLoop(path.client, PINGS, latencies));
      return latencySample(latencies, ms, cpu);
    }
    case 'pingConcurrent': {
      const latencies: number[] = [];
      const each = Math.ceil(PINGS / path.pingers.length);
      const { ms, cpu } = await measure(path, async () => {
        await Promise.all(path.pingers.map((c) => pingLoop(c, each, latencies)));
      });
      return latencySample(latencies, ms, cpu);
    }
    case 'insert': {
      const collection: Collection = path.client.db(DB).collection(`write_${path.name}_${round}`);
      const { ms, cpu } = await measure(path, async () => {
        for (const batch of batches) await collection.insertMany(batch);
      });
      await collection.drop();
      return { rate: (batches.length * BATCH * DOC_BYTES) / MB / (ms / 1000), relayCpuMs: cpu };
    }
    case 'find': {
      let docs = 0;
      const { ms, cpu } = await measure(path, async () => {
        for await (const _ of path.client.db(DB).collection('read').find()) docs++;
      });
      if (docs !== READ_DOCS) throw new Error(`find read ${docs} documents, expected ${READ_DOCS}`);
      return { rate: (docs * READ_DOC_BYTES) / MB / (ms / 1000), relayCpuMs: cpu };
    }
  }
}

const WORKLOADS: Workload[] = ['ping', 'insert', 'find', 'pingConcurrent'];

async function main(): Promise<void> {
  for (const bytes of [DOC_BYTES, READ_DOC_BYTES]) {
    if (calculateObjectSize(doc(123456, bytes)) !== bytes) throw new Error(`document size is not ${bytes} B`);
  }
  printHeader('bench/proxy: forwarding overhead, direct vs socat vs proxy', {
    socat: opts['socat-nagle']
      ? 'socat TCP-LISTEN:<port>,bind=127.0.0.1,reuseaddr,fork TCP:127.0.0.1:<devport>'
      : 'socat TCP-LISTEN:<port>,bind=127.0.0.1,reuseaddr,fork,nodelay TCP:127.0.0.1:<devport>,nodelay',
    workloads:
      `${ROUNDS} rounds; ping x${PINGS}; insertMany ${WRITE_BATCHES}x${BATCH} docs of ${DOC_BYTES} B ` +
      `(${fmt((WRITE_BATCHES * BATCH * DOC_BYTES) / MB)} MB); find ${READ_DOCS} docs of ${READ_DOC_BYTES} B (${fmt((READ_DOCS * READ_DOC_BYTES) / MB)} MB); ` +
      `ping x${Math.ceil(PINGS / CLIENTS) * CLIENTS} over ${CLIENTS} clients`,
  });

  // Periodic checkpoints off: one landing in a single path's timed run is pure noise.
  const server = await startDevServer({ args: ['--checkpoint-interval', '0'] });
  onCleanup('dev server', async () => {
    await server.stop();
    server.cleanup();
  });
  const socat = await startSocat(server.port, { nodelay: !opts['socat-nagle'] });
  const proxy = await startProxy(server);
  onCleanup('proxy', () => proxy.stop());
  const proxyPid = proxy.child.pid as number;

  const uris: Record<PathName, string> = { direct: server.uri, socat: socat.uri, proxy: proxy.uri };
  const relayCpu: Record<PathName, () => number> = {
    direct: () => 0,
    socat: () => cpuMsOfGroup(socat.pgid),
    proxy: () => cpuMsOf(proxyPid),
  };
  const paths = {} as Record<PathName, Path>;
  for (const name of PATHS) {
    const client = await connect(uris[name]);
    const pingers = await Promise.all(Array.from({ length: CLIENTS }, () => connect(uris[name])));
    paths[name] = { name, uri: uris[name], client, pingers, relayCpuMs: relayCpu[name] };
  }

  // The collection every find reads, loaded once, directly.
  const setupStart = performance.now();
  const read = paths.direct.client.db(DB).collection('read');
  for (let loaded = 0; loaded < READ_DOCS; loaded += BATCH) {
    const n = Math.min(BATCH, READ_DOCS - loaded);
    await read.insertMany(Array.from({ length: n }, (_, i) => doc(loaded + i, READ_DOC_BYTES)));
  }
  await paths.direct.client.db('admin').command({ fsync: 1 });
  const batches = makeBatches(WRITE_BATCHES);

  // Warm-up: every connection used, JIT warm, every path's code paths touched once.
  for (const path of PATHS.map((n) => paths[n])) {
    await pingLoop(path.client, 200, []);
    await Promise.all(path.pingers.map((c) => pingLoop(c, 20, [])));
    const warm = path.client.db(DB).collection(`warmup_${path.name}`);
    await warm.insertMany(makeBatches(1)[0] as Document[]);
    await warm.drop();
    await path.client.db(DB).collection('read').find().limit(2000).toArray();
  }
  console.log(`setup (load ${fmt((READ_DOCS * READ_DOC_BYTES) / MB)} MB, warm-up): ${fmt((performance.now() - setupStart) / 1000)} s`);

  const samples = new Map<string, Sample[]>();
  const key = (w: Workload, p: PathName) => `${w}/${p}`;
  const rounds = await runRounds(PATHS, ROUNDS, BUDGET_MS, async (order, round) => {
    for (const workload of WORKLOADS) {
      for (const name of order) {
        const sample = await runWorkload(workload, paths[name], round, batches);
        const list = samples.get(key(workload, name)) ?? [];
        list.push(sample);
        samples.set(key(workload, name), list);
      }
    }
  });
  console.log('');

  // ---------------------------------------------------------------- report
  type Metric = { label: string; workload: Workload; pick: (s: Sample) => number | undefined; better: 'higher' | 'lower'; relay?: boolean };
  const metrics: Metric[] = [
    { label: 'ping sequential, ops/s', workload: 'ping', pick: (s) => s.rate, better: 'higher' },
    { label: 'ping sequential, p50 µs', workload: 'ping', pick: (s) => s.p50us, better: 'lower' },
    { label: 'ping sequential, p99 µs', workload: 'ping', pick: (s) => s.p99us, better: 'lower' },
    { label: `insertMany 1 KiB docs, MB/s`, workload: 'insert', pick: (s) => s.rate, better: 'higher' },
    { label: 'find all 4 KiB docs, MB/s', workload: 'find', pick: (s) => s.rate, better: 'higher' },
    { label: `ping ${CLIENTS} clients, ops/s`, workload: 'pingConcurrent', pick: (s) => s.rate, better: 'higher' },
    { label: `ping ${CLIENTS} clients, p50 µs`, workload: 'pingConcurrent', pick: (s) => s.p50us, better: 'lower' },
    { label: `ping ${CLIENTS} clients, p99 µs`, workload: 'pingConcurrent', pick: (s) => s.p99us, better: 'lower' },
  ];
  const med = (m: Metric, p: PathName) => median((samples.get(key(m.workload, p)) ?? []).map((s) => m.pick(s) ?? Number.NaN));
  const rows = metrics.map((m) => {
    const [d, s, p] = PATHS.map((name) => med(m, name)) as [number, number, number];
    return [m.label, fmt(d), fmt(s), fmt(p), ratio(p, d), ratio(p, s), ratio(s, d), m.better];
  });
  console.log(`Medians over ${rounds} rounds. Ratios are of the numbers themselves: for ops/s and MB/s`);
  console.log('below 1.00 means slower; for latency above 1.00 means slower.');
  console.log(table(['metric', 'direct', 'socat', 'proxy', 'proxy/direct', 'proxy/socat', 'socat/direct', 'better'], rows));
  console.log('');

  // CPU the relay itself burned, per unit of work: what the middleman costs the host.
  const units: Record<Workload, { label: string; per: number }> = {
    ping: { label: `ping sequential, CPU µs per op`, per: PINGS },
    insert: { label: 'insertMany, CPU ms per MB', per: (WRITE_BATCHES * BATCH * DOC_BYTES) / MB },
    find: { label: 'find all, CPU ms per MB', per: (READ_DOCS * READ_DOC_BYTES) / MB },
    pingConcurrent: { label: `ping ${CLIENTS} clients, CPU µs per op`, per: Math.ceil(PINGS / CLIENTS) * CLIENTS },
  };
  const cpuRows = WORKLOADS.map((w) => {
    const scale = w === 'ping' || w === 'pingConcurrent' ? 1000 : 1;
    const [s, p] = (['socat', 'proxy'] as const).map((name) =>
      median((samples.get(key(w, name)) ?? []).map((x) => (x.relayCpuMs * scale) / units[w].per)),
    ) as [number, number];
    return [units[w].label, fmt(s), fmt(p), ratio(p, s)];
  });
  console.log('CPU time of the relay process itself (user+sys from /proc, 10 ms ticks; socat counts its forks):');
  console.log(table(['workload', 'socat', 'proxy', 'proxy/socat'], cpuRows));
  console.log('');

  const spread = metrics.map((m) => [
    m.label,
    ...PATHS.map((name) => (samples.get(key(m.workload, name)) ?? []).map((s) => fmt(m.pick(s) ?? Number.NaN)).join(' / ')),
  ]);
  console.log('Every round (in round order), to judge the noise:');
  console.log(table(['metric', 'direct', 'socat', 'proxy'], spread));
}

await runBench('bench/proxy', TIME_LIMIT_MS, main);
