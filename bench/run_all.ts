/**
 * `npm run bench`: every benchmark, one after another, each as a child process with its
 * output passed through, sized so that the whole run fits in 10 minutes on 2 cores;
 * then one table of every ratio beside its target, PASS or MISS.
 *
 * Each benchmark takes `--json FILE` (where it writes its result, see writeBenchResult
 * in bench/common.ts) and `--smoke` (a run of seconds that checks it works, not what it
 * measures); the sizes below are its own flags. A benchmark gets `capSecs`, fewer if the
 * run's `--total` is running out: then SIGTERM (it cleans up, as on Ctrl-C) and, 30 s
 * later, SIGKILL to its whole process group, which it leads (it is spawned detached), so
 * that nothing it started survives it. One that exits leaving processes in its group
 * fails, and they are killed.
 *
 * Exit code: 0 when every benchmark ran and wrote its result, 1 otherwise. A MISS is a
 * finding, not a failure: on a shared machine one run's ratios are not a verdict.
 *
 *   node dist/bench/run_all.js [--smoke] [--only proxy,throttle] [--results-dir DIR] [--total SECS]
 *
 * --results-dir: where the results go (bench/results by default, git-ignored); each
 * benchmark's file is removed before it runs, so a failed run leaves no stale result.
 * --total: seconds the benchmarks may take together (710, the caps' sum: a run that
 * hits every cap; a typical run takes about 7 minutes with the build).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { RESULTS_DIR, fmt, onCleanup, printHeader, runBench, table, type BenchMetric, type BenchResult } from './common.js';

export interface BenchSpec {
  /** dist/bench/<name>.js; also the name of its result. */
  name: string;
  /** What it measures, for the header. */
  what: string;
  /** Its flags for the full run: smaller than its defaults, so that the sum fits. */
  args: readonly string[];
  /** When it is stopped (SIGTERM) in the full run, seconds. */
  capSecs: number;
}

/** In the order they run. The caps add up to the default --total. */
export const BENCHES: readonly BenchSpec[] = [
  { name: 'proxy', what: 'forwarding: proxy vs socat vs a Node relay vs direct', args: ['--budget', '90'], capSecs: 120 },
  { name: 'backup', what: 'backup copy throughput vs cp -a (+ fsync)', args: ['--budget', '110'], capSecs: 150 },
  { name: 'copy_writes', what: 'the copier alone: direct against buffered writes', args: ['--gb', '0.8', '--rounds', '2'], capSecs: 30 },
  { name: 'throttle', what: 'throttle accuracy and raise lag', args: ['--rounds', '2'], capSecs: 70 },
  { name: 'impact', what: 'application impact of a backup, proxy memory', args: ['--budget', '80'], capSecs: 200 },
  // ~35 s; needs root and a loop device for its XFS (it says so and fails without them).
  { name: 'strategies', what: 'writes blocked, and a writer\'s waits: backupCursor, reflink, fsyncLock on XFS', args: ['--rounds', '2'], capSecs: 50 },
  // ~40 s; needs Ceph and s3cmd (scripts/install.sh; it says so and fails without them).
  { name: 's3', what: 'backup to S3 (a local Ceph radosgw) vs s3cmd put --recursive', args: ['--gb', '0.3', '--rounds', '2'], capSecs: 90 },
];

/** A smoke run takes seconds; this only catches one that hangs. */
const SMOKE_CAP_SECS = 120;
/** From SIGTERM to SIGKILL of the group when a benchmark runs out of time. */
const KILL_GRACE_MS = 30_000;
/** The same on Ctrl-C, inside cleanupAll's 15 s per entry. */
const ABANDON_GRACE_MS = 12_000;

type Status = 'ok' | 'failed' | 'timed out' | 'no result' | 'missing' | 'not run';

interface Outcome {
  spec: BenchSpec;
  status: Status;
  seconds?: number;
  detail: string;
  result?: BenchResult;
}

const DIST_BENCH = path.dirname(fileURLToPath(import.meta.url));

/** Relative to the current directory when inside it. */
function shown(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative === '' || relative.startsWith('..') ? file : relative;
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Runs one benchmark to its end, or to `capMs` and then its stop. */
async function runOne(spec: BenchSpec, args: readonly string[], capMs: number, resultFile: string): Promise<Outcome> {
  const script = path.join(DIST_BENCH, `${spec.name}.js`);
  if (!fs.existsSync(script)) return { spec, status: 'missing', detail: `${shown(script)} is not built (no bench/${spec.name}.ts?)` };
  fs.rmSync(resultFile, { force: true });
  const argv = [script, ...args, '--json', resultFile];
  console.log(`\n=== bench/${spec.name}: ${spec.what} (stopped if it runs past ${fmt(capMs / 1000)} s)`);
  const started = performance.now();
  const child = spawn(process.execPath, argv, { stdio: ['ignore', 'inherit', 'inherit'], detached: true });
  const pgid = child.pid as number;
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  /** SIGTERM, then after `graceMs` SIGKILL to everything in its group. */
  const stop = async (graceMs: number): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const late = await Promise.race([
      exited.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), graceMs);
      }),
    ]);
    clearTimeout(timer);
    if (late || groupAlive(pgid)) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    await exited;
  };
  const undo = onCleanup(`bench/${spec.name} (pgid ${pgid})`, () => stop(ABANDON_GRACE_MS));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    console.error(`\nbench/${spec.name}: ${fmt(capMs / 1000)} s are up; stopping it`);
    void stop(KILL_GRACE_MS);
  }, capMs);
  const [code, signal] = await exited;
  clearTimeout(timer);
  const seconds = (performance.now() - started) / 1000;
  const leftovers = groupAlive(pgid);
  await undo();
  if (timedOut) return { spec, status: 'timed out', seconds, detail: `stopped after ${fmt(capMs / 1000)} s` };
  if (code !== 0) return { spec, status: 'failed', seconds, detail: signal === null ? `exit code ${code}` : `killed by ${signal}` };
  if (leftovers) return { spec, status: 'failed', seconds, detail: 'it left processes behind (killed now)' };
  if (!fs.existsSync(resultFile)) return { spec, status: 'no result', seconds, detail: `exit code 0 but no ${resultFile}` };
  const result = JSON.parse(fs.readFileSync(resultFile, 'utf8')) as BenchResult;
  if (!Array.isArray(result.metrics)) return { spec, status: 'no result', seconds, detail: `${resultFile} has no metrics` };
  return { spec, status: 'ok', seconds, detail: shown(resultFile), result };
}

