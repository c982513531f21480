/**
 * Backup throughput to S3: an unthrottled `backupStart: "s3://bucket/prefix"` through the
 * proxy against `s3cmd put --recursive` of the same files, to the same real S3 server (a
 * one-node Ceph radosgw on this machine, test/helpers/radosgw.ts), in one run.
 *
 *   backupStart   the proxy's whole S3 backup, timed at the client: backup cursor,
 *                 reads, XXH3 of every byte, uploads (multipart for large files), the
 *                 marker and the manifest objects
 *   s3cmd put     `s3cmd -c <generated config> put --recursive <dir>/ s3://bucket/<p>/`
 *                 of a copy of the files a backup cursor lists (taken untimed, before the
 *                 rounds): what an operator would otherwise type; s3cmd's defaults (one
 *                 file at a time, 15 MiB multipart chunks, an MD5 of every file)
 *
 * Target (issue 14): backupStart ÷ s3cmd put >= 1.0 in MB/s.
 *
 * Both write to the same bucket of the same radosgw, each round to fresh prefixes,
 * deleted (untimed) after each run. The page cache is warm: the dataset was just
 * written, the staged copy read, and a warm-up backup reads every file. The bytes
 * counted are what the run left in S3 under its prefix (the manifest and marker left
 * out), so a method that uploaded less cannot look faster. s3cmd's credentials are in a
 * config file in the run's temp dir (mode 0600), never in the user's home or in argv.
 *
 *   node dist/bench/s3.js [--gb 0.4] [--rounds 3] [--budget 120] [--json FILE] [--smoke]
 *
 * --smoke: 0.03 GB and one round (seconds), to check the bench runs, not what it measures.
 * Needs Ceph (ceph-mon, ceph-osd, radosgw, ceph-common) and s3cmd: scripts/install.sh.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { MongoClient } from 'mongodb';
import { startBenchStack } from './stack.js';
import { MB, fmt, median, onCleanup, printHeader, ratio, runBench, runRounds, table, writeBenchResult, type BenchMetricInput } from './common.js';
import { describeDataset, growDataset, settle } from './dataset.js';
import { openBackupCursor, closeBackupCursor } from '../test/helpers/backup_cursor_spy.js';
import { missingCommands, radosgwAvailable, startRadosgw, type Radosgw } from '../test/helpers/radosgw.js';
import { deleteObjects, listObjects } from '../src/s3/s3_objects.js';

const exec = promisify(execFile);
/** Hard stop: cleanup and exit 2. The round budget (--budget) normally ends the run well before. */
const TIME_LIMIT_MS = 170_000;

const { values: opts } = parseArgs({
  options: {
    gb: { type: 'string', default: '0.4' },
    rounds: { type: 'string', default: '3' },
    /** Rounds stop early (at least one runs) when the next would end past this many seconds. */
    budget: { type: 'string', default: '120' },
    json: { type: 'string' },
    smoke: { type: 'boolean', default: false },
  },
  strict: true,
});
const SMOKE = opts.smoke === true;
const DATA_BYTES = (SMOKE ? 0.03 : Number(opts.gb)) * 1e9;
const ROUNDS = SMOKE ? 1 : Math.max(1, Number(opts.rounds));
const BUDGET_MS = Number(opts.budget) * 1000;

type Method = 'backupStart' | 's3cmd put';
const METHODS: Method[] = ['backupStart', 's3cmd put'];
/** Objects of ours that are not files of the database. */
const BOOKKEEPING = new Set(['hotbackup-manifest.json', 'hotbackup-incomplete.json']);

interface Run {
  ms: number;
  bytes: number;
  objects: number;
}

/**
 * An s3cmd configuration for this radosgw: path-style (host_bucket without
 * `%(bucket)s`), plain HTTP, signature v4. Written in the run's temp dir, mode 0600.
 */
function writeS3cmdConfig(rgw: Radosgw, file: string): void {
  const host = new URL(rgw.endpoint).host;
  const lines = [
    '[default]',
    `access_key = ${rgw.accessKeyId}`,
    `secret_key = ${rgw.secretAccessKey}`,
    `host_base = ${host}`,
    `host_bucket = ${host}`,
    `bucket_location = ${rgw.region}`,
    'use_https = False',
    'signature_v2 = False',
    'progress_meter = False',
  ];
  fs.writeFileSync(file, `${lines.join('\n')}\n`, { mode: 0o600 });
}

