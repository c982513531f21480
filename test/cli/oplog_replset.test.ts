/**
 * `hotbackup oplog` as an operator runs it, against the dev server as an initiated
 * single-node replica set (`--replSet rs0`), with a writer inserting with j:true: a
 * SIGINT mid-write prints mongobackup's two lines and exits 0; resuming with the
 * printed --from (and after a kill -9 that left a torn entry) gives files that hold
 * every entry of the server's oplog exactly once, byte for byte; an oplog rolled over
 * past --from is refused; a standalone has no oplog.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient, type Collection } from 'mongodb';
import { Timestamp } from 'bson';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startReplicaSet, type RunningReplicaSet } from '../helpers/replica_set.js';
import { runCli, startCli, type RunningCli } from '../helpers/cli_run.js';
import { tempDir } from '../helpers/paths.js';
import { inBackground, until } from '../helpers/poll.js';
import { concatenatedOplog } from '../helpers/oplog_entries.js';
import { entryTs, formatOplogTs, type OplogTs } from '../../src/oplog/oplog_ts.js';

const RESUME_LINES = /^Backed up to ts: Timestamp (\d+)000\|(\d+)\nUse --from (\d+),(\d+) to resume\.\n$/;

/** The entries of `buffer`, which must be a concatenation of whole BSON documents. */
function splitEntries(buffer: Buffer): Buffer[] {
  const entries: Buffer[] = [];
  for (let at = 0; at < buffer.length; ) {
    const length = at + 4 <= buffer.length ? buffer.readInt32LE(at) : -1;
    if (length < 5 || at + length > buffer.length || buffer[at + length - 1] !== 0) throw new Error(`no whole document at byte ${at} of the concatenated files`);
    entries.push(buffer.subarray(at, at + length));
    at += length;
  }
  return entries;
}

/** The server's oplog entries with `from` <= ts <= `upTo`, raw, in order. */
async function serverOplog(client: MongoClient, from: OplogTs, upTo: OplogTs): Promise<Buffer[]> {
  const oplog = client.db('local').collection('oplog.rs');
  const bound = (ts: OplogTs) => new Timestamp({ t: ts.secs, i: ts.inc });
  return (await oplog.find<Buffer>({ ts: { $gte: bound(from), $lte: bound(upTo) } }, { raw: true }).toArray()).map((entry) => Buffer.from(entry));
}

async function newestTs(client: MongoClient): Promise<OplogTs> {
  const [newest] = await client.db('local').collection('oplog.rs').find({}, { sort: { $natural: -1 }, limit: 1 }).toArray();
  const ts = newest?.['ts'] as Timestamp;
  return { secs: ts.t, inc: ts.i };
}

/** The resume point the two lines give, checked for agreeing with each other. */
function resumePoint(stdout: string): OplogTs {
  const match = RESUME_LINES.exec(stdout);
  assert.ok(match !== null, `mongobackup's two lines, and nothing else, on stdout: ${JSON.stringify(stdout)}`);
  assert.deepEqual([match[1], match[2]], [match[3], match[4]], 'both lines name the same ts');
  return { secs: Number(match[3]), inc: Number(match[4]) };
}