function verdict(metric: BenchMetric): string {
  if (metric.target === undefined) return '';
  return metric.pass === true ? 'PASS' : 'MISS';
}

function summary(outcomes: readonly Outcome[], totalSecs: number, limitSecs: number): void {
  console.log('\n# npm run bench: summary');
  console.log(table(['bench', 'status', 'seconds', 'result'], outcomes.map((o) => [o.spec.name, o.status, o.seconds === undefined ? '-' : fmt(o.seconds), o.detail])));
  const rows: string[][] = [];
  for (const o of outcomes) {
    for (const m of o.result?.metrics ?? []) {
      if (m.ratio === undefined && m.target === undefined) continue;
      // JSON has null where a figure was not finite; fmt shows it as n/a.
      const num = (n: number | null | undefined) => fmt(n ?? Number.NaN);
      rows.push([
        `${o.spec.name}: ${m.name}`,
        `${num(m.value)} ${m.unit}`,
        m.baseline === undefined ? '' : `${m.baseline.name}: ${num(m.baseline.value)}`,
        m.ratio === undefined ? '' : num(m.ratio),
        m.target === undefined ? '' : `${m.target.op} ${m.target.value}`,
        verdict(m),
      ]);
    }
  }
  console.log('');
  console.log('Every ratio, and every figure with a target (the target applies to the ratio where there is one):');
  console.log(rows.length === 0 ? '(no results)' : table(['figure', 'value', 'baseline (same run)', 'ratio', 'target', ''], rows));
  const judged = rows.map((r) => r[5]).filter((v) => v !== '');
  const count = (v: string) => judged.filter((j) => j === v).length;
  console.log('');
  console.log(`${judged.length} target${judged.length === 1 ? '' : 's'}: ${count('PASS')} PASS, ${count('MISS')} MISS`);
  console.log(`benchmarks took ${fmt(totalSecs)} s of the ${limitSecs} s allowed`);
}

async function main(): Promise<void> {
  const { values: opts } = parseArgs({
    options: {
      smoke: { type: 'boolean', default: false },
      only: { type: 'string' },
      'results-dir': { type: 'string' },
      total: { type: 'string', default: '710' },
    },
    strict: true,
  });
  const smoke = opts.smoke === true;
  const only = opts.only?.split(',').map((n) => n.trim());
  const unknown = only?.filter((n) => !BENCHES.some((b) => b.name === n)) ?? [];
  if (unknown.length > 0) throw new Error(`--only: no benchmark named ${unknown.join(', ')} (there are ${BENCHES.map((b) => b.name).join(', ')})`);
  const selected = BENCHES.filter((b) => only === undefined || only.includes(b.name));
  const resultsDir = path.resolve(opts['results-dir'] ?? RESULTS_DIR);
  const limitSecs = Number(opts.total);
  printHeader('npm run bench: every benchmark, one after another', {
    benchmarks: selected.map((b) => (smoke ? `${b.name} --smoke` : [b.name, ...b.args].join(' '))).join('; '),
    results: shown(resultsDir),
    limit: `${limitSecs} s for all of them${smoke ? ` (smoke: ${SMOKE_CAP_SECS} s each)` : ''}`,
  });

  const started = performance.now();
  const outcomes: Outcome[] = [];
  for (const spec of selected) {
    const leftMs = limitSecs * 1000 - (performance.now() - started);
    const capMs = smoke ? SMOKE_CAP_SECS * 1000 : Math.min(spec.capSecs * 1000, leftMs);
    if (capMs < 10_000) {
      outcomes.push({ spec, status: 'not run', detail: `${fmt(leftMs / 1000)} s were left of --total ${limitSecs}` });
      continue;
    }
    outcomes.push(await runOne(spec, smoke ? ['--smoke'] : spec.args, capMs, path.join(resultsDir, `${spec.name}.json`)));
  }
  summary(outcomes, (performance.now() - started) / 1000, limitSecs);
  if (outcomes.some((o) => o.status !== 'ok')) process.exitCode = 1;
}

// Imported by the smoke test for BENCHES; run only as a script.
if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  // The runner's own limit is a backstop: each benchmark is stopped at its cap first.
  await runBench('npm run bench', 900_000, main);
}
