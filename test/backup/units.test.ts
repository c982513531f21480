import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Decimal128, Double, Int32, Long } from 'bson';
import { CommandError } from '../../src/errors.js';
import { formatBytes, formatRate, parseThrottle } from '../../src/backup/units.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

function expectBadValue(value: unknown, message: string): void {
  assert.throws(
    () => parseThrottle(value),
    (err: unknown) => {
      assert.ok(err instanceof CommandError, `expected a CommandError for ${String(value)}`);
      assert.equal(err.code, 2);
      assert.equal(err.codeName, 'BadValue');
      assert.equal(err.message, message);
      return true;
    },
  );
}

describe('parseThrottle', () => {
  it('takes every BSON numeric type as bytes per second', () => {
    const table: Array<[unknown, number]> = [
      [0, 0],
      [1048576, MiB],
      [1.9, 1],
      [new Int32(4096), 4096],
      [new Double(16777216.5), 16 * MiB],
      [Long.fromNumber(5 * GiB), 5 * GiB],
      [Long.fromString('123456789012'), 123456789012],
      [Decimal128.fromString('1.5E+3'), 1500],
      [10n, 10],
      [-0, 0],
    ];
    for (const [input, expected] of table) assert.equal(parseThrottle(input), expected, String(input));
  });

  it('takes strings with an optional unit, space and /s, case-insensitively', () => {
    const table: Array<[string, number]> = [
      ['0', 0],
      ['4096', 4096],
      ['512B', 512],
      ['512 b', 512],
      ['10K', 10 * KiB],
      ['10kb', 10 * KiB],
      ['10 KiB', 10 * KiB],
      ['10M', 10 * MiB],
      ['10MB', 10 * MiB],
      ['10mib/s', 10 * MiB],
      ['2g', 2 * GiB],
      ['2 GB/s', 2 * GiB],
      ['2GiB', 2 * GiB],
      ['1.5MB', 1.5 * MiB],
      ['.5k', 512],
      ['1.0001k', 1024],
      [' 16 MiB ', 16 * MiB],
      ['-0', 0],
    ];
    for (const [input, expected] of table) assert.equal(parseThrottle(input), expected, input);
  });

  it('never turns a positive rate into 0 (unlimited) by rounding', () => {
    assert.equal(parseThrottle(0.5), 1);
    assert.equal(parseThrottle('0.5'), 1);
    assert.equal(parseThrottle(0), 0);
    assert.equal(parseThrottle('0MB'), 0);
  });

  it("says 'must be a number' for anything that is not one", () => {
    for (const bad of ['abc', {}, true, false, null, undefined, '', 'MB', '10 TB', '10MBps', '1e6', '10 M B', NaN, Infinity, [], Decimal128.fromString('NaN')]) {
      expectBadValue(bad, 'backupThrottle argument must be a number');
    }
  });

  it("says 'cannot be negative' for negative numbers and strings", () => {
    for (const bad of [-1, -0.5, '-5MB', '-1', new Int32(-3), Long.fromNumber(-1), new Double(-2.5), Decimal128.fromString('-7'), -4n]) {
      expectBadValue(bad, 'backupThrottle argument cannot be negative');
    }
  });
});

describe('formatBytes and formatRate', () => {
  it('prints binary units with one decimal', () => {
    assert.equal(formatBytes(0), '0 B');
    assert.equal(formatBytes(512), '512 B');
    assert.equal(formatBytes(1536), '1.5 KiB');
    assert.equal(formatBytes(16 * MiB), '16.0 MiB');
    assert.equal(formatBytes(MiB - 1), '1.0 MiB');
    assert.equal(formatBytes(3 * GiB), '3.0 GiB');
  });

  it("prints 0 as 'unlimited' and anything else per second", () => {
    assert.equal(formatRate(0), 'unlimited');
    assert.equal(formatRate(16 * MiB), '16.0 MiB/s');
  });
});
