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

  it('reads regular expressions as mongod\'s PCRE does, where JavaScript reads them alike', () => {
    for (const [pattern, options, matches] of [
      ['^hot', '', true],
      ['^HOT', 'i', true],
      ['back(?=up)', '', true],
      ['(?:hot|cold)backup$', '', true],
      ['hot{1,2}?b', '', true],
      ['[]h]ot', '', true],
      ['\\x68ot', '', true],
      ['a\\-b', '', false],
      ['[a\\-z]+', '', true],
      ['x{', '', false],
      ['^\\/backups\\/', '', false],
      ['\\bhot', 'u', true],
    ] as const) {
      assert.equal(matchesFilter(op, { desc: { $regex: pattern, $options: options } }), matches, `/${pattern}/${options}`);
    }
    assert.equal(matchesFilter(op, { 'command.backupStart': new BSONRegExp('^/BACKUPS/', 'i') }), true);
  });

  it('refuses a pattern only PCRE reads, or that JavaScript reads otherwise, rather than guess', () => {
    for (const pattern of [
      '(?i)HOT', // inline flags
      '(?i:hot)backup',
      'ho++t', // possessive quantifiers
      'hot*+',
      '(?P<word>hot)backup', // named groups, both spellings
      '(?<word>hot)backup',
      "(?'word'hot)",
      '(?>hot)backup', // atomic group
      '(?#note)hot', // comment
      '(*UTF)hot', // verb
      '\\Ahot', // \A \Z \z \G are letters to JavaScript
      'backup\\Z',
      'backup\\z',
      '\\Ghot',
      'hot\\Kbackup',
      '\\Qhot\\E',
      '\\hbackup', // \h \v \R: whitespace classes in PCRE
      '\\v',
      '\\R',
      '\\p{L}+',
      '(hot)\\1', // back-references and octal escapes
      '\\x{68}ot',
      '[[:alpha:]]+',
      '\\ehot',
    ]) {
      assert.throws(() => matchesFilter(op, { desc: { $regex: pattern } }), UnsupportedFilter, pattern);
      assert.throws(() => matchesFilter(op, { desc: new BSONRegExp(pattern, '') }), UnsupportedFilter, pattern);
    }
  });

  it('refuses a value on which the two dialects differ, rather than guess', () => {
    const doc = { lines: 'hot\r\nbackup\n', spaced: 'hot\u00a0backup', accented: 'hôtbackup' };
    // PCRE's one newline is LF, and its $ also matches before a final newline; JavaScript knows CR too.
    assert.throws(() => matchesFilter(doc, { lines: { $regex: 'backup$' } }), UnsupportedFilter);
    assert.throws(() => matchesFilter(doc, { lines: { $regex: 'hot.' } }), UnsupportedFilter);
    // A no-break space is \s to JavaScript, not to PCRE without UCP.
    assert.throws(() => matchesFilter(doc, { spaced: { $regex: 'hot\\sbackup' } }), UnsupportedFilter);
    assert.throws(() => matchesFilter(doc, { accented: { $regex: 'HÔT', $options: 'i' } }), UnsupportedFilter);
    // Patterns without those constructs are judged on those values all the same.
    assert.equal(matchesFilter(doc, { lines: { $regex: 'backup' } }), true);
    assert.equal(matchesFilter(doc, { accented: { $regex: 'hôt' } }), true);
  });

  it('says what it cannot judge, rather than guess', () => {
    for (const filter of [{ $expr: { $gt: ['$secs_running', 1] } }, { files: { $elemMatch: { name: 'x.wt' } } }, { desc: { $regex: 'h', $options: 'x' } }]) {
      assert.throws(() => matchesFilter(op, filter), UnsupportedFilter, JSON.stringify(filter));
    }
  });
});
