/**
 * Forwarding overhead: the same driver workloads against the dev server four ways, in
 * one run, and the ratios between them.
 *
 *   direct  driver -> dev server
 *   socat   driver -> socat (a dumb relay in C, one forked process per connection) -> dev server
 *   relay   driver -> bench/relay.ts (a zero-inspection Node relay: socket.pipe both ways) -> dev server
 *   proxy   driver -> `hotbackup serve` (command peek, boundary tracking, interceptor) -> dev server
 *
 * The claim under test: the proxy costs no more than a dumb relay. socat is the relay a
 * user would put there; the Node relay is the floor for anything written on Node's
 * sockets, so proxy/relay is what the proxy's own work costs. Absolute numbers on a
 * shared 2-core VM are noise (the driver, the relay and the dev server share the two
 * cores); ratios measured in the same run are the result.
 *
 * Workloads, each run once per path per round, paths rotated each round:
 *   ping        sequential round trips on one connection: ops/s, p50, p99
 *   findOne x16 16 clients (one connection each) at once, findOne by _id of a 4 KiB
 *               document: total ops/s, p50, p99
 *   insert      insertMany of 1 KiB documents, batches of 1000 (~1 MB messages): MB/s
 *   find        find() of a whole collection of 4 KiB documents, default batches: MB/s
 * Reported per path: the median over rounds. Also the CPU time the relay process (socat
 * and its forks, the Node relay, or the proxy) used during each workload, from /proc.
 *
 *   node dist/bench/proxy.js [--rounds 6] [--budget 140] [--pings 3000] [--finds 4800]
 *                            [--clients 16] [--write-mb 50] [--read-mb 50] [--socat-nagle]
 *                            [--json FILE] [--smoke] [--proxy-cpu-prof DIR] [--proxy-node-args='...']
 *
 * --smoke is one round of tiny workloads (a few seconds), for the test suite: it checks
 * that the benchmark runs, not what it measures. --json writes the result as JSON.
 * --proxy-cpu-prof runs the proxy under `node --cpu-prof` and leaves the profile in DIR;
 * --proxy-node-args passes node flags to the proxy (say --proxy-node-args=--max-semi-space-size=32),
 * to try V8 settings on it against the same baselines.
 *
 * socat runs with `nodelay` on both sides, as the proxy sets TCP_NODELAY on both of its
 * sockets. Without it (--socat-nagle, the command as usually typed) Nagle's algorithm
 * meets delayed ACKs on every ~1 MB insert and socat's insert throughput halves: a
 * baseline that slow would flatter the proxy.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { MongoClient, type Collection, type Document } from 'mongodb';
import { calculateObjectSize } from 'bson';
import { startDevServer, type RunningDevServer } from '../test/helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../test/helpers/proxy.js';
import { spawnCli } from '../test/helpers/cli_process.js';
import { MB, fmt, onCleanup, percentileSorted, printHeader, runRounds, runBench, writeBenchResult, type BenchMetricInput } from './common.js';
import { cpuMsOf, cpuMsOfGroup, startNodeRelay, startSocat } from './proc.js';
import { PATHS, report, type PathName, type Sample, type Workload, type WorkloadSizes } from './proxy_report.js';

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
    finds: { type: 'string', default: '4800' },
    clients: { type: 'string', default: '16' },
    'write-mb': { type: 'string', default: '50' },
    'read-mb': { type: 'string', default: '50' },
    json: { type: 'string' },
    smoke: { type: 'boolean', default: false },
    'proxy-cpu-prof': { type: 'string' },
    'proxy-node-args': { type: 'string' },
  },
  strict: true,
});
const SMOKE = opts.smoke;
/** --smoke overrides the sizes: one round of each workload, small enough to take seconds. */
const num = (name: 'rounds' | 'pings' | 'finds' | 'clients' | 'write-mb' | 'read-mb', smoke: number): number =>
  SMOKE ? smoke : Number(opts[name]);
