/**
 * Scheduled jobs through the proxy, as an operator runs them: `hotbackup serve --schedule
 * 'every 2s' --backup-root R --keep 2` in front of the dev server, driven and watched with
 * the real driver (backupJob, backupStatus.job).
 *
 * The acceptance: after about 7 s (three run times) exactly 2 complete backups;
 * after `stop`, no new one; after a restart of the proxy, still Stopped. The test waits for
 * what backupStatus shows (runs counted, next run time), not for a guessed time; the only
 * waits on the clock are for the scheduler's own next-run time to pass, so that "no new
 * backup" is observed across a time at which one would have been taken.
 *
 * The journal files are 1 MB (WiredTiger's file_max), not mongod's 100 MB: every backup
 * copies them, every 2 s.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient, type Db } from 'mongodb';
import { startDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/paths.js';
import { until, untilBackupEnds } from '../helpers/poll.js';
import { assertMatchesManifest } from '../helpers/backups.js';
import { readCatalog } from '../../src/backup/backup_catalog.js';

const SMALL_JOURNAL = ['--wiredTigerEngineConfigString', 'log=(file_max=1MB)'];
const PERIOD_MS = 2000;

interface Runs {
  ok: number;
  failed: number;
  skipped: number;
}

interface JobDoc {
  state: string;
  schedule: string;
  backupRoot: string;
  keep: number;
  fullEvery: number | null;
  nextRunAt: Date | null;
  backups: string[];
  runs: Runs;
  running: { backupId: string; destination: string; scheduledAt: Date } | null;
  lastRun: (Record<string, unknown> & { result: string; scheduledAt: Date }) | null;
}

async function jobStatus(admin: Db): Promise<{ inProgress: boolean; job: JobDoc }> {
  const status = await admin.command({ backupStatus: 1 });
  return { inProgress: status['inProgress'] === true, job: status['job'] as JobDoc };
}

/** The job between runs: no backup in progress, none of its own running. */
async function untilIdle(admin: Db): Promise<JobDoc> {
  return until(async () => {
    const { inProgress, job } = await jobStatus(admin);
    return !inProgress && job.running === null && job;
  });
}

/** Complete backups (with a manifest) under `root`, by name. */
async function completeBackups(root: string): Promise<string[]> {
  return (await readCatalog(root)).filter((entry) => entry.manifest !== undefined).map((entry) => entry.name);
}

/**
 * The complete backups under the root at a moment when the job is idle, with the job's
 * status of that moment: read between two idle statuses that agree, so that no run can
 * have written a manifest and not yet applied its retention in between.
 */
async function settledRoot(admin: Db, root: string, enough: (job: JobDoc) => boolean): Promise<{ job: JobDoc; complete: string[] }> {
  return until(async () => {
    const before = await jobStatus(admin);
    if (before.inProgress || before.job.running !== null || !enough(before.job)) return undefined;
    const complete = await completeBackups(root);
    const after = await jobStatus(admin);
    const same = !after.inProgress && after.job.running === null && after.job.runs.ok === before.job.runs.ok;
    return same && { job: after.job, complete };
  });
}

/** Waits until the wall clock is past `at`: the scheduler's own time, as backupStatus gave it. */
async function untilPast(at: Date): Promise<void> {
  await until(() => Date.now() > at.getTime());
}