/** What is under `prefix` in S3: the database's files (bookkeeping objects left out). */
async function tallyPrefix(rgw: Radosgw, bucket: string, prefix: string): Promise<{ bytes: number; objects: number; keys: string[] }> {
  let bytes = 0;
  let objects = 0;
  const keys: string[] = [];
  for await (const object of listObjects(rgw.client(), { bucket, prefix })) {
    keys.push(object.key);
    if (BOOKKEEPING.has(path.posix.basename(object.key))) continue;
    bytes += object.size;
    objects++;
  }
  return { bytes, objects, keys };
}

async function removePrefix(rgw: Radosgw, bucket: string, keys: readonly string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 1000) await deleteObjects(rgw.client(), bucket, keys.slice(i, i + 1000));
}

/** The files a backup cursor lists, copied (cp -a --parents) into `dest`: what s3cmd uploads. */
async function stageBackupFiles(direct: MongoClient, dbpath: string, dest: string): Promise<{ files: number; bytes: number }> {
  const cursor = await openBackupCursor(direct);
  try {
    const names = cursor.files.map((f) => path.relative(dbpath, f.filename));
    fs.mkdirSync(dest);
    await exec('cp', ['-a', '--parents', ...names, dest], { cwd: dbpath, maxBuffer: 16 * MB });
    return { files: names.length, bytes: cursor.files.reduce((sum, f) => sum + f.fileSize, 0) };
  } finally {
    await closeBackupCursor(direct, cursor);
  }
}

