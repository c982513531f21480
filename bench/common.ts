/**
 * What every benchmark shares: the machine summary and the command line they print,
 * the JSON result they write (writeBenchResult), medians and percentiles, a text table,
 * and a cleanup list that runs on success, on error, on SIGINT/SIGTERM and when the
 * time limit is hit, so no child process or temp directory outlives a run.
 *
 * Absolute numbers on a shared 2-core VM are noise; every benchmark here compares
 * against baselines measured in the same run and prints the ratios.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// ---------------------------------------------------------------- cleanup and time limit

type Cleanup = { what: string; run: () => unknown };
const cleanups: Cleanup[] = [];
let cleaning: Promise<void> | undefined;

/** Registers something to undo; undone in reverse order. Returns a function that undoes it now (once). */
export function onCleanup(what: string, run: () => unknown): () => Promise<void> {
  const entry: Cleanup = { what, run };
  cleanups.push(entry);
  return async () => {
    const index = cleanups.indexOf(entry);
    if (index < 0) return;
    cleanups.splice(index, 1);
    await entry.run();
  };
}

/** Runs every registered cleanup, newest first; never throws. Idempotent. */
export function cleanupAll(): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length > 0) {
      const entry = cleanups.pop() as Cleanup;
      let timer: NodeJS.Timeout | undefined;
      try {
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('timed out after 15 s')), 15_000);
        });
        await Promise.race([Promise.resolve().then(entry.run), timeout]);
      } catch (err) {
        console.error(`cleanup: ${entry.what} failed: ${err instanceof Error ? err.message : String(err)}`);
      } finally {
        clearTimeout(timer);
      }
    }
  })();
  return cleaning;
}

/**
 * Runs `main` with cleanup guaranteed: after it returns or throws, on SIGINT/SIGTERM,
 * and after `limitMs` (then the process exits 2). Sets the exit code.
 */
