/**
 * The copier alone, direct writes against buffered ones (docs/performance.md, section
 * 5): `copyFiles` over a synthetic dbpath-shaped set of files (926 small, four large, one
 * 105 MB log; random, so incompressible), two copy threads, page cache warm, `sync`
 * before each run, the two ways alternated. Prints MB/s and the process's CPU in cores.
 *
 *   node dist/bench/copy_writes.js [--gb 2.2] [--rounds 2] [--json FILE] [--smoke]
 *   node --cpu-prof --cpu-prof-dir=prof dist/bench/copy_writes.js --rounds 1
 *       (one profile per thread: the copy threads' show where their time goes)
 *
 * No target: bench/backup.ts judges the whole backup against cp -a; this shows why the
 * copy writes the way it does. --smoke: 0.02 GB, one round.
 */
import { execFileSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { copyFiles } from '../src/backup/copier.js';
import type { CopyWrites } from '../src/backup/copy_messages.js';
import type { SourceFile } from '../src/backup/copy_types.js';
import { TokenBucket } from '../src/backup/throttle.js';
import { tempDir } from '../test/helpers/paths.js';
import { MB, fmt, median, onCleanup, printHeader, runBench, table, writeBenchResult } from './common.js';

const { values: opts } = parseArgs({
  options: { gb: { type: 'string', default: '2.2' }, rounds: { type: 'string', default: '2' }, json: { type: 'string' }, smoke: { type: 'boolean', default: false } },
  strict: true,
});
const SMOKE = opts.smoke === true;
const SCALE = (SMOKE ? 0.02 : Number(opts.gb)) / 2.2;
const ROUNDS = SMOKE ? 1 : Math.max(1, Number(opts.rounds));

function writeRandomFile(file: string, size: number, buffer: Buffer): void {
  const fd = fs.openSync(file, 'w');
  try {
    for (let offset = 0; offset < size; offset += buffer.length) {
      const n = Math.min(buffer.length, size - offset);
      randomFillSync(buffer, 0, n);
      fs.writeSync(fd, buffer, 0, n, offset);
    }
  } finally {
    fs.closeSync(fd);
  }
}

function makeDataset(dir: string): SourceFile[] {
  const buffer = Buffer.allocUnsafe(8 * 2 ** 20);
  const sizes: [string, number][] = [];
  for (let i = 0; i < 926; i++) sizes.push([`collection-${i}.wt`, Math.round((16_384 + ((i * 7919) % 460_000)) * SCALE)]);
  for (let i = 0; i < 4; i++) sizes.push([`collection-large-${i}.wt`, Math.round(480e6 * SCALE)]);
  sizes.push(['journal/WiredTigerLog.0000000001', Math.round(105e6 * SCALE)]);
  fs.mkdirSync(path.join(dir, 'journal'), { recursive: true });
  return sizes.map(([name, size]) => {
    const file = path.join(dir, name);
    writeRandomFile(file, size, buffer);
    return { path: file, relativePath: name, size };
  });
}

await runBench('copy_writes', 600_000, async () => {
  printHeader('bench/copy_writes: copyFiles with direct and with buffered writes', {
    threads: '2 (the default)',
    rounds: `${ROUNDS}${SMOKE ? ' (smoke)' : ''}; the two ways alternated; page cache warm; sync before each`,
  });
  const work = tempDir('bench-copy-writes');
  onCleanup(`temp dir ${work.dir}`, () => work.remove());
  const files = makeDataset(path.join(work.dir, 'src'));
  const bytes = files.reduce((sum, f) => sum + f.size, 0);
  console.log(`dataset: ${files.length} files, ${fmt(bytes / MB)} MB`);
  const results = new Map<CopyWrites, { mbps: number; cores: number }[]>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const writes of (round % 2 === 0 ? ['direct', 'buffered'] : ['buffered', 'direct']) as CopyWrites[]) {
      const dest = path.join(work.dir, `dest-${round}-${writes}`);
      fs.mkdirSync(dest);
      execFileSync('sync');
      const cpu = process.cpuUsage();
      const from = performance.now();
      await copyFiles(files, dest, { limiter: new TokenBucket(0), writes });
      const ms = performance.now() - from;
      const used = process.cpuUsage(cpu);
      results.set(writes, [...(results.get(writes) ?? []), { mbps: bytes / MB / (ms / 1000), cores: (used.user + used.system) / 1000 / ms }]);
      fs.rmSync(dest, { recursive: true, force: true });
    }
  }
  console.log(
    table(
      ['writes', 'MB/s (median)', 'CPU cores (median)', 'MB/s per round'],
      [...results].map(([writes, runs]) => [writes, fmt(median(runs.map((r) => r.mbps))), fmt(median(runs.map((r) => r.cores))), runs.map((r) => fmt(r.mbps)).join(' / ')]),
    ),
  );
  const of = (writes: CopyWrites, key: 'mbps' | 'cores'): number => median((results.get(writes) ?? []).map((r) => r[key]));
  writeBenchResult('copy_writes', {
    metrics: [
      { name: 'copy MB/s, direct writes', value: of('direct', 'mbps'), unit: 'MB/s', baseline: { name: 'copy MB/s, buffered writes', value: of('buffered', 'mbps') } },
      { name: 'copy CPU, direct writes', value: of('direct', 'cores'), unit: 'cores', baseline: { name: 'copy CPU, buffered writes', value: of('buffered', 'cores') } },
    ],
  });
});
