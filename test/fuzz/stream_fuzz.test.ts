/**
 * The proxy's framing and interception on mutated real traffic (properties.ts): 100k
 * cases per run of the suite. `npm run fuzz` runs the same properties for 10 million.
 */
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { loadTraffic } from './traffic.js';
import { properties } from './properties.js';

/** Cases per property: with the 10k on the whole-message decoders (test/wire/fuzz.test.ts), 100k in all. */
const RUNS: Record<string, number> = { 'client stream framer and interception': 55_000, 'reply boundary tracker': 35_000 };

describe('fuzzing framing and interception with mutated real traffic', () => {
  for (const { name, check, describe: show } of properties(loadTraffic())) {
    it(`${name}: ${RUNS[name]} cases`, () => {
      const details = check({ numRuns: RUNS[name] as number });
      if (details.failed) {
        const input = details.counterexample == null ? '' : `\n${show(details.counterexample[0])}`;
        throw new Error(`${fc.defaultReportMessage(details)}${input}`, { cause: details.errorInstance });
      }
    });
  }
});