describe('hotbackup oplog', () => {
  const scratch = tempDir('oplog-cli');
  after(() => scratch.remove());

  it('says a standalone has no oplog (exit 5)', async () => {
    const server: RunningDevServer = await startDevServer();
    try {
      const run = await runCli(['oplog', '--upstream', server.uri, '--out', path.join(scratch.dir, 'standalone')]);
      assert.equal(run.code, 5, run.stderr);
      assert.match(run.stderr, /^hotbackup oplog: the server has no oplog .*replica-set member/);
    } finally {
      await server.stop();
      server.cleanup();
    }
  });

  describe('on a replica set', () => {
    let set: RunningReplicaSet;
    let client: MongoClient;
    let docs: Collection<{ _id: number; pad: string }>;
    let nextId = 0;
    before(async () => {
      set = await startReplicaSet();
      client = await MongoClient.connect(set.uri);
      docs = client.db('test').collection('docs');
    });
    after(async () => {
      await client?.close();
      await set?.server.stop();
      set?.server.cleanup();
    });

    /** Inserts with j:true, one at a time, until `stop` says so; resolves with how many. */
    function writer(stop: () => boolean) {
      return inBackground(async () => {
        while (!stop()) await docs.insertOne({ _id: nextId++, pad: 'x'.repeat(300) }, { writeConcern: { w: 1, j: true } });
      });
    }
    const started: RunningCli[] = [];
    const stream = (out: string, ...args: string[]): RunningCli => {
      const cli = startCli(['oplog', '--upstream', set.uri, '--out', out, '--rotate-size', '16KB', ...args]);
      started.push(cli);
      return cli;
    };
    // A test that fails half-way leaves no streamer running (and the run waiting on it).
    afterEach(() => {
      for (const cli of started.splice(0)) if (cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill('SIGKILL');
    });
    const entriesIn = (out: string) => (fs.existsSync(out) ? splitEntries(concatenatedOplog(out)) : []);
    /** Polls until the files reach the server's newest entry. */
    const caughtUp = async (out: string) => {
      const newest = await newestTs(client);
      await until(() => {
        const entries = entriesIn(out);
        const last = entries[entries.length - 1];
        return last !== undefined && formatOplogTs(entryTs(last)) === formatOplogTs(newest);
      });
    };

    it('stops on SIGINT mid-write with the two lines; resuming from them leaves every entry exactly once', async () => {
      const out = path.join(scratch.dir, 'resume');
      await docs.insertOne({ _id: nextId++, pad: '' }, { writeConcern: { j: true } });
      const start = await newestTs(client);
      let stopping = false;
      const writing = writer(() => stopping);
      const first = stream(out, '--from', formatOplogTs(start));
      await writing.until(() => entriesIn(out).length >= 40);
      first.child.kill('SIGINT');
      const stopped = await first.done;
      assert.equal(stopped.code, 0, stopped.stderr);
      const resume = resumePoint(stopped.stdout);
      const written = entriesIn(out);
      assert.equal(formatOplogTs(entryTs(written[written.length - 1] as Buffer)), formatOplogTs(resume), 'the printed ts is the last entry written');
      // The writer goes on while no streamer runs; the second picks up where the first stopped.
      const idAtStop = nextId;
      await writing.until(() => nextId >= idAtStop + 30);
      const second = stream(out, '--from', formatOplogTs(resume));
      await writing.until(() => entriesIn(out).length >= written.length + 40);
      stopping = true;
      await writing.done;
      await caughtUp(out);
      second.child.kill('SIGTERM');
      const end = await second.done;
      assert.equal(end.code, 0, end.stderr);
      const last = resumePoint(end.stdout);
      const all = entriesIn(out);
      assert.equal(formatOplogTs(entryTs(all[all.length - 1] as Buffer)), formatOplogTs(last));
      assert.deepEqual(all, await serverOplog(client, start, last));
      assert.ok(fs.readdirSync(out).length > 2, 'rotated at 16 KiB');
    });

    it('after a kill -9 that tore the last entry, continues after the last whole one: nothing lost, nothing twice', async () => {
      const out = path.join(scratch.dir, 'killed');
      await docs.insertOne({ _id: nextId++, pad: '' }, { writeConcern: { j: true } });
      const start = await newestTs(client);
      let stopping = false;
      const writing = writer(() => stopping);
      const first = stream(out, '--from', formatOplogTs(start));
      await writing.until(() => entriesIn(out).length >= 30);
      first.child.kill('SIGKILL');
      await first.done;
      // As if the kill had come in the middle of a write: half an entry after the last whole one.
      const files = fs.readdirSync(out).filter((name) => name.endsWith('.bson')).sort();
      const lastFile = path.join(out, files[files.length - 1] as string);
      const sample = (await serverOplog(client, start, await newestTs(client)))[0] as Buffer;
      const beforeTear = fs.readFileSync(lastFile);
      fs.appendFileSync(lastFile, sample.subarray(0, Math.floor(sample.length / 2)));
      const second = stream(out);
      await writing.until(() => second.stderr().includes('cut a torn tail'));
      stopping = true;
      await writing.done;
      await caughtUp(out);
      second.child.kill('SIGINT');
      const end = await second.done;
      assert.equal(end.code, 0, end.stderr);
      const last = resumePoint(end.stdout);
      // Cut back to whole entries: what it held before (less a torn entry of the kill's own,
      // if the kill came mid-write). A kill just after a rotation leaves the new file empty:
      // recovery removes it, and the second run writes that number afresh.
      if (beforeTear.length > 0) {
        const cut = fs.readFileSync(lastFile);
        assert.ok(cut.length > 0 && beforeTear.subarray(0, cut.length).equals(cut), 'the torn file keeps its whole entries, unchanged');
        splitEntries(cut);
      }
      assert.equal(formatOplogTs(entryTs(entriesIn(out).at(-1) as Buffer)), formatOplogTs(last));
      assert.deepEqual(entriesIn(out), await serverOplog(client, start, last));
    });
  });

  it('refuses --from once the oplog has rolled over past it (exit 4): a new full backup is needed', async () => {
    const set = await startReplicaSet({ args: ['--oplogSize', '1'] });
    const client = await MongoClient.connect(set.uri);
    try {
      const docs = client.db('test').collection<{ _id: number; pad?: string }>('rolled');
      await docs.insertOne({ _id: -1 });
      const early = await newestTs(client);
      // About 2 MiB through a 1 MiB oplog.
      for (let i = 0; i < 40; i++) await docs.insertMany(Array.from({ length: 10 }, (_, j) => ({ _id: i * 10 + j, pad: 'y'.repeat(5000) })));
      const out = path.join(scratch.dir, 'rolled');
      const run = await runCli(['oplog', '--upstream', set.uri, '--out', out, '--from', formatOplogTs(early)]);
      assert.equal(run.code, 4, run.stderr);
      assert.match(run.stderr, new RegExp(`oplog entries between ${formatOplogTs(early)} and \\d+,\\d+ are missing: the oplog has rolled over past ${formatOplogTs(early)}.*a new full backup is needed`));
      assert.equal(run.stdout, '');
      assert.deepEqual(fs.readdirSync(out), []);
    } finally {
      await client.close();
      await set.server.stop();
      set.server.cleanup();
    }
  });
});
