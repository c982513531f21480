/**
 * How replayOplog cuts the range into requests, over real oplog files and a target that
 * records what it is sent: batches bounded by bytes and count, commands alone, index
 * entries as createIndexes, no-ops and index-build bookkeeping skipped, nested applyOps
 * unpacked, a transaction's prepared entries refused.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Long, serialize, Timestamp } from 'bson';
import { replayOplog, ReplayFailed, type ApplyOpsOutcome, type ReplayTarget } from '../../src/oplog/oplog_replay.js';
import type { OplogTs } from '../../src/oplog/oplog_ts.js';
import { tempDir } from '../helpers/paths.js';

type Doc = Record<string, unknown>;
const ts = (i: number) => new Timestamp({ t: 1_700_000_000, i });
const at = (i: number): OplogTs => ({ secs: 1_700_000_000, inc: i });

class RecordingTarget implements ReplayTarget {
  readonly requests: Array<{ kind: 'applyOps'; ops: Doc[]; bytes: number } | { kind: 'createIndexes'; ns: string; indexes: Doc[] }> = [];
  async applyOps(entries: Doc[]): Promise<ApplyOpsOutcome> {
    this.requests.push({ kind: 'applyOps', ops: entries, bytes: serialize({ applyOps: entries }).length });
    return { ok: true };
  }
  async createIndexes(db: string, collection: string, indexes: Doc[]): Promise<void> {
    this.requests.push({ kind: 'createIndexes', ns: `${db}.${collection}`, indexes });
  }
  async collections(): Promise<Map<string, string | undefined>> {
    return new Map([['c', undefined]]);
  }
}

describe('replayOplog: the requests it sends', () => {
  const work = tempDir('replay-batches');
  after(() => work.remove());

  function write(name: string, entries: Doc[]): string {
    const dir = path.join(work.dir, name);
    fs.mkdirSync(dir);
    let i = 0;
    const docs = entries.map((e) => Buffer.from(serialize({ ts: ts(++i), t: Long.fromNumber(1), ...e })));
    fs.writeFileSync(path.join(dir, 'oplog000000.bson'), Buffer.concat(docs));
    return dir;
  }

  it('batches inserts by bytes and by count, each request far under 16 MiB', async () => {
    const big = 'x'.repeat(300 * 1024);
    const dir = write('sizes', [
      { op: 'n', ns: '', o: {} },
      ...Array.from({ length: 40 }, (_, k) => ({ op: 'i', ns: 'app.c', o: { _id: k, big } })),
      ...Array.from({ length: 2500 }, (_, k) => ({ op: 'i', ns: 'app.c', o: { _id: 100 + k } })),
    ]);
    const target = new RecordingTarget();
    const result = await replayOplog({ dir, from: at(1), until: at(10_000), target }).catch((err: Error) => err);
    // The files end before --until 10000: refused before anything is sent.
    assert.ok(result instanceof Error && /before --until/.test(result.message));
    assert.equal(target.requests.length, 0);

    const done = await replayOplog({ dir, from: at(1), until: at(2541), target });
    assert.equal(done.applied, 2540);
    const sizes = target.requests.map((r) => (r.kind === 'applyOps' ? r.bytes : 0));
    assert.ok(Math.max(...sizes) < 4 * 1024 * 1024 + 4096, `largest request ${Math.max(...sizes)} bytes`);
    const counts = target.requests.map((r) => (r.kind === 'applyOps' ? r.ops.length : 0));
    assert.ok(Math.max(...counts) <= 1000, `largest batch ${Math.max(...counts)} entries`);
    assert.equal(counts.reduce((a, b) => a + b, 0), 2540);
  });

  it('sends commands alone, index entries as createIndexes, skips no-ops and index-build bookkeeping, unpacks nested applyOps', async () => {
    const dir = write('kinds', [
      { op: 'n', ns: '', o: {} },
      { op: 'i', ns: 'app.c', o: { _id: 1 } },
      { op: 'c', ns: 'app.$cmd', o: { create: 'd' } },
      { op: 'i', ns: 'app.c', o: { _id: 2 } },
      { op: 'c', ns: 'app.$cmd', o: { createIndexes: 'c', v: 2, key: { a: 1 }, name: 'a_1' } },
      { op: 'c', ns: 'app.$cmd', o: { startIndexBuild: 'c', indexBuildUUID: 1, indexes: [] } },
      { op: 'c', ns: 'app.$cmd', o: { commitIndexBuild: 'c', indexBuildUUID: 1, indexes: [{ v: 2, key: { b: 1 }, name: 'b_1' }] } },
      { op: 'c', ns: 'admin.$cmd', o: { applyOps: [{ op: 'i', ns: 'app.c', o: { _id: 3 } }, { op: 'i', ns: 'app.c', o: { _id: 4 } }] } },
      { op: 'n', ns: '', o: { msg: 'noop' } },
    ]);
    const target = new RecordingTarget();
    const result = await replayOplog({ dir, from: at(1), until: at(9), target });
    assert.deepEqual(
      target.requests.map((r) => (r.kind === 'applyOps' ? r.ops.map((o) => `${String(o['op'])}:${JSON.stringify(o['o'])}`) : `createIndexes ${r.ns} ${r.indexes.map((i) => i['name']).join(',')}`)),
      [
        ['i:{"_id":1}'],
        ['c:{"create":"d"}'],
        ['i:{"_id":2}'],
        'createIndexes app.c a_1',
        'createIndexes app.c b_1',
        ['i:{"_id":3}', 'i:{"_id":4}'],
      ],
    );
    assert.deepEqual({ entries: result.entries, ignored: result.ignored }, { entries: 8, ignored: 2 });
  });

  it('refuses a prepared transaction\'s entry', async () => {
    const dir = write('prepared', [
      { op: 'n', ns: '', o: {} },
      { op: 'c', ns: 'admin.$cmd', o: { applyOps: [{ op: 'i', ns: 'app.c', o: { _id: 1 } }], prepare: true } },
    ]);
    await assert.rejects(replayOplog({ dir, from: at(1), until: at(2), target: new RecordingTarget() }), (err: unknown) => err instanceof ReplayFailed && /prepared or partial transaction/.test(err.message));
  });
});
