/** backupStart's `extendTo`, as parsed: its type first (14), then the strategy it needs (72). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Long, Timestamp } from 'bson';
import { parseBackupStart } from '../../src/commands/backup_start_options.js';
import { ErrorCodes } from '../../src/errors.js';

describe('backupStart extendTo', () => {
  it('takes a Timestamp, as plain seconds and increment', () => {
    const request = parseBackupStart({ backupStart: '/b', extendTo: new Timestamp({ t: 4_000_000_000, i: 7 }) });
    assert.deepEqual(request.extendTo, { t: 4_000_000_000, i: 7 });
    assert.equal('extendTo' in parseBackupStart({ backupStart: '/b' }), false);
  });

  it('refuses anything else with TypeMismatch, as mongod refuses a field of the wrong type', () => {
    for (const bad of [1_780_000_000, '1780000000,1', new Date(), Long.fromNumber(5), null, { t: 1, i: 1 }]) {
      assert.throws(() => parseBackupStart({ backupStart: '/b', extendTo: bad }), { code: ErrorCodes.TypeMismatch, message: /'extendTo' must be a Timestamp/ });
    }
  });

  it('refuses it with InvalidOptions beside a strategy that blocks writes', () => {
    for (const strategy of ['fsyncLock', 'reflink']) {
      assert.throws(() => parseBackupStart({ backupStart: '/b', strategy, extendTo: new Timestamp({ t: 1, i: 1 }) }), { code: ErrorCodes.InvalidOptions, message: new RegExp(`needs the backupCursor strategy .*not ${strategy}`) });
    }
    assert.deepEqual(parseBackupStart({ backupStart: '/b', strategy: 'backupCursor', extendTo: new Timestamp({ t: 1, i: 2 }) }).extendTo, { t: 1, i: 2 });
  });
});
