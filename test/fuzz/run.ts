/**
 * `npm run fuzz`: the fuzz properties of properties.ts, run long.
 *
 *   npm run fuzz -- [--cases N] [--seed S] [--property NAME]
 *
 * Runs N cases in all (10,000,000 by default), shared evenly between the properties
 * (or all on the one named), with seed S (random by default; property i runs seed S+i).
 * Prints the count, the seed and the elapsed time. On a counterexample it prints it,
 * shrunk, with the seed and path that replay it, and exits 1.
 */
import { parseArgs } from 'node:util';
import { loadTraffic } from './traffic.js';
import { properties } from './properties.js';

const { values } = parseArgs({
  options: {
    cases: { type: 'string', default: '10000000' },
    seed: { type: 'string' },
    property: { type: 'string' },
    // Replays one counterexample: the path fast-check printed with its seed.
    path: { type: 'string' },
  },
});
const total = Number(values.cases);
const seed = values.seed === undefined ? (Date.now() ^ (Math.random() * 2 ** 31)) | 0 : Number(values.seed);
if (!Number.isSafeInteger(total) || total <= 0 || !Number.isSafeInteger(seed)) {
  console.error('fuzz: --cases must be a positive integer and --seed an integer');
  process.exit(2);
}
const all = properties(loadTraffic());
const chosen = values.property === undefined ? all : all.filter((p) => p.name === values.property);
if (chosen.length === 0) {
  console.error(`fuzz: no property named ${values.property}; there are: ${all.map((p) => p.name).join('; ')}`);
  process.exit(2);
}

const PROGRESS_EVERY = 1_000_000;
const started = performance.now();
const seconds = () => ((performance.now() - started) / 1000).toFixed(1);
let ran = 0;
console.log(`fuzz: ${total} cases, seed ${seed}`);
for (const [i, { name, check, describe }] of chosen.entries()) {
  const share = Math.floor(total / chosen.length) + (i < total % chosen.length ? 1 : 0);
  const propertySeed = seed + all.indexOf(chosen[i] as (typeof all)[number]);
  const details = check({ numRuns: share, seed: propertySeed, ...(values.path === undefined ? {} : { path: values.path }) }, () => {
    if (++ran % PROGRESS_EVERY === 0) console.log(`fuzz: ${ran} cases, ${seconds()} s`);
  });
  if (details.failed) {
    console.error(`fuzz: counterexample for "${name}" after ${details.numRuns} of its cases (${ran} in all), ${seconds()} s`);
    console.error(`replay: npm run fuzz -- --property '${name}' --seed ${propertySeed - all.indexOf(chosen[i] as (typeof all)[number])} --path '${details.counterexamplePath}' --cases ${share * chosen.length}`);
    console.error(`shrunk input: ${details.counterexample == null ? '(none)' : describe(details.counterexample[0])}`);
    console.error(`error: ${details.errorInstance instanceof Error ? (details.errorInstance.stack ?? details.errorInstance.message) : String(details.errorInstance)}`);
    process.exit(1);
  }
  console.log(`fuzz: "${name}": ${details.numRuns} cases passed`);
}
console.log(`fuzz: ${ran} cases passed, seed ${seed}, ${seconds()} s (${Math.round(ran / ((performance.now() - started) / 1000))} cases/s)`);