const ROUNDS = num('rounds', 1);
/** From process start (performance.now() counts from there). */
const BUDGET_MS = Number(opts.budget) * 1000;
const PINGS = num('pings', 200);
const CLIENTS = num('clients', 4);
const FINDS_EACH = Math.max(1, Math.ceil(num('finds', 200) / CLIENTS));
const WRITE_BATCHES = Math.max(1, Math.round((num('write-mb', 2) * MB) / (DOC_BYTES * BATCH)));
const READ_DOCS = Math.max(BATCH, Math.round((num('read-mb', 4) * MB) / READ_DOC_BYTES));

interface Path {
  name: PathName;
  client: MongoClient;
  /** One client per concurrent finder, each with its own connection. */
  finders: MongoClient[];
  /** CPU ms used so far by the relay in this path (0 for direct). */
  relayCpuMs: () => number;
}

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

/** findOne by _id, `count` times, spread over the collection (ids from a fixed stride, no RNG). */
async function findOneLoop(client: MongoClient, worker: number, count: number, latencies: number[]): Promise<void> {
  const read = client.db(DB).collection<{ _id: number }>('read');
  for (let i = 0; i < count; i++) {
    const id = (worker * 7919 + i * 104_729) % READ_DOCS;
    const start = performance.now();
    const found = await read.findOne({ _id: id });
    latencies.push(performance.now() - start);
    if (found === null) throw new Error(`findOne({_id: ${id}}) found nothing`);
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
    case 'findOne': {
      const latencies: number[] = [];
      const { ms, cpu } = await measure(path, async () => {
        await Promise.all(path.finders.map((c, worker) => findOneLoop(c, worker, FINDS_EACH, latencies)));
      });
      return latencySample(latencies, ms, cpu);
    }
    case 'insert': {
      const collection: Collection = path.client.db(DB).collection(`write_${path.name}_${round}`);
      const { ms, cpu } = await measure(path, async () => {
        for (const batch of batches) await collection.insertMany(batch);
      });
      const stored = await collection.countDocuments();
      if (stored !== batches.length * BATCH) throw new Error(`insertMany stored ${stored} documents, expected ${batches.length * BATCH}`);
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

const WORKLOADS: Workload[] = ['ping', 'findOne', 'insert', 'find'];

/**
 * Where the JSON result goes: the file named by --json, if any. A single call site, so
 * that it can be pointed at the shared bench result writer.
 */
function emitResult(result: { metrics: BenchMetricInput[] }): void {
  writeBenchResult('proxy', result);
}

/** `hotbackup serve` in front of the dev server, with node's own flags if asked (--cpu-prof, V8 flags). */
async function startProxyChild(server: RunningDevServer): Promise<RunningProxy> {
  const profileDir = opts['proxy-cpu-prof'];
  const nodeArgs = [
    ...(profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${path.resolve(profileDir)}`]),
    ...(opts['proxy-node-args']?.split(/\s+/).filter((a) => a !== '') ?? []),
  ];
  if (nodeArgs.length === 0) return startProxy(server);
  // NODE_OPTIONS refuses --cpu-prof and most V8 flags: a shell puts them on node's own
  // command line, in front of the CLI's.
  const quoted = nodeArgs.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const wrapper = ['sh', '-c', `exec "$0" ${quoted} "$@"`];
  const cli = await spawnCli(['serve', '--upstream', server.uri, '--port', '0'], 'proxy listening', wrapper);
  return { ...cli, uri: `mongodb://127.0.0.1:${cli.port}/?directConnection=true` };
}

async function main(): Promise<void> {
  for (const bytes of [DOC_BYTES, READ_DOC_BYTES]) {
    if (calculateObjectSize(doc(123456, bytes)) !== bytes) throw new Error(`document size is not ${bytes} B`);
  }
  const sizes: WorkloadSizes = {
    pings: PINGS,
    finds: FINDS_EACH * CLIENTS,
    clients: CLIENTS,
    writeMB: (WRITE_BATCHES * BATCH * DOC_BYTES) / MB,
    readMB: (READ_DOCS * READ_DOC_BYTES) / MB,
  };
  const socatCommand = opts['socat-nagle']
    ? 'socat TCP-LISTEN:<port>,bind=127.0.0.1,reuseaddr,fork TCP:127.0.0.1:<devport>'
    : 'socat TCP-LISTEN:<port>,bind=127.0.0.1,reuseaddr,fork,nodelay TCP:127.0.0.1:<devport>,nodelay';
  const workloads =
    `${ROUNDS} rounds${SMOKE ? ' (smoke)' : ''}; ping x${PINGS}; findOne x${sizes.finds} over ${CLIENTS} clients; ` +
    `insertMany ${WRITE_BATCHES}x${BATCH} docs of ${DOC_BYTES} B (${fmt(sizes.writeMB)} MB); ` +
    `find ${READ_DOCS} docs of ${READ_DOC_BYTES} B (${fmt(sizes.readMB)} MB)`;
  printHeader('bench/proxy: forwarding overhead, direct vs socat vs Node relay vs proxy', {
    socat: socatCommand,
    relay: 'node dist/bench/relay.js (net + socket.pipe both ways, noDelay)',
    workloads,
  });

  // Periodic checkpoints off: one landing in a single path's timed run is pure noise.
  const server = await startDevServer({ args: ['--checkpoint-interval', '0'] });
  onCleanup('dev server', async () => {
    await server.stop();
    server.cleanup();
  });
  const socat = await startSocat(server.port, { nodelay: !opts['socat-nagle'] });
  const relay = await startNodeRelay(server.port);
  const proxy = await startProxyChild(server);
  onCleanup('proxy', () => proxy.stop());
  const proxyPid = proxy.child.pid as number;

  const uris: Record<PathName, string> = { direct: server.uri, socat: socat.uri, relay: relay.uri, proxy: proxy.uri };
  const relayCpu: Record<PathName, () => number> = {
    direct: () => 0,
    socat: () => cpuMsOfGroup(socat.pgid),
    relay: () => cpuMsOf(relay.pid),
    proxy: () => cpuMsOf(proxyPid),
  };
  const paths = {} as Record<PathName, Path>;
  for (const name of PATHS) {
    const client = await connect(uris[name]);
    const finders = await Promise.all(Array.from({ length: CLIENTS }, () => connect(uris[name])));
    paths[name] = { name, client, finders, relayCpuMs: relayCpu[name] };
  }

  // The collection every find and findOne reads, loaded once, directly.
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
    await pingLoop(path.client, SMOKE ? 20 : 200, []);
    await Promise.all(path.finders.map((c, worker) => findOneLoop(c, worker, SMOKE ? 2 : 20, [])));
    const warm = path.client.db(DB).collection(`warmup_${path.name}`);
    await warm.insertMany(makeBatches(1)[0] as Document[]);
    await warm.drop();
    await path.client.db(DB).collection('read').find().limit(2000).toArray();
  }
  console.log(`setup (load ${fmt(sizes.readMB)} MB, warm-up): ${fmt((performance.now() - setupStart) / 1000)} s`);

  const samples = new Map<string, Sample[]>();
  const rounds = await runRounds(PATHS, ROUNDS, BUDGET_MS, async (order, round) => {
    for (const workload of WORKLOADS) {
      for (const name of order) {
        const sample = await runWorkload(workload, paths[name], round, batches);
        const key = `${workload}/${name}`;
        samples.set(key, [...(samples.get(key) ?? []), sample]);
      }
    }
  });
  console.log('');
  const result = report(samples, rounds, sizes);
  emitResult(result);
}

await runBench('bench/proxy', TIME_LIMIT_MS, main);