describe('scheduled jobs through the proxy', () => {
  it("every 2 s with --keep 2: 2 backups after three runs; stop takes none, and stays Stopped across a restart; deactivate deletes only the job's", async () => {
    const server = await startDevServer({ args: SMALL_JOURNAL });
    const scratch = tempDir('jobs');
    const root = path.join(scratch.dir, 'backups');
    fs.mkdirSync(root);
    const jobArgs = ['--schedule', 'every 2s', '--backup-root', root, '--keep', '2', '--state-dir', path.join(scratch.dir, 'state')];
    let proxy: RunningProxy | undefined = await startProxy(server, jobArgs);
    let client = new MongoClient(proxy.uri);
    try {
      let admin = client.db('admin');
      await client.db('app').collection<{ _id: number; pad: string }>('docs').insertMany(Array.from({ length: 500 }, (_, i) => ({ _id: i, pad: 'x'.repeat(500) })));

      // backupStatus.job as the driver reads it.
      const first = (await jobStatus(admin)).job;
      assert.equal(first.state, 'Active');
      assert.equal(first.schedule, 'every 2s');
      assert.equal(first.backupRoot, root);
      assert.equal(first.keep, 2);
      assert.equal(first.fullEvery, null);
      assert.deepEqual(first.runs, { ok: 0, failed: 0, skipped: 0 });

      // After three run times (about 7 s on an idle machine): exactly 2 complete backups.
      const { job: afterThree, complete } = await settledRoot(admin, root, (job) => job.runs.ok >= 3);
      assert.equal(complete.length, 2, `complete backups under the root: ${complete.join(', ')}`);
      assert.deepEqual(afterThree.backups, complete);
      assert.equal(afterThree.lastRun?.result, 'ok');
      assert.equal(afterThree.lastRun?.type, 'incremental');
      assert.ok(afterThree.nextRunAt instanceof Date, 'an idle Active job shows its next run time');
      const [older, newer] = complete.map((name) => path.join(root, name));
      const newest = await assertMatchesManifest(newer as string);
      await assertMatchesManifest(older as string);
      assert.deepEqual(newest.base?.path, older, 'the newest is incremental against the one before');
      assert.equal((await admin.command({ backupVerify: newer }))['ok'], 1);

      // A run that falls due during a client's backup is skipped, and says whose.
      // Throttled so that it lasts past a run time; begun between two scheduled runs (one
      // that starts first refuses it: then unthrottle, let that one end, and try again).
      const manual = await until(async () => {
        await untilIdle(admin);
        await admin.command({ backupThrottle: '64KB' });
        return admin.command({ backupStart: path.join(root, 'by-hand'), async: true }).catch(async (err: { code?: number }) => {
          if (err.code !== 117) throw err;
          await admin.command({ backupThrottle: 0 });
          return undefined;
        });
      });
      const skipped = await until(async () => {
        const { job } = await jobStatus(admin);
        return job.lastRun?.result === 'skipped' && job;
      });
      assert.match(String(skipped.lastRun?.errmsg), new RegExp(`^scheduled backup skipped: backup ${String(manual['backupId'])} into ${path.join(root, 'by-hand')} was running`));
      assert.equal(skipped.lastRun?.codeName, 'ConflictingOperationInProgress');
      await admin.command({ backupThrottle: 0 });
      await untilBackupEnds(admin);

      // Stop: the reply says so, and across the next run time nothing is taken.
      const pending = await until(async () => (await jobStatus(admin)).job.nextRunAt ?? undefined);
      const stopped = await admin.command({ backupJob: 'stop' });
      assert.deepEqual({ ...stopped }, { ok: 1, state: 'Stopped', previousState: 'Active', nextRunAt: null });
      const baseline = await untilIdle(admin);
      const namesAtStop = fs.readdirSync(root).sort();
      assert.equal(baseline.state, 'Stopped');
      assert.equal(baseline.nextRunAt, null);
      // A whole period after the later of the pending run time and the moment it stood idle.
      await untilPast(new Date(Math.max(pending.getTime(), Date.now()) + PERIOD_MS));
      const later = await untilIdle(admin);
      assert.deepEqual(later.runs, baseline.runs);
      assert.deepEqual(later.lastRun, baseline.lastRun);
      assert.deepEqual(fs.readdirSync(root).sort(), namesAtStop);

      // A restart of the proxy: still Stopped, with its backups and last run, and still taking none.
      await client.close();
      assert.equal(await proxy.stop(), 0);
      proxy = await startProxy(server, jobArgs);
      client = new MongoClient(proxy.uri);
      admin = client.db('admin');
      const restarted = (await jobStatus(admin)).job;
      assert.equal(restarted.state, 'Stopped');
      assert.equal(restarted.nextRunAt, null);
      assert.deepEqual(restarted.backups, baseline.backups);
      assert.deepEqual(restarted.runs, baseline.runs);
      await untilPast(new Date(Date.now() + PERIOD_MS));
      assert.deepEqual(fs.readdirSync(root).sort(), namesAtStop);

      // Deactivate: refused without confirm (and with a misspelt one), the backups untouched.
      await assert.rejects(admin.command({ backupJob: 'deactivate' }), (err: Error & { code?: number; codeName?: string }) => {
        assert.equal(err.code, 2);
        assert.equal(err.codeName, 'BadValue');
        assert.match(err.message, new RegExp(`deletes its 2 backups under ${root} .*send \\{backupJob: 'deactivate', confirm: true\\}`));
        return true;
      });
      await assert.rejects(admin.command({ backupJob: 'deactivate', confrim: true }), { code: 40415, message: "BSON field 'backupJob.confrim' is an unknown field." });
      assert.deepEqual(fs.readdirSync(root).sort(), namesAtStop);
      // With confirm: Inactive, the job's backups gone, the one taken by hand kept.
      const deactivated = await admin.command({ backupJob: 'deactivate', confirm: true });
      assert.deepEqual({ ...deactivated }, { ok: 1, state: 'Inactive', previousState: 'Stopped', nextRunAt: null, removed: baseline.backups });
      assert.deepEqual(fs.readdirSync(root), ['by-hand']);
      assert.equal((await jobStatus(admin)).job.state, 'Inactive');

      // Start: Active again, and the next backup is taken against the newest good one in the root.
      const started = await admin.command({ backupJob: 'start' });
      assert.equal(started['state'], 'Active');
      assert.ok(started['nextRunAt'] instanceof Date);
      const resumed = await until(async () => {
        const { job } = await jobStatus(admin);
        return job.runs.ok > baseline.runs.ok && job;
      });
      assert.equal(resumed.lastRun?.type, 'incremental');
      assert.equal(resumed.lastRun?.incrementalBase, path.join(root, 'by-hand'));
    } finally {
      await client.close();
      await proxy?.stop();
      await server.stop();
      server.cleanup();
      scratch.remove();
    }
  });

  it('without --schedule: backupJob says the proxy runs no job, and backupStatus has no job field', async () => {
    const server = await startDevServer();
    const proxy = await startProxy(server);
    const client = new MongoClient(proxy.uri);
    try {
      const admin = client.db('admin');
      await assert.rejects(admin.command({ backupJob: 'stop' }), {
        code: 20,
        codeName: 'IllegalOperation',
        message: 'this proxy runs no scheduled backup job: start it with --schedule, --backup-root and --keep (hotbackup serve --help)',
      });
      await assert.rejects(admin.command({ backupJob: 'pause' }), { code: 2, message: "backupJob must be 'start', 'stop' or 'deactivate'; got 'pause'" });
      await assert.rejects(admin.command({ backupJob: 1 }), { code: 14 });
      assert.equal((await admin.command({ backupStatus: 1 }))['job'], undefined);
    } finally {
      await client.close();
      await proxy.stop();
      await server.stop();
      server.cleanup();
    }
  });
});