async function main(): Promise<void> {
  const available = radosgwAvailable();
  if (!available.ok) throw new Error(available.reason);
  if (missingCommands(['s3cmd']).length > 0) throw new Error('s3cmd is not installed: scripts/install.sh installs it');
  printHeader('bench/s3: backupStart to S3 (Ceph radosgw on this machine) vs s3cmd put --recursive of the same files', {
    data: `${fmt(DATA_BYTES / 1e9)} GB of documents (bench/dataset.ts: many small collections, 4 large, the journal)`,
    rounds: `${ROUNDS}${SMOKE ? ' (smoke)' : ''}; methods rotated each round; page cache warm; objects deleted after each run`,
    s3: 'one-node Ceph radosgw 16 (mon, bluestore OSD on a sparse file, beast frontend) on 127.0.0.1, started by test/helpers/radosgw.ts',
    s3cmd: 's3cmd put --recursive with its defaults, -c <generated config>',
    units: 'MB = 10^6 bytes',
  });

  const booting = performance.now();
  // Sparse: only what is written takes disk space; deleted objects wait for radosgw's GC.
  const rgw = await startRadosgw({ osdBytes: 64 * 1024 ** 3 });
  onCleanup('radosgw', () => rgw.stop());
  console.log(`radosgw up in ${fmt((performance.now() - booting) / 1000)} s at ${rgw.endpoint}`);
  const bucket = await rgw.createBucket('bench-s3');

  const { workDir, server, client } = await startBenchStack('bench-s3', rgw.env());
  const admin = client.db('admin');
  const direct = new MongoClient(server.uri, { serverSelectionTimeoutMS: 10_000, maxPoolSize: 6 });
  onCleanup('driver client (direct)', () => direct.close(true));
  await direct.connect();
  console.log(describeDataset(await growDataset(direct, server.dbpath, DATA_BYTES)));
  await admin.command({ backupThrottle: 0 });

  const s3cfg = path.join(workDir, 's3cfg');
  writeS3cmdConfig(rgw, s3cfg);
  await settle(direct, server.dbpath);
  const staged = path.join(workDir, 'staged');
  const stagedTally = await stageBackupFiles(direct, server.dbpath, staged);
  console.log(`staged for s3cmd: the ${stagedTally.files} files a backup cursor lists, ${fmt(stagedTally.bytes / MB)} MB`);

  const runOnce = async (method: Method, prefix: string): Promise<Run> => {
    await settle(direct, server.dbpath);
    await exec('sync', []);
    const from = performance.now();
    if (method === 'backupStart') {
      const reply = await admin.command({ backupStart: `s3://${bucket}/${prefix}` });
      if (reply['ok'] !== 1) throw new Error(`backupStart: ${JSON.stringify(reply)}`);
    } else {
      await exec('s3cmd', ['-c', s3cfg, '--quiet', 'put', '--recursive', `${staged}/`, `s3://${bucket}/${prefix}/`], { maxBuffer: 16 * MB });
    }
    const ms = performance.now() - from;
    if (method === 'backupStart') {
      const last = (await admin.command({ backupStatus: 1 }))['last'] as { ok?: boolean } | undefined;
      if (last?.ok !== true) throw new Error(`backup outcome: ${JSON.stringify(last)}`);
    }
    const { bytes, objects, keys } = await tallyPrefix(rgw, bucket, prefix);
    await removePrefix(rgw, bucket, keys);
    return { ms, bytes, objects };
  };

  // Warm-up (untimed): reads every source file, warms the proxy's code and radosgw.
  const warm = await runOnce('backupStart', 'warmup');
  console.log(`warm-up backupStart: ${fmt(warm.ms / 1000)} s, ${warm.objects} objects, ${fmt(warm.bytes / MB)} MB`);
  console.log('');

  const runs = new Map<Method, Run[]>();
  const rounds = await runRounds(METHODS, ROUNDS, BUDGET_MS, async (order, round) => {
    for (const method of order) {
      const run = await runOnce(method, `r${round}-${method.replace(/\W+/g, '_')}`);
      runs.set(method, [...(runs.get(method) ?? []), run]);
    }
  });
  console.log('');

  const of = (m: Method): Run[] => runs.get(m) ?? [];
  const rate = (r: Run) => r.bytes / MB / (r.ms / 1000);
  const medRate = (m: Method) => median(of(m).map(rate));
  const all = [...runs.values()].flat();
  const [least, most] = [Math.min(...all.map((r) => r.bytes)), Math.max(...all.map((r) => r.bytes))];
  if (most - least > most / 100) console.log(`note: the runs left between ${fmt(least / MB)} and ${fmt(most / MB)} MB in S3`);
  console.log(`Medians over ${rounds} round${rounds === 1 ? '' : 's'}. MB/s: higher is better; backupStart/x below 1.00 means backupStart is slower.`);
  console.log(
    table(
      ['method', 'MB/s', 'backupStart/x', 'objects', 'MB in S3', 'MB/s per round'],
      METHODS.map((m) => [m, fmt(medRate(m)), ratio(medRate('backupStart'), medRate(m)), String(of(m)[0]?.objects ?? '?'), fmt((of(m)[0]?.bytes ?? Number.NaN) / MB), of(m).map((r) => fmt(rate(r))).join(' / ')]),
    ),
  );
  const rss = await exec('ps', ['-o', 'rss=,comm=', '-p', rgw.pids().join(',')]).then(
    (r) => r.stdout.trim().split('\n').map((line) => line.trim().split(/\s+/)).map(([kb, comm]) => `${comm} ${fmt(Number(kb) / 1024)} MiB`).join(', '),
    () => 'n/a',
  );
  console.log(`radosgw's daemons' RSS after the runs: ${rss}`);

  const ours = medRate('backupStart');
  const baseline = { name: 's3cmd put --recursive MB/s', value: medRate('s3cmd put') };
  const metrics: BenchMetricInput[] = [
    { name: 'backupStart to S3 MB/s', value: ours, unit: 'MB/s' },
    { name: 'backupStart to S3 ÷ s3cmd put --recursive', value: ours, unit: 'MB/s', baseline, target: { op: '>=', value: 1.0 } },
  ];
  console.log('');
  console.log('Target (issue 14):');
  console.log(table(['ratio of MB/s', 'measured', 'target', 'holds'], [['backupStart ÷ s3cmd put', ratio(ours, baseline.value), '>= 1.0', ours >= baseline.value ? 'yes' : 'NO']]));
  writeBenchResult('s3', { metrics });
}

await runBench('bench/s3', TIME_LIMIT_MS, main);
