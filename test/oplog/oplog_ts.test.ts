/** Oplog timestamps as DBAs type and read them, and as read from an entry's raw bytes: the one parser and printer every oplog command uses. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compareOplogTs, entryTs, formatMongobackup, formatOplogTs, parseOplogTs } from '../../src/oplog/oplog_ts.js';
import { oplogEntry } from '../helpers/oplog_entries.js';

describe('oplog timestamps', () => {
  it("parses --from as mongobackup's -s (and mongorestore's secs:inc), and prints mongobackup's stop line", () => {
    const ts = parseOplogTs('1466234959,1', '--from');
    assert.deepEqual(ts, { secs: 1466234959, inc: 1 });
    assert.deepEqual(parseOplogTs(' 1466234959:1 ', '--until'), ts);
    assert.equal(formatMongobackup(ts), 'Timestamp 1466234959000|1');
    assert.equal(formatOplogTs(ts), '1466234959,1');
    assert.deepEqual(parseOplogTs('4294967295,4294967295', '--from'), { secs: 0xffff_ffff, inc: 0xffff_ffff });
    for (const bad of ['1466234959', '1466234959.1', '-1,2', '1,', 'a,b', '4294967296,0', '1,4294967296', '1,,2']) {
      assert.throws(() => parseOplogTs(bad, '--until'), new RegExp(`^Error: --until takes a timestamp as <secs>,<inc> .*got '${bad}'$`), bad);
    }
  });

  it('orders by seconds, then by increment, unsigned', () => {
    assert.ok(compareOplogTs({ secs: 1, inc: 0xffff_ffff }, { secs: 2, inc: 0 }) < 0);
    assert.ok(compareOplogTs({ secs: 0xffff_ffff, inc: 1 }, { secs: 0xffff_ffff, inc: 0 }) > 0);
    assert.equal(compareOplogTs({ secs: 5, inc: 5 }, { secs: 5, inc: 5 }), 0);
  });

  it("reads an entry's ts from its raw bytes, wherever the field is", () => {
    assert.deepEqual(entryTs(oplogEntry({ secs: 1700000000, inc: 42 })), { secs: 1700000000, inc: 42 });
    assert.throws(() => entryTs(Buffer.from([5, 0, 0, 0, 0])), /without a ts/);
  });
});