export async function runBench(name: string, limitMs: number, main: () => Promise<void>): Promise<void> {
  let abandoned = false;
  const abandon = (why: string, code: number) => {
    abandoned = true;
    console.error(`\n${name}: ${why}; cleaning up`);
    void cleanupAll().finally(() => process.exit(code));
  };
  const timer = setTimeout(() => abandon(`time limit of ${limitMs / 1000} s reached`, 2), limitMs);
  timer.unref();
  process.once('SIGINT', () => abandon('SIGINT', 130));
  process.once('SIGTERM', () => abandon('SIGTERM', 143));
  try {
    await main();
  } catch (err) {
    // After a signal or the time limit, what fails next is only the cleanup pulling the rug.
    if (abandoned) return;
    console.error(`${name} failed:`, err);
    process.exitCode = 1;
  } finally {
    clearTimeout(timer);
    await cleanupAll();
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------- what produced the numbers

/** The command as typed, relative to the current directory: `node dist/bench/proxy.js --rounds 3`. */
export function commandLine(): string {
  const script = path.relative(process.cwd(), process.argv[1] ?? '') || (process.argv[1] ?? '');
  const args = process.argv.slice(2).map((a) => (/^[\w./:=@-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`));
  return ['node', ...process.execArgv, script, ...args].join(' ');
}

function tryRun(file: string, args: string[]): string | undefined {
  try {
    return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

/** The filesystem type of `dir`, from `df -T` (second column of its last line). */
export function fsType(dir: string): string {
  const out = tryRun('df', ['-T', dir]);
  return out?.split('\n').at(-1)?.split(/\s+/)[1] ?? 'unknown';
}

/** The machine a result was measured on, as the JSON result records it. */
export interface MachineInfo {
  nproc: number;
  cpu: string;
  memoryGiB: number;
  kernel: string;
  node: string;
  tmpdir: string;
  /** The tmp dir's filesystem type, from `df -T`. */
  tmpdirFs: string;
  /** 1, 5 and 15 minute load averages when the result was written: other work on the machine. */
  loadavg: number[];
}

export function machineInfo(): MachineInfo {
  const tmp = os.tmpdir();
  return {
    nproc: Number(tryRun('nproc', [])) || os.availableParallelism(),
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
    memoryGiB: Number((os.totalmem() / 2 ** 30).toFixed(1)),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    tmpdir: tmp,
    tmpdirFs: fsType(tmp),
    loadavg: os.loadavg().map((l) => Number(l.toFixed(2))),
  };
}

/** nproc, CPU, memory, kernel, node, and the tmp dir's filesystem; one line each. */
export function machineSummary(extra: Record<string, string> = {}): string[] {
  const m = machineInfo();
  const lines: Record<string, string> = {
    nproc: String(m.nproc),
    cpu: m.cpu,
    memory: `${m.memoryGiB} GiB`,
    kernel: m.kernel,
    node: m.node,
    tmpdir: `${m.tmpdir} (${m.tmpdirFs}, from df -T)`,
    ...extra,
  };
  const width = Math.max(...Object.keys(lines).map((k) => k.length));
  return Object.entries(lines).map(([k, v]) => `  ${k.padEnd(width)}  ${v}`);
}

let headerPrintedAt: Date | undefined;
let headerSettings: Record<string, string> = {};

/** The header every benchmark prints first. */
export function printHeader(title: string, extra: Record<string, string> = {}): void {
  headerPrintedAt = new Date();
  headerSettings = extra;
  console.log(`# ${title}`);
  console.log(`$ ${commandLine()}`);
  console.log(`started ${headerPrintedAt.toISOString()}`);
  for (const line of machineSummary(extra)) console.log(line);
  console.log('');
}

// ---------------------------------------------------------------- the JSON result

/**
 * A benchmark's result file (`bench/results/<bench>.json`, or the path given with
 * `--json`), one per run, for bench/run_all.ts's summary and for comparing runs:
 *
 *   {
 *     bench: 'throttle',                         // the name given to writeBenchResult
 *     command: 'node dist/bench/throttle.js --rounds 2',
 *     startedAt: '2026-11-30T15:08:17.385Z',     // when the header was printed
 *     smoke: false,                              // --smoke: figures too small to mean anything
 *     machine: { nproc, cpu, memoryGiB, kernel, node, tmpdir, tmpdirFs, loadavg },
 *     settings: { rounds: '2', ... },            // the header's extra lines, as printed
 *     metrics: [{
 *       name: 'backupStart 8→32 MiB/s: lag of the raise',
 *       value: 27.5, unit: 'ms',                 // the median over rounds, unless the name says otherwise
 *       baseline?: { name: 'cp -a', value: 951 },   // measured in the same run, same unit
 *       ratio?: 0.52,                            // value ÷ baseline.value unless given
 *       target?: { op: '>=', value: 1.2 },       // what the issue asks of the ratio (or of the value when there is no ratio)
 *       pass?: true,                             // ratio ?? value meets the target; false when it is not finite
 *     }],
 *   }
 *
 * Figures that are not finite (a rate over no time) are written as null.
 */
export interface BenchTarget {
  op: '>=' | '<=';
  value: number;
}

export interface BenchMetric {
  name: string;
  value: number;
  unit: string;
  baseline?: { name: string; value: number };
  ratio?: number;
  target?: BenchTarget;
  pass?: boolean;
}

export interface BenchResult {
  bench: string;
  command: string;
  startedAt: string;
  smoke: boolean;
  machine: MachineInfo;
  settings: Record<string, string>;
  metrics: BenchMetric[];
}

/** What a benchmark hands over: ratio and pass are derived here when not given. */
export type BenchMetricInput = Omit<BenchMetric, 'pass'>;

const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Where results go without --json (git-ignored). */
export const RESULTS_DIR = path.join(PROJECT_ROOT, 'bench', 'results');

/** The value of `--json PATH` or `--json=PATH` on this process's command line. */
function jsonFlag(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--json') return argv[i + 1];
    if (arg.startsWith('--json=')) return arg.slice('--json='.length);
  }
  return undefined;
}

export function completeMetric(input: BenchMetricInput): BenchMetric {
  const ratio = input.ratio ?? (input.baseline === undefined ? undefined : input.value / input.baseline.value);
  const compared = ratio ?? input.value;
  const metric: BenchMetric = { ...input, ...(ratio === undefined ? {} : { ratio }) };
  if (input.target !== undefined) {
    const { op, value } = input.target;
    metric.pass = Number.isFinite(compared) && (op === '>=' ? compared >= value : compared <= value);
  }
  return metric;
}

/**
 * Writes the result of benchmark `name` (see BenchResult for the shape) to the path of
 * `--json`, or to bench/results/<name>.json; prints and returns the path.
 */
export function writeBenchResult(name: string, result: { metrics: readonly BenchMetricInput[] }): string {
  const argv = process.argv.slice(2);
  const file = path.resolve(jsonFlag(argv) ?? path.join(RESULTS_DIR, `${name}.json`));
  const full: BenchResult = {
    bench: name,
    command: commandLine(),
    startedAt: (headerPrintedAt ?? new Date(performance.timeOrigin)).toISOString(),
    smoke: argv.includes('--smoke'),
    machine: machineInfo(),
    settings: headerSettings,
    metrics: result.metrics.map(completeMetric),
  };
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${JSON.stringify(full, null, 2)}\n`);
  const shown = path.relative(process.cwd(), file);
  console.log(`result written to ${shown.startsWith('..') ? file : shown}`);
  return file;
}

// ---------------------------------------------------------------- statistics and formatting

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Nearest-rank percentile (p in 0..100) of already sorted values. */
export function percentileSorted(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] as number;
}

/** A number with about three significant digits, no exponent. */
export function fmt(value: number, digits = 3): string {
  if (!Number.isFinite(value)) return 'n/a';
  if (value === 0) return '0';
  const magnitude = Math.floor(Math.log10(Math.abs(value)));
  const decimals = Math.max(0, digits - 1 - magnitude);
  return value.toFixed(Math.min(decimals, 6));
}

export function ratio(a: number, b: number): string {
  return Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? (a / b).toFixed(2) : 'n/a';
}

export const MB = 1e6;
export const MiB = 2 ** 20;

/** A plain text table: first column left-aligned, the rest right-aligned. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [header, ...rows];
  const widths = header.map((_, c) => Math.max(...all.map((row) => (row[c] ?? '').length)));
  const line = (row: readonly string[]) =>
    row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] as number) : cell.padStart(widths[c] as number))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** Rotates `items` left by `by`: round r of a benchmark runs the paths in rotate(paths, r) order. */
export function rotate<T>(items: readonly T[], by: number): T[] {
  const n = items.length;
  const k = ((by % n) + n) % n;
  return [...items.slice(k), ...items.slice(0, k)];
}

/**
 * Runs up to `rounds` rounds, each over `items` rotated by the round number, and stops
 * early when another round (as long as the longest so far) would end past `budgetMs`
 * since the process started. Returns how many rounds ran.
 */
export async function runRounds<T extends string>(
  items: readonly T[],
  rounds: number,
  budgetMs: number,
  body: (order: T[], round: number) => Promise<void>,
): Promise<number> {
  let done = 0;
  let longestRoundMs = 0;
  for (let round = 0; round < rounds; round++) {
    if (round > 0 && performance.now() + longestRoundMs > budgetMs) {
      console.log(`stopping after ${round} rounds: another would end past the ${budgetMs / 1000} s budget`);
      break;
    }
    const order = rotate(items, round);
    const roundStart = performance.now();
    await body(order, round);
    const roundMs = performance.now() - roundStart;
    longestRoundMs = Math.max(longestRoundMs, roundMs);
    done++;
    console.log(`round ${round + 1}/${rounds} (order ${order.join(', ')}): ${fmt(roundMs / 1000)} s`);
  }
  return done;
}
