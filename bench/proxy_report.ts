/**
 * bench/proxy.ts's report: the medians per path, the ratios to socat and to the Node
 * relay, the relay processes' CPU per unit of work, the issue's targets beside what was
 * measured, and every round to judge the noise. Returns the same figures as plain data
 * for the JSON result.
 */
import { fmt, median, ratio, table, type BenchMetricInput } from './common.js';

export type PathName = 'direct' | 'socat' | 'relay' | 'proxy';
export const PATHS: PathName[] = ['direct', 'socat', 'relay', 'proxy'];
export type Workload = 'ping' | 'findOne' | 'insert' | 'find';
const WORKLOADS: Workload[] = ['ping', 'findOne', 'insert', 'find'];

export interface Sample {
  /** The workload's headline number: ops/s or MB/s. */
  rate: number;
  p50us?: number;
  p99us?: number;
  /** CPU ms the relay process used during this workload. */
  relayCpuMs: number;
}

export interface WorkloadSizes {
  pings: number;
  /** findOne calls in all, over `clients` clients. */
  finds: number;
  clients: number;
  writeMB: number;
  readMB: number;
}

interface Metric {
  label: string;
  workload: Workload;
  field: 'rate' | 'p50us' | 'p99us';
  better: 'higher' | 'lower';
}

/** What one target compares, and whether it held in this run. */
export interface TargetResult {
  target: string;
  measured: number;
  bound: number;
  /** null when this run could not measure it (say, a smoke run's CPU below one tick). */
  holds: boolean | null;
}

