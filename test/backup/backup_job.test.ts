/**
 * The scheduled job over a fake clock: the real engine (with a fake snapshot source over
 * small real files, as in backup_engine.test.ts) writes real backups and manifests into a
 * real root, and the test moves time by hand. Nothing waits on the wall clock: after
 * moving the clock, a test waits for the run it set off (BackupJob.settled()).
 */
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { BackupEngine, type SnapshotRequest, type SnapshotSource, type UpstreamAdmin } from '../../src/backup/backup_engine.js';
import { BackupJob, type JobStatus } from '../../src/backup/backup_job.js';
import { backupNameAt } from '../../src/backup/job_snapshots.js';
import { jobFilePath, readJobFile } from '../../src/backup/job_state_file.js';
import { readCatalog } from '../../src/backup/backup_catalog.js';
import { parseSchedule } from '../../src/backup/schedule_spec.js';
import { NEVER_BLOCKED } from '../../src/backup/strategies/writes_blocked.js';
import type { Snapshot } from '../../src/backup/strategies/snapshot.js';
import type { SourceFile } from '../../src/backup/copy_types.js';
import { CommandError, ErrorCodes } from '../../src/errors.js';
import { FakeClock } from '../helpers/fake_clock.js';
import { until } from '../helpers/poll.js';
import { tempDir } from '../helpers/paths.js';

const silent = pino({ level: 'silent' });
const admin: UpstreamAdmin = { host: 'mongod.test:27018', serverVersion: async () => '8.0.4-fake' };
const START = Date.UTC(2026, 10, 21, 2, 0, 0);
const DAY = 86_400_000;

/** A snapshot source whose next open can be made to fail, or held until the test lets it go. */
class Source implements SnapshotSource {
  opens = 0;
  failWith: CommandError | undefined;
  #held: Promise<void> | undefined;
  #release: () => void = () => undefined;

  constructor(private readonly files: SourceFile[]) {}

  hold(): void {
    this.#held = new Promise((resolve) => (this.#release = resolve));
  }

  release(): void {
    this.#release();
    this.#held = undefined;
  }

  async open(request: SnapshotRequest): Promise<Snapshot> {
    this.opens += 1;
    if (this.failWith !== undefined) throw this.failWith;
    if (this.#held !== undefined) {
      const held = this.#held;
      await new Promise<void>((resolve, reject) => {
        request.signal.addEventListener('abort', () => reject(request.signal.reason as Error), { once: true });
        void held.then(resolve);
      });
    }
    const lost = new AbortController();
    return { strategy: 'backupCursor', reason: 'a fake snapshot', files: this.files, writesBlocked: NEVER_BLOCKED, lost: lost.signal, release: async () => undefined };
  }
}

interface Stack {
  scratch: string;
  root: string;
  stateDir: string;
  dbpath: string;
  source: Source;
  engine: BackupEngine;
  clock: FakeClock;
  open(options?: { schedule?: string; keep?: number; fullEvery?: number; root?: string }): Promise<BackupJob>;
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function stack(): Stack {
  const scratch = tempDir('job');
  cleanups.push(scratch.remove);
  const dbpath = path.join(scratch.dir, 'db');
  const files = Object.entries({ WiredTiger: 'WiredTiger\n', 'collection-0-1.wt': 'c'.repeat(5000), 'journal/WiredTigerLog.0000000001': 'log' }).map(([relativePath, data]) => {
    const file = path.join(dbpath, relativePath);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, data);
    return { path: file, relativePath, size: data.length };
  });
  const root = path.join(scratch.dir, 'backups');
  const stateDir = path.join(scratch.dir, 'state');
  fs.mkdirSync(root);
  fs.mkdirSync(stateDir);
  const source = new Source(files);
  const engine = new BackupEngine({ dbpath, upstream: admin, snapshots: source, log: silent });
  cleanups.push(() => engine.close());
  const clock = new FakeClock(START);
  return {
    scratch: scratch.dir,
    root,
    stateDir,
    dbpath,
    source,
    engine,
    clock,
    async open(options = {}) {
      const job = await BackupJob.open({
        schedule: parseSchedule(options.schedule ?? 'every 2s'),
        root: options.root ?? root,
        keep: options.keep ?? 2,
        fullEvery: options.fullEvery,
        stateDir,
        backups: engine,
        source: { dbpath, host: admin.host },
        clock,
        log: silent,
      });
      cleanups.push(() => job.close());
      return job;
    },
  };
}

