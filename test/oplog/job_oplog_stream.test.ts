/**
 * The scheduled job's "applies oplog" column: the stream into <root>/oplog/ runs exactly
 * while the job is Active, stops with it and with the proxy, resumes after its last entry
 * when the job is started again, and waits out an upstream that is down.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import type { BackupJobService } from '../../src/commands/backup_job_command.js';
import type { JobAction, JobChange, JobStatus } from '../../src/backup/backup_job.js';
import type { JobState } from '../../src/backup/job_state_file.js';
import { JobOplogStream, OplogStreamingJob } from '../../src/oplog/job_oplog_stream.js';
import type { OplogSource } from '../../src/oplog/oplog_source.js';
import { concatenatedOplog, oplogEntries } from '../helpers/oplog_entries.js';
import { FakeOplog, Transient } from '../helpers/fake_oplog.js';
import { tempDir } from '../helpers/paths.js';
import { until } from '../helpers/poll.js';

const judge = { isTransient: (err: unknown) => err instanceof Transient };

/** A job whose state the tests set through change(), as the backupJob command does. */
class FakeJob implements BackupJobService {
  constructor(public state: JobState) {}
  status(): JobStatus {
    return { state: this.state } as JobStatus;
  }
  async change(action: JobAction): Promise<JobChange> {
    const previousState = this.state;
    this.state = action === 'start' ? 'Active' : action === 'stop' ? 'Stopped' : 'Inactive';
    return { state: this.state, previousState, nextRunAt: undefined, removed: [] } as unknown as JobChange;
  }
}

const T0 = 1_700_000_000;
const range = (first: number, count: number) => oplogEntries({ secs: T0, inc: first }, count, 40);

describe('the job streams the oplog while Active', () => {
  let root: { dir: string; remove: () => void };
  before(() => {
    root = tempDir('job-oplog');
  });
  after(() => root.remove());
  let n = 0;

  function setUp(state: JobState, connect?: () => Promise<OplogSource>) {
    const oplog = new FakeOplog();
    const dir = path.join(root.dir, `root${n++}`, 'oplog');
    fs.mkdirSync(path.dirname(dir));
    const lines: Array<{ msg: string; level: number }> = [];
    const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as { msg: string; level: number }) });
    const stream = new JobOplogStream({ dir, connect: connect ?? (async () => oplog), judge, rotateBytes: 4096, log, retryDelayMs: () => 1 });
    const job = new FakeJob(state);
    return { oplog, dir, stream, job, lines, entries: () => concatenatedOplog(dir) };
  }

  it('starts with an Active job, stops with stop, and resumes after its last entry with start: each entry once', async () => {
    const { oplog, stream, job, entries } = setUp('Active');
    oplog.push(...range(1, 3));
    const service = new OplogStreamingJob(job, stream);
    assert.equal(stream.running, true);
    await until(() => stream.progress()?.snapshot().entries === 1);
    oplog.push(...range(4, 5));
    await until(() => stream.progress()?.snapshot().entries === 6);
    await service.change('stop', { confirm: false });
    assert.equal(stream.running, false);
    // Written while Stopped: not streamed now, but not lost either.
    oplog.push(...range(9, 4));
    assert.deepEqual(entries(), Buffer.concat(range(3, 6)));
    await service.change('start', { confirm: false });
    oplog.push(...range(13, 2));
    await until(() => stream.progress()?.snapshot().entries === 6);
    await service.close();
    assert.equal(stream.running, false);
    assert.deepEqual(entries(), Buffer.concat(range(3, 12)));
  });

  it('does not stream for a job that is Stopped or Inactive', async () => {
    for (const state of ['Stopped', 'Inactive'] as const) {
      const { stream, job } = setUp(state);
      const service = new OplogStreamingJob(job, stream);
      assert.equal(stream.running, false);
      await service.change('deactivate', { confirm: true });
      assert.equal(stream.running, false);
    }
  });

  it('waits out an upstream that is down when the job becomes Active', async () => {
    let attempts = 0;
    const oplog = new FakeOplog();
    oplog.push(...range(1, 2));
    const { stream, job, lines } = setUp('Stopped', async () => {
      attempts += 1;
      if (attempts < 3) throw new Error('connect ECONNREFUSED');
      return oplog;
    });
    const service = new OplogStreamingJob(job, stream);
    await service.change('start', { confirm: false });
    await until(() => stream.progress()?.snapshot().entries === 1);
    oplog.push(...range(3, 2));
    await until(() => stream.progress()?.snapshot().entries === 3);
    assert.equal(lines.filter((line) => /cannot reach the upstream/.test(line.msg)).length, 2);
    await service.close();
  });

  it('logs an error and stays stopped when the oplog rolled over while the job was stopped', async () => {
    const { oplog, stream, job, lines } = setUp('Active');
    oplog.push(...range(1, 3));
    const service = new OplogStreamingJob(job, stream);
    await until(() => stream.progress()?.snapshot().entries === 1);
    oplog.push(...range(4, 2));
    await until(() => stream.progress()?.snapshot().entries === 3);
    await service.change('stop', { confirm: false });
    oplog.push(...range(6, 5));
    oplog.drop(7);
    await service.change('start', { confirm: false });
    await until(() => !stream.running);
    const error = lines.find((line) => line.level === 50);
    assert.match(error?.msg ?? '', /oplog stream stopped/);
    assert.match(JSON.stringify(error), /entries between 1700000000,5 and 1700000000,8 are missing/);
  });
});