export function report(samples: ReadonlyMap<string, readonly Sample[]>, rounds: number, sizes: WorkloadSizes) {
  const of = (w: Workload, p: PathName): readonly Sample[] => samples.get(`${w}/${p}`) ?? [];
  const findLabel = `findOne x${sizes.clients} clients`;
  const metrics: Metric[] = [
    { label: 'ping sequential, ops/s', workload: 'ping', field: 'rate', better: 'higher' },
    { label: 'ping sequential, p50 µs', workload: 'ping', field: 'p50us', better: 'lower' },
    { label: 'ping sequential, p99 µs', workload: 'ping', field: 'p99us', better: 'lower' },
    { label: `${findLabel}, ops/s`, workload: 'findOne', field: 'rate', better: 'higher' },
    { label: `${findLabel}, p50 µs`, workload: 'findOne', field: 'p50us', better: 'lower' },
    { label: `${findLabel}, p99 µs`, workload: 'findOne', field: 'p99us', better: 'lower' },
    { label: 'insertMany 1 KiB docs, MB/s', workload: 'insert', field: 'rate', better: 'higher' },
    { label: 'find all 4 KiB docs, MB/s', workload: 'find', field: 'rate', better: 'higher' },
  ];
  const med = (m: Metric, p: PathName) => median(of(m.workload, p).map((s) => s[m.field] ?? Number.NaN));
  const rows = metrics.map((m) => {
    const [d, s, r, p] = PATHS.map((name) => med(m, name)) as [number, number, number, number];
    return [m.label, fmt(d), fmt(s), fmt(r), fmt(p), ratio(p, s), ratio(p, r), ratio(p, d), m.better];
  });
  console.log(`Medians over ${rounds} rounds. Ratios are of the numbers themselves: for ops/s and MB/s`);
  console.log('below 1.00 means the proxy is slower; for latency above 1.00 means slower.');
  console.log(table(['metric', 'direct', 'socat', 'relay', 'proxy', 'proxy/socat', 'proxy/relay', 'proxy/direct', 'better'], rows));
  console.log('');

  // CPU the relay itself burned, per unit of work: what the middleman costs the host.
  const units: Record<Workload, { label: string; per: number; scale: number }> = {
    ping: { label: 'ping sequential, CPU µs per op', per: sizes.pings, scale: 1000 },
    findOne: { label: `${findLabel}, CPU µs per op`, per: sizes.finds, scale: 1000 },
    insert: { label: 'insertMany, CPU ms per MB', per: sizes.writeMB, scale: 1 },
    find: { label: 'find all, CPU ms per MB', per: sizes.readMB, scale: 1 },
  };
  const cpu = (w: Workload, p: PathName) => median(of(w, p).map((x) => (x.relayCpuMs * units[w].scale) / units[w].per));
  const cpuRows = WORKLOADS.map((w) => {
    const [s, r, p] = (['socat', 'relay', 'proxy'] as const).map((name) => cpu(w, name)) as [number, number, number];
    return [units[w].label, fmt(s), fmt(r), fmt(p), ratio(p, s), ratio(p, r)];
  });
  console.log('CPU time of the relay process itself (user+sys from /proc, 10 ms ticks; socat counts its forks):');
  console.log(table(['workload', 'socat', 'relay', 'proxy', 'proxy/socat', 'proxy/relay'], cpuRows));
  console.log('');

  const rate = (w: Workload, p: PathName) => median(of(w, p).map((s) => s.rate));
  const names: Record<Workload, string> = { ping: 'ping', findOne: findLabel, insert: 'insertMany', find: 'find' };
  const targets: TargetResult[] = [];
  const check = (target: string, measured: number, bound: number, atMost: boolean) =>
    targets.push({ target, measured, bound, holds: !Number.isFinite(measured) ? null : atMost ? measured <= bound : measured >= bound });
  for (const w of WORKLOADS) check(`${names[w]}: proxy/socat throughput >= 1.0`, rate(w, 'proxy') / rate(w, 'socat'), 1.0, false);
  for (const w of WORKLOADS) check(`${names[w]}: proxy/relay throughput >= 0.95`, rate(w, 'proxy') / rate(w, 'relay'), 0.95, false);
  for (const w of WORKLOADS) check(`${names[w]}: proxy/socat CPU per unit <= 1.0`, cpu(w, 'proxy') / cpu(w, 'socat'), 1.0, true);
  console.log('Targets (issue 9, section 3), in this run:');
  console.log(table(['target', 'measured', 'holds'], targets.map((t) => [t.target, fmt(t.measured), t.holds === null ? 'n/a' : t.holds ? 'yes' : 'NO'])));
  console.log('');

  const spread = metrics.map((m) => [m.label, ...PATHS.map((name) => of(m.workload, name).map((s) => fmt(s[m.field] ?? Number.NaN)).join(' / '))]);
  console.log('Every round (in round order), to judge the noise:');
  console.log(table(['metric', ...PATHS], spread));

  // The shared result shape (bench/common.ts): each target as a value against its baseline.
  const benchMetrics: BenchMetricInput[] = [];
  for (const w of WORKLOADS) {
    const unit = w === 'insert' || w === 'find' ? 'MB/s' : 'ops/s';
    benchMetrics.push(
      { name: `${names[w]}: proxy throughput vs socat`, value: rate(w, 'proxy'), unit, baseline: { name: 'socat', value: rate(w, 'socat') }, target: { op: '>=', value: 1.0 } },
      { name: `${names[w]}: proxy throughput vs a zero-inspection Node relay`, value: rate(w, 'proxy'), unit, baseline: { name: 'relay', value: rate(w, 'relay') }, target: { op: '>=', value: 0.95 } },
    );
    // A run too short for one 10 ms tick of socat's CPU (--smoke) cannot compare CPU.
    if (cpu(w, 'socat') > 0) {
      benchMetrics.push({ name: `${names[w]}: proxy CPU per unit vs socat`, value: cpu(w, 'proxy'), unit: units[w].label.replace(/^.*CPU /, ''), baseline: { name: 'socat', value: cpu(w, 'socat') }, target: { op: '<=', value: 1.0 } });
    }
  }

  const perPath = <T>(pick: (p: PathName) => T): Record<PathName, T> => Object.fromEntries(PATHS.map((p) => [p, pick(p)])) as Record<PathName, T>;
  return {
    rounds,
    sizes,
    medians: Object.fromEntries(metrics.map((m) => [m.label, perPath((p) => med(m, p))])),
    // JSON has no NaN: a figure that could not be measured (direct has no relay) is null.
    cpu: Object.fromEntries(WORKLOADS.map((w) => [units[w].label, perPath((p) => (p === 'direct' ? null : cpu(w, p)))])),
    targets,
    metrics: benchMetrics,
    perRound: Object.fromEntries(metrics.map((m) => [m.label, perPath((p) => of(m.workload, p).map((s) => s[m.field] ?? null))])),
  };
}
