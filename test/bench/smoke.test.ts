/**
 * The benchmarks must not rot unseen: `npm run bench --smoke` (bench/run_all.ts) runs
 * every benchmark that is built, each in its --smoke mode, as child processes, and each
 * must exit 0 and write a result of the shape bench/common.ts documents, with finite
 * numbers. Nothing here judges the figures: a smoke run is too small to mean anything,
 * and the machine may be loaded.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BENCHES } from '../../bench/run_all.js';
import { completeMetric } from '../../bench/common.js';
import { tempDir } from '../helpers/paths.js';
import { loopFsUnavailable } from '../helpers/loop_fs.js';
import { missingCommands, radosgwAvailable } from '../helpers/radosgw.js';

const DIST_BENCH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench');
/** Why a benchmark cannot run on this machine: bench/strategies mounts an XFS on a loop device; bench/s3 runs Ceph. */
const NEEDS: Readonly<Record<string, () => string | undefined>> = {
  strategies: () => loopFsUnavailable('xfs'),
  s3: () => {
    const rgw = radosgwAvailable();
    if (!rgw.ok) return rgw.reason;
    return missingCommands(['s3cmd']).length > 0 ? 's3cmd is not installed (scripts/install.sh installs it)' : undefined;
  },
};
/** bench/impact.ts may not exist yet on every branch; the rest always do. */
const present = BENCHES.filter((spec) => fs.existsSync(path.join(DIST_BENCH, `${spec.name}.js`)));
const built = present.filter((spec) => NEEDS[spec.name]?.() === undefined);
const cannotRun = present.flatMap((spec) => {
  const why = NEEDS[spec.name]?.();
  return why === undefined ? [] : [{ name: spec.name, why }];
});

type Json = Record<string, unknown>;

function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

function assertNonEmptyString(value: unknown, what: string): void {
  assert.ok(typeof value === 'string' && value.length > 0, `${what} is a non-empty string: ${JSON.stringify(value)}`);
}

/** The documented shape (BenchResult in bench/common.ts), every number finite. */
function assertResultShape(result: Json, bench: string): void {
  assert.equal(result['bench'], bench);
  assertNonEmptyString(result['command'], 'command');
  assert.match(String(result['command']), new RegExp(`dist/bench/${bench}\\.js .*--smoke`));
  assert.equal(result['smoke'], true);
  assert.ok(!Number.isNaN(Date.parse(String(result['startedAt']))), `startedAt is a date: ${String(result['startedAt'])}`);

  const machine = result['machine'] as Json;
  for (const key of ['nproc', 'memoryGiB']) assert.ok(isFiniteNumber(machine[key]) && machine[key] > 0, `machine.${key}: ${String(machine[key])}`);
  for (const key of ['cpu', 'kernel', 'node', 'tmpdir', 'tmpdirFs']) assertNonEmptyString(machine[key], `machine.${key}`);
  const loadavg = machine['loadavg'];
  assert.ok(Array.isArray(loadavg) && loadavg.length === 3 && loadavg.every(isFiniteNumber), `machine.loadavg: ${JSON.stringify(loadavg)}`);
  assert.equal(typeof result['settings'], 'object');

  const metrics = result['metrics'];
  assert.ok(Array.isArray(metrics) && metrics.length > 0, 'at least one metric');
  for (const metric of metrics as Json[]) {
    const name = String(metric['name']);
    assertNonEmptyString(metric['name'], 'metric name');
    assert.ok(isFiniteNumber(metric['value']), `${name}: value ${String(metric['value'])}`);
    assertNonEmptyString(metric['unit'], `${name}: unit`);
    const baseline = metric['baseline'] as Json | undefined;
    if (baseline !== undefined) {
      assertNonEmptyString(baseline['name'], `${name}: baseline name`);
      assert.ok(isFiniteNumber(baseline['value']), `${name}: baseline value ${String(baseline['value'])}`);
      // A smoke run's half-second windows can see no operation at all on a stalled
      // machine: a baseline of 0 has no ratio (JSON null), and that is not a defect.
      if (baseline['value'] !== 0) assert.ok(isFiniteNumber(metric['ratio']), `${name}: a metric with a baseline has a finite ratio, not ${String(metric['ratio'])}`);
    } else if (metric['ratio'] !== undefined) {
      assert.ok(isFiniteNumber(metric['ratio']), `${name}: ratio ${String(metric['ratio'])}`);
    }
    const target = metric['target'] as Json | undefined;
    if (target === undefined) {
      assert.equal(metric['pass'], undefined, `${name}: no target, no verdict`);
    } else {
      assert.ok(target['op'] === '>=' || target['op'] === '<=', `${name}: target op ${String(target['op'])}`);
      assert.ok(isFiniteNumber(target['value']), `${name}: target value`);
      assert.equal(typeof metric['pass'], 'boolean', `${name}: a target has a verdict`);
    }
  }
}

describe('writeBenchResult derives the ratio and the verdict', () => {
  it('takes the ratio to the baseline, and judges the ratio where there is one', () => {
    const metric = completeMetric({ name: 'm', value: 3, unit: 'MB/s', baseline: { name: 'b', value: 4 }, target: { op: '>=', value: 0.8 } });
    assert.equal(metric.ratio, 0.75);
    assert.equal(metric.pass, false);
    assert.equal(completeMetric({ name: 'm', value: 90, unit: 'ms', target: { op: '<=', value: 100 } }).pass, true);
    assert.equal(completeMetric({ name: 'm', value: 110, unit: 'ms', target: { op: '<=', value: 100 } }).pass, false);
  });

  it('fails a target it cannot judge, and leaves a metric without one unjudged', () => {
    assert.equal(completeMetric({ name: 'm', value: Number.NaN, unit: 'ms', target: { op: '<=', value: 100 } }).pass, false);
    assert.equal(completeMetric({ name: 'm', value: 1, unit: 'ms', baseline: { name: 'b', value: 0 }, target: { op: '<=', value: 2 } }).pass, false);
    assert.equal('pass' in completeMetric({ name: 'm', value: 1, unit: 'ms' }), false);
  });
});

describe(`npm run bench in --smoke mode (${built.map((b) => b.name).join(', ')})`, () => {
  const results = tempDir('bench-smoke');
  let run: { code: number | null; output: string };

  before(async () => {
    const runner = path.join(DIST_BENCH, 'run_all.js');
    const args = [runner, '--smoke', '--only', built.map((b) => b.name).join(','), '--results-dir', results.dir];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const [code] = (await once(child, 'close')) as [number | null];
    run = { code, output };
  });

  after(() => results.remove());

  it('runs every built benchmark and exits 0', () => {
    assert.ok(built.length >= 3, `proxy, backup and throttle are built: ${built.map((b) => b.name).join(', ')}`);
    assert.equal(run.code, 0, `the runner's output ended with:\n${run.output.slice(-4000)}`);
    assert.match(run.output, /# npm run bench: summary/);
    for (const spec of built) assert.match(run.output, new RegExp(`^${spec.name}\\s+ok\\s`, 'm'), `${spec.name} is ok in the summary`);
  });

  for (const { name, why } of cannotRun) it(`bench/${name} --smoke`, { skip: why }, () => undefined);

  for (const spec of built) {
    it(`bench/${spec.name} --smoke writes a result of the documented shape, with finite numbers`, () => {
      const file = path.join(results.dir, `${spec.name}.json`);
      assert.ok(fs.existsSync(file), `${file} was written; the runner's output ended with:\n${run.output.slice(-2000)}`);
      assertResultShape(JSON.parse(fs.readFileSync(file, 'utf8')) as Json, spec.name);
    });
  }
});
