/**
 * `npm run fuzz`: the fuzz properties of properties.ts, run long.
 *
 *   npm run fuzz -- [--cases N] [--seed S] [--property NAME]
 *
 * Runs N cases in all (10,000,000 by default), shared evenly between the properties
 * (or all on the one named), from seed S (random by default). Prints the count, the seed
 * and the elapsed time. On a counterexample it prints it, shrunk, with the command that
 * replays it, and exits 1.
 *
 * The cases run in batches of BATCH, each a fast-check run of its own seed (derived from
 * S, the property and the batch), and the event loop turns between two: Node frees the
 * zlib stream of a failed inflateSync (a corrupt zlib OP_COMPRESSED) only then, so one
 * run of 10 million held gigabytes of them. (The proxy peeks each message in an event of
 * its own, so it never piles them up.)
 */
import { parseArgs } from 'node:util';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { loadTraffic } from './traffic.js';
import { properties } from './properties.js';

const BATCH = 100_000;
const PROGRESS_EVERY = 1_000_000;

const { values } = parseArgs({
  options: {
    cases: { type: 'string', default: '10000000' },
    seed: { type: 'string' },
    property: { type: 'string' },
    // Replays one counterexample: the fast-check seed and path of the batch that failed.
    'replay-seed': { type: 'string' },
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

/** The fast-check seed of one batch: distinct for each property and batch of a run. */
function batchSeed(propertyIndex: number, batch: number): number {
  return Math.imul(seed ^ Math.imul(propertyIndex + 1, 0x9e3779b1), 0x85ebca6b) + Math.imul(batch, 0xc2b2ae35) | 0;
}

const started = performance.now();
const seconds = () => ((performance.now() - started) / 1000).toFixed(1);
let ran = 0;
const count = () => {
  if (++ran % PROGRESS_EVERY === 0) console.log(`fuzz: ${ran} cases, ${seconds()} s`);
};

function fail(name: string, fcSeed: number, numRuns: number, details: ReturnType<(typeof all)[number]['check']>, describe: (value: unknown) => string): never {
  console.error(`fuzz: counterexample for "${name}" (${ran} cases in all), ${seconds()} s${values['replay-seed'] === undefined ? `, seed ${seed}` : ''}`);
  console.error(`replay: npm run fuzz -- --property '${name}' --replay-seed ${fcSeed} --path '${details.counterexamplePath}' --cases ${numRuns}`);
  console.error(`shrunk input: ${details.counterexample == null ? '(none)' : describe(details.counterexample[0])}`);
  const error = details.errorInstance;
  console.error(`error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exit(1);
}

if (values['replay-seed'] !== undefined) {
  const fcSeed = Number(values['replay-seed']);
  for (const { name, check, describe } of chosen) {
    const details = check({ numRuns: total, seed: fcSeed, ...(values.path === undefined ? {} : { path: values.path }) }, count);
    if (details.failed) fail(name, fcSeed, total, details, describe);
    console.log(`fuzz: "${name}": replayed, no counterexample`);
  }
  process.exit(0);
}

console.log(`fuzz: ${total} cases, seed ${seed}`);
for (const [i, { name, check, describe }] of chosen.entries()) {
  const share = Math.floor(total / chosen.length) + (i < total % chosen.length ? 1 : 0);
  const propertyIndex = all.indexOf(chosen[i] as (typeof all)[number]);
  for (let batch = 0, done = 0; done < share; batch++) {
    const numRuns = Math.min(BATCH, share - done);
    const fcSeed = batchSeed(propertyIndex, batch);
    const details = check({ numRuns, seed: fcSeed }, count);
    if (details.failed) fail(name, fcSeed, numRuns, details, describe);
    done += numRuns;
    await nextTurn();
  }
  console.log(`fuzz: "${name}": ${share} cases passed`);
}
const elapsed = (performance.now() - started) / 1000;
console.log(`fuzz: ${ran} cases passed, seed ${seed}, ${elapsed.toFixed(1)} s (${Math.round(ran / elapsed)} cases/s)`);
