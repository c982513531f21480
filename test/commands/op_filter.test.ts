/**
 * The currentOp filter the proxy applies to the backup's entry: the filters operators
 * write (`db.currentOp({...})`), with mongod's rules for paths, arrays, null and numbers.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BSONRegExp, Double, Int32, Long } from 'bson';
import { matchesFilter, UnsupportedFilter } from '../../src/commands/op_filter.js';

const op = {
  type: 'op',
  desc: 'hotbackup',
  active: true,
  opid: Long.fromNumber(2 ** 32 + 1),
  secs_running: Long.fromNumber(12),
  op: 'command',
  command: { backupStart: '/backups/nightly', async: true, $db: 'admin' },
  progress: { done: Long.fromNumber(10), total: Long.fromNumber(100) },
  tags: ['a', 'b'],
  files: [{ name: 'x.wt' }, { name: 'y.wt' }],
};

describe('matchesFilter', () => {
  it('matches the filters operators use for a backup', () => {
    for (const filter of [
      {},
      { 'command.backupStart': { $exists: true } },
      { active: true, secs_running: { $gt: 3 } },
      { desc: 'hotbackup' },
      { op: { $in: ['command', 'query'] } },
      { desc: /^hot/ },
      { desc: new BSONRegExp('^HOT', 'i') },
      { desc: { $regex: 'back', $options: 'i' } },
      { opid: 2 ** 32 + 1 },
      { secs_running: new Int32(12) },
      { secs_running: { $gte: new Double(12), $lt: Long.fromNumber(13) } },
      { 'progress.total': 100 },
      { $or: [{ desc: 'nothing' }, { 'command.backupStart': '/backups/nightly' }] },
      { $nor: [{ active: false }] },
      { 'command.backupStart': { $not: /^\/tmp/ } },
      { tags: 'b' },
      { tags: ['a', 'b'] },
      { 'files.name': 'y.wt' },
      { 'tags.0': 'a' },
      { missing: null },
      { missing: { $exists: false } },
      { desc: { $ne: null } },
      { desc: { $nin: ['conn1'] } },
    ]) {
      assert.equal(matchesFilter(op, filter), true, JSON.stringify(filter));
    }
  });

  it('does not match where mongod would not', () => {
    for (const filter of [
      { active: false },
      { 'command.backupStart': { $exists: false } },
      { secs_running: { $gt: 12 } },
      // Comparisons only within a kind: a string is never greater than a number.
      { desc: { $gt: 5 } },
      { secs_running: { $lt: 'z' } },
      { desc: 'HOTBACKUP' },
      { desc: /^conn/ },
      { $and: [{ active: true }, { desc: 'other' }] },
      { tags: 'c' },
      { desc: null },
      { 'command.backupStart': { $not: { $regex: 'nightly' } } },
      // After $eq a regular expression is a value, not a pattern.
      { desc: { $eq: /hot/ } },
    ]) {
      assert.equal(matchesFilter(op, filter), false, JSON.stringify(filter));
    }
  });

  it('says what it cannot judge, rather than guess', () => {
    for (const filter of [{ $expr: { $gt: ['$secs_running', 1] } }, { files: { $elemMatch: { name: 'x.wt' } } }, { desc: { $regex: 'h', $options: 'x' } }]) {
      assert.throws(() => matchesFilter(op, filter), UnsupportedFilter, JSON.stringify(filter));
    }
  });
});