/** Moves the clock on and waits for the run (if any) that it set off to be recorded. */
async function tick(s: Stack, job: BackupJob, ms: number): Promise<JobStatus> {
  await s.clock.advance(ms);
  await job.settled();
  return job.status();
}

const nameAt = (msAfterStart: number) => backupNameAt(new Date(START + msAfterStart));

function dirsIn(root: string): string[] {
  return fs.readdirSync(root).sort();
}

describe('a scheduled job', () => {
  it('takes a backup each period, the first full and each next one against the one before, and keeps its newest N', async () => {
    const s = stack();
    const job = await s.open({ schedule: 'every 2s', keep: 2 });
    assert.equal(job.status().state, 'Active');
    assert.deepEqual(job.status().nextRunAt, new Date(START + 2000));
    assert.deepEqual(dirsIn(s.root), []);

    let status = await tick(s, job, 2000);
    assert.deepEqual(dirsIn(s.root), [nameAt(2000)]);
    assert.equal(status.last?.result, 'ok');
    assert.equal(status.last?.type, 'full');
    assert.deepEqual(status.nextRunAt, new Date(START + 4000));

    status = await tick(s, job, 2000);
    assert.equal(status.last?.type, 'incremental');
    assert.equal(status.last?.incrementalBase, path.join(s.root, nameAt(2000)));

    status = await tick(s, job, 2000);
    // The third success deleted the first: two complete backups, the newest taken against the other.
    const catalog = await readCatalog(s.root);
    assert.deepEqual(
      catalog.map((e) => [e.name, e.manifest !== undefined]),
      [
        [nameAt(4000), true],
        [nameAt(6000), true],
      ],
    );
    assert.equal(catalog[1]?.manifest?.base?.path, path.join(s.root, nameAt(4000)));
    assert.deepEqual(status.backups, [nameAt(4000), nameAt(6000)]);
    assert.deepEqual(status.last?.removed, [nameAt(2000)]);
    assert.deepEqual(status.runs, { ok: 3, failed: 0, skipped: 0 });
    assert.deepEqual(status.nextRunAt, new Date(START + 8000));
  });

  it('takes every K-th backup full with fullEvery K', async () => {
    const s = stack();
    const job = await s.open({ keep: 10, fullEvery: 3 });
    const types: Array<string | undefined> = [];
    for (let i = 0; i < 7; i += 1) types.push((await tick(s, job, 2000)).last?.type);
    assert.deepEqual(types, ['full', 'incremental', 'incremental', 'full', 'incremental', 'incremental', 'full']);
    const catalog = await readCatalog(s.root);
    assert.deepEqual(
      catalog.map((e) => e.manifest?.base === undefined),
      [true, false, false, true, false, false, true],
    );
  });

  it('stopped, takes nothing at its run time; started again, runs one period later', async () => {
    const s = stack();
    const job = await s.open();
    const change = await job.change('stop', { confirm: false });
    assert.deepEqual(change, { state: 'Stopped', previousState: 'Active', nextRunAt: undefined, removed: [] });
    assert.equal(job.status().nextRunAt, undefined);
    assert.deepEqual(s.clock.pending, [], 'no timer is left armed');
    await tick(s, job, 10_000);
    assert.deepEqual(dirsIn(s.root), []);
    assert.equal(s.source.opens, 0);

    const started = await job.change('start', { confirm: false });
    assert.equal(started.state, 'Active');
    assert.deepEqual(started.nextRunAt, new Date(START + 12_000));
    await tick(s, job, 2000);
    assert.deepEqual(dirsIn(s.root), [nameAt(12_000)]);
  });

  it("skips a run that falls due while a client's backup runs, and says whose", async () => {
    const s = stack();
    const job = await s.open();
    s.source.hold();
    const manual = await s.engine.start({ destination: path.join(s.scratch, 'manual') });
    const status = await tick(s, job, 2000);
    assert.equal(status.last?.result, 'skipped');
    assert.equal(status.last?.code, ErrorCodes.ConflictingOperationInProgress);
    assert.match(status.last?.errmsg ?? '', new RegExp(`scheduled backup skipped: backup ${manual.backupId} into .*manual was running, and scheduled backups never overlap another backup`));
    assert.deepEqual(status.runs, { ok: 0, failed: 0, skipped: 1 });
    assert.deepEqual(dirsIn(s.root), []);
    assert.deepEqual(status.nextRunAt, new Date(START + 4000));
    s.source.release();
    assert.equal((await manual.done).ok, true);
    assert.equal((await tick(s, job, 2000)).last?.result, 'ok');
  });

  it('records a failed run, removes what it left, and waits for its next time: no retry, no catch-up', async () => {
    const s = stack();
    const job = await s.open();
    s.source.failWith = new CommandError(ErrorCodes.CannotBackup, 'no strategy can back up this mongod');
    let status = await tick(s, job, 2000);
    assert.equal(status.last?.result, 'failed');
    assert.equal(status.last?.code, ErrorCodes.CannotBackup);
    assert.equal(status.last?.errmsg, 'no strategy can back up this mongod');
    assert.equal(status.last?.destination, path.join(s.root, nameAt(2000)));
    assert.deepEqual(dirsIn(s.root), [], 'the failed backup left no directory');
    assert.deepEqual(status.nextRunAt, new Date(START + 4000));
    assert.equal(s.source.opens, 1);
    // Ten seconds at once: the run due at 4 s, and then nothing until the next time ahead.
    status = await tick(s, job, 10_000);
    assert.equal(s.source.opens, 2);
    assert.deepEqual(status.runs, { ok: 0, failed: 2, skipped: 0 });
    assert.deepEqual(status.nextRunAt, new Date(START + 14_000));
    s.source.failWith = undefined;
    status = await tick(s, job, 2000);
    assert.equal(status.last?.result, 'ok');
  });

  it('keeps its state, backups and last run across a restart', async () => {
    const s = stack();
    const first = await s.open();
    await tick(s, first, 2000);
    await first.change('stop', { confirm: false });
    await first.close();
    const second = await s.open();
    const status = second.status();
    assert.equal(status.state, 'Stopped');
    assert.equal(status.nextRunAt, undefined);
    assert.deepEqual(status.backups, [nameAt(2000)]);
    assert.equal(status.last?.result, 'ok');
    await tick(s, second, 10_000);
    assert.deepEqual(dirsIn(s.root), [nameAt(2000)]);
    const onDisk = await readJobFile(jobFilePath(s.stateDir), new Date());
    assert.equal(onDisk.kind === 'valid' && onDisk.record.state, 'Stopped');
  });

  it("deactivates only when confirmed, deleting the job's backups and nobody else's; Inactive until started", async () => {
    const s = stack();
    const job = await s.open();
    await tick(s, job, 2000);
    await tick(s, job, 2000);
    await job.change('stop', { confirm: false });
    const other = await s.engine.start({ destination: path.join(s.root, 'taken-by-hand') });
    assert.equal((await other.done).ok, true);

    await assert.rejects(job.change('deactivate', { confirm: false }), (err: unknown) => {
      assert.ok(err instanceof CommandError);
      assert.equal(err.code, ErrorCodes.BadValue);
      assert.equal(
        err.message,
        `{backupJob: 'deactivate'} makes the job Inactive and deletes its 2 backups under ${s.root} (${nameAt(2000)}, ${nameAt(4000)}). ` +
          "To do that, send {backupJob: 'deactivate', confirm: true}; to keep them and take no new ones, send {backupJob: 'stop'}",
      );
      return true;
    });
    assert.equal(job.status().state, 'Stopped');
    assert.deepEqual(dirsIn(s.root), [nameAt(2000), nameAt(4000), 'taken-by-hand']);

    const change = await job.change('deactivate', { confirm: true });
    assert.deepEqual(change, { state: 'Inactive', previousState: 'Stopped', nextRunAt: undefined, removed: [nameAt(2000), nameAt(4000)] });
    assert.deepEqual(dirsIn(s.root), ['taken-by-hand']);
    await assert.rejects(job.change('stop', { confirm: false }), { code: ErrorCodes.IllegalOperation });
    await job.close();

    const again = await s.open();
    assert.equal(again.status().state, 'Inactive');
    await tick(s, again, 10_000);
    assert.deepEqual(dirsIn(s.root), ['taken-by-hand']);
    await again.change('start', { confirm: false });
    const status = await tick(s, again, 2000);
    // Incremental against the newest good backup in the root, whoever took it.
    assert.equal(status.last?.type, 'incremental');
    assert.equal(status.last?.incrementalBase, path.join(s.root, 'taken-by-hand'));
  });

  it("refuses to deactivate while its own backup is being written", async () => {
    const s = stack();
    const job = await s.open();
    s.source.hold();
    await s.clock.advance(2000);
    const running = await until(() => job.status().running);
    await assert.rejects(job.change('deactivate', { confirm: true }), (err: unknown) => {
      assert.ok(err instanceof CommandError);
      assert.equal(err.code, ErrorCodes.ConflictingOperationInProgress);
      assert.match(err.message, new RegExp(`^a scheduled backup \\(${running.backupId}\\) is running into ${running.destination}: deactivating now would delete a backup as it is written`));
      return true;
    });
    s.source.release();
    await job.settled();
    assert.equal(job.status().state, 'Active');
    assert.deepEqual(dirsIn(s.root), [nameAt(2000)]);
  });

  it('records a run that a shutdown interrupts, and leaves no directory for it', async () => {
    const s = stack();
    const job = await s.open();
    s.source.hold();
    await s.clock.advance(2000);
    await until(() => job.status().running);
    const closed = job.close();
    await s.engine.close();
    await closed;
    const status = job.status();
    assert.equal(status.last?.result, 'failed');
    assert.equal(status.last?.code, ErrorCodes.InterruptedAtShutdown);
    assert.deepEqual(dirsIn(s.root), []);
    assert.deepEqual(s.clock.pending, []);
  });

  it('moves an unreadable record aside and starts Stopped', async () => {
    const s = stack();
    fs.writeFileSync(jobFilePath(s.stateDir), '{"format": "mongo-hotbackup-proxy-job", "version": 1, "state": "Paused"');
    const job = await s.open();
    assert.equal(job.status().state, 'Stopped');
    const aside = fs.readdirSync(s.stateDir).filter((name) => name.startsWith('job.json.corrupt-'));
    assert.equal(aside.length, 1);
    await tick(s, job, 10_000);
    assert.deepEqual(dirsIn(s.root), []);
  });

  it('begins a new job, Active, for another root', async () => {
    const s = stack();
    const first = await s.open();
    await first.change('stop', { confirm: false });
    await first.close();
    const otherRoot = path.join(s.scratch, 'other');
    fs.mkdirSync(otherRoot);
    const second = await s.open({ root: otherRoot });
    assert.equal(second.status().state, 'Active');
    await tick(s, second, 2000);
    assert.deepEqual(dirsIn(otherRoot), [nameAt(2000)]);
  });

  it("waits out a period longer than Node's longest timer", async () => {
    const s = stack();
    // 30 days is past 2^31-1 ms: a single timer would fire after 1 ms (FakeClock clamps as Node does).
    const job = await s.open({ schedule: 'every 30d' });
    await tick(s, job, 29 * DAY);
    assert.deepEqual(dirsIn(s.root), []);
    assert.deepEqual(job.status().nextRunAt, new Date(START + 30 * DAY));
    await tick(s, job, DAY);
    assert.deepEqual(dirsIn(s.root), [nameAt(30 * DAY)]);
  });

  it('runs a cron expression at its times', async () => {
    const s = stack();
    const job = await s.open({ schedule: '*/5 * * * * *' });
    assert.deepEqual(job.status().nextRunAt, new Date(START + 5000));
    await tick(s, job, 5000);
    await tick(s, job, 5000);
    assert.deepEqual(dirsIn(s.root), [nameAt(5000), nameAt(10_000)]);
    assert.equal(job.status().schedule, '*/5 * * * * *');
  });
});
