/**
 * The streamer's decisions over a fake oplog (the server's part is tested end to end in
 * test/cli/oplog.test.ts): where it starts, what it refuses, and that a stop, a resume and
 * a reconnect after a dropped cursor leave every entry in the files exactly once.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import type { ErrorJudge } from '../../src/oplog/oplog_source.js';
import { streamOplog, type StreamOptions } from '../../src/oplog/oplog_streamer.js';
import type { OplogTs } from '../../src/oplog/oplog_ts.js';
import { OplogGap, StreamRefusal, NoOplog } from '../../src/oplog/stream_errors.js';
import { StreamProgress } from '../../src/oplog/stream_progress.js';
import { concatenatedOplog, oplogEntries, oplogEntry } from '../helpers/oplog_entries.js';
import { tempDir } from '../helpers/paths.js';
import { until } from '../helpers/poll.js';
import { FakeOplog, Transient } from '../helpers/fake_oplog.js';

const judge: ErrorJudge = { isTransient: (err) => err instanceof Transient };
const silent = pino({ level: 'silent' });

const T0 = 1_700_000_000;
const at = (inc: number): OplogTs => ({ secs: T0, inc });
const range = (first: number, count: number) => oplogEntries(at(first), count, 50);

describe('streamOplog', () => {
  let root: { dir: string; remove: () => void };
  before(() => {
    root = tempDir('oplog-stream');
  });
  after(() => root.remove());
  let n = 0;
  const newDir = () => path.join(root.dir, `out${n++}`);

  /** Runs a stream until `settled` holds of its progress, then stops it as SIGINT would. */
  async function streamUntil(options: Omit<StreamOptions, 'signal' | 'log' | 'judge' | 'rotateBytes'> & { rotateBytes?: number }, settled: (progress: StreamProgress) => boolean) {
    const controller = new AbortController();
    const progress = new StreamProgress();
    const running = streamOplog({ judge, log: silent, rotateBytes: 1000, retryDelayMs: () => 1, ...options, progress, signal: controller.signal });
    const outcome = await Promise.race([running.then(() => 'ended'), until(() => settled(progress))]);
    assert.notEqual(outcome, 'ended', 'the stream ended by itself');
    controller.abort();
    return running;
  }
  const hasEntries = (count: number) => (progress: StreamProgress) => progress.snapshot().entries >= count;

  it('in an empty directory without --from, starts at the newest entry, that one included', async () => {
    const oplog = new FakeOplog();
    oplog.push(...range(1, 5));
    const dir = newDir();
    oplog.push(...range(6, 4));
    const controller = new AbortController();
    const progress = new StreamProgress();
    const running = streamOplog({ source: oplog, judge, dir, rotateBytes: 1000, log: silent, progress, signal: controller.signal });
    // At start the newest is inc 9: it and what comes after, nothing older.
    await until(() => progress.snapshot().entries === 1);
    oplog.push(...range(10, 2));
    await until(() => progress.snapshot().entries === 3);
    controller.abort();
    assert.deepEqual((await running).backedUpTo, at(11));
    assert.deepEqual(concatenatedOplog(dir), Buffer.concat(range(9, 3)));
  });

  it('starts at --from in an empty directory, resumes after it in one that ends there: every entry exactly once', async () => {
    const oplog = new FakeOplog();
    oplog.push(...range(1, 10));
    const dir = newDir();
    const first = await streamUntil({ source: oplog, dir, from: at(3) }, hasEntries(7));
    assert.deepEqual(first.backedUpTo, at(10));
    oplog.push(...range(11, 8));
    // Resumed with the printed --from, and once more without it (the directory's end).
    const second = await streamUntil({ source: oplog, dir, from: first.backedUpTo as OplogTs }, hasEntries(8));
    assert.deepEqual(second.backedUpTo, at(18));
    oplog.push(...range(19, 2));
    const third = await streamUntil({ source: oplog, dir }, hasEntries(2));
    assert.deepEqual(third.backedUpTo, at(20));
    assert.deepEqual(concatenatedOplog(dir), Buffer.concat(range(3, 18)));
    assert.ok(fs.readdirSync(dir).length >= 3, 'each run began its own files');
  });

  it('refuses --from that is not the last entry of a directory that holds some', async () => {
    const oplog = new FakeOplog();
    oplog.push(...range(1, 10));
    const dir = newDir();
    await streamUntil({ source: oplog, dir, from: at(2) }, hasEntries(8));
    for (const [from, why] of [[at(5), /written twice/], [at(10) /* inside */, null], [{ secs: T0 + 1, inc: 1 }, /missing/]] as const) {
      const run = streamOplog({ source: oplog, judge, dir, rotateBytes: 1000, from, log: silent, signal: AbortSignal.abort() });
      if (why === null) assert.deepEqual((await run).backedUpTo, at(10));
      else await assert.rejects(run, (err: unknown) => err instanceof StreamRefusal && /ends at 1700000000,10, not at --from/.test(err.message) && why.test(err.message));
    }
  });

  it('refuses to resume after an entry the oplog has rolled over, and writes nothing', async () => {
    const oplog = new FakeOplog();
    oplog.push(...range(1, 10));
    oplog.drop(4);
    const dir = newDir();
    await assert.rejects(
      streamOplog({ source: oplog, judge, dir, rotateBytes: 1000, from: at(3), log: silent, signal: new AbortController().signal }),
      (err: unknown) => err instanceof OplogGap && /entries between 1700000000,3 and 1700000000,5 are missing: the oplog has rolled over/.test(err.message) && /new full backup is needed/.test(err.message),
    );
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  it('refuses a --from that names no entry: the first one after it proves nothing', async () => {
    const oplog = new FakeOplog();
    oplog.push(...[1, 2, 5, 6].map((inc) => oplogEntry(at(inc))));
    await assert.rejects(
      streamOplog({ source: oplog, judge, dir: newDir(), rotateBytes: 1000, from: at(3), log: silent, signal: new AbortController().signal }),
      (err: unknown) => err instanceof OplogGap && /holds no entry at 1700000000,3 \(the first at or after it is 1700000000,5\)/.test(err.message),
    );
  });

  it('says so when the server has no oplog', async () => {
    await assert.rejects(
      streamOplog({ source: new FakeOplog(), judge, dir: newDir(), rotateBytes: 1000, log: silent, signal: new AbortController().signal }),
      (err: unknown) => err instanceof NoOplog && /replica-set member/.test(err.message),
    );
  });

  it('reconnects after a transient error from the last durable entry, losing and repeating nothing', async () => {
    const oplog = new FakeOplog();
    oplog.push(...range(1, 4));
    const dir = newDir();
    const controller = new AbortController();
    const progress = new StreamProgress();
    const running = streamOplog({ source: oplog, judge, dir, rotateBytes: 700, from: at(1), log: silent, progress, signal: controller.signal, retryDelayMs: () => 1 });
    await until(() => progress.snapshot().entries === 4);
    oplog.failNext(new Transient('connection reset'));
    oplog.push(...range(5, 6));
    await until(() => progress.snapshot().entries === 10);
    assert.equal(oplog.tails, 2);
    oplog.failNext(new Transient('cursor killed'));
    oplog.push(...range(11, 2));
    await until(() => progress.snapshot().entries === 12);
    controller.abort();
    const result = await running;
    assert.deepEqual(result.backedUpTo, at(12));
    assert.deepEqual(concatenatedOplog(dir), Buffer.concat(range(1, 12)));
  });

  it('stops with OplogGap when the oplog rolled past the last durable entry while it was disconnected', async () => {
    const oplog = new FakeOplog();
    oplog.push(...range(1, 4));
    const controller = new AbortController();
    const progress = new StreamProgress();
    const running = streamOplog({ source: oplog, judge, dir: newDir(), rotateBytes: 1000, from: at(1), log: silent, progress, signal: controller.signal, retryDelayMs: () => 1 });
    await until(() => progress.snapshot().entries === 4);
    oplog.push(...range(5, 5));
    oplog.drop(6);
    oplog.failNext(new Transient('connection reset'));
    await assert.rejects(running, (err: unknown) => err instanceof OplogGap && /between 1700000000,4 and 1700000000,7 are missing/.test(err.message));
  });

  it('gives up at once on an error that is not transient', async () => {
    const oplog = new FakeOplog();
    oplog.push(...range(1, 2));
    const controller = new AbortController();
    const progress = new StreamProgress();
    const running = streamOplog({ source: oplog, judge, dir: newDir(), rotateBytes: 1000, from: at(1), log: silent, progress, signal: controller.signal });
    await until(() => progress.snapshot().entries === 2);
    oplog.failNext(new Error('not authorized on local to execute command'));
    await assert.rejects(running, /not authorized/);
  });

  it('lets one streamer at a time write a directory', async () => {
    const oplog = new FakeOplog();
    oplog.push(...range(1, 2));
    const dir = newDir();
    const controller = new AbortController();
    const progress = new StreamProgress();
    const running = streamOplog({ source: oplog, judge, dir, rotateBytes: 1000, from: at(1), log: silent, progress, signal: controller.signal });
    await until(() => progress.snapshot().entries === 2);
    await assert.rejects(
      streamOplog({ source: oplog, judge, dir, rotateBytes: 1000, log: silent, signal: new AbortController().signal }),
      (err: unknown) => err instanceof StreamRefusal && new RegExp(`another hotbackup oplog \\(pid ${process.pid}\\) is streaming into`).test(err.message),
    );
    controller.abort();
    await running;
  });
});
