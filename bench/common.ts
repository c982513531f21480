/**
 * What both benchmarks share: the machine summary and the command line they print,
 * medians and percentiles, a text table, and a cleanup list that runs on success, on
 * error, on SIGINT/SIGTERM and when the time limit is hit, so no child process or
 * temp directory outlives a run.
 *
 * Absolute numbers on a shared 2-core VM are noise; every benchmark here compares
 * against baselines measured in the same run and prints the ratios.
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';

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

/** nproc, CPU, memory, kernel, node, and the tmp dir's filesystem; one line each. */
export function machineSummary(extra: Record<string, string> = {}): string[] {
  const tmp = os.tmpdir();
  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown';
  const lines: Record<string, string> = {
    nproc: tryRun('nproc', []) ?? String(os.availableParallelism()),
    cpu,
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    tmpdir: `${tmp} (${fsType(tmp)}, from df -T)`,
    ...extra,
  };
  const width = Math.max(...Object.keys(lines).map((k) => k.length));
  return Object.entries(lines).map(([k, v]) => `  ${k.padEnd(width)}  ${v}`);
}

/** The header every benchmark prints first. */
export function printHeader(title: string, extra: Record<string, string> = {}): void {
  console.log(`# ${title}`);
  console.log(`$ ${commandLine()}`);
  console.log(`started ${new Date().toISOString()}`);
  for (const line of machineSummary(extra)) console.log(line);
  console.log('');
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
