/**
 * What the reflink strategy reports besides its clones, on a real loop-mounted XFS, with
 * a stand-in for the fsync lock (no mongod: the lock is not what is tested here):
 * - an optional file gone before its clone is a warning of the snapshot's, as the
 *   copier's skipped files are;
 * - a staging directory that cannot be removed after a good copy (a file in it made
 *   immutable) does not fail the release: it is a warning, the journal keeps naming the
 *   staging, and what the next start sweeps (recoverStaging) removes it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { loopFsUnavailable, mountLoopFs, type LoopFs } from '../../helpers/loop_fs.js';
import { tempDir } from '../../helpers/paths.js';
import { ReflinkStrategy } from '../../../src/backup/strategies/reflink_strategy.js';
import { WritesBlockedWindow } from '../../../src/backup/strategies/writes_blocked.js';
import { recoverStaging } from '../../../src/backup/recovery_steps.js';
import type { Snapshot, SnapshotStrategy } from '../../../src/backup/strategies/snapshot.js';
import type { SnapshotRequest } from '../../../src/backup/backup_engine.js';
import type { SourceFile } from '../../../src/backup/copy_types.js';
import type { RunHoldings, RunJournal } from '../../../src/backup/run_journal.js';

const silent = pino({ level: 'silent' });
const xfsUnavailable = loopFsUnavailable('xfs');

/** A journal that keeps every record, in order. */
class RecordingJournal implements RunJournal {
  readonly records: RunHoldings[] = [];
  begin = async () => undefined;
  record = async (holdings: RunHoldings) => {
    this.records.push(holdings);
  };
  end = async () => undefined;
  settle = async () => undefined;
}

/**
 * Stands in for the fsyncLock strategy: opens the window, tells the request, lists with
 * the strategy's own `list`, then runs `underLock` (what happens while locked).
 */
function standInLock(dbpath: string, underLock: () => void = () => undefined): (list: (dbpath: string) => Promise<SourceFile[]>) => SnapshotStrategy {
  return (list) => ({
    name: 'fsyncLock',
    async open(request: SnapshotRequest): Promise<Snapshot> {
      const writesBlocked = new WritesBlockedWindow();
      writesBlocked.begin();
      request.onWritesBlocked?.('reflink', writesBlocked);
      const files = await list(dbpath);
      underLock();
      return { strategy: 'fsyncLock', reason: 'stand-in', files, writesBlocked, lost: new AbortController().signal, release: async () => writesBlocked.end() };
    },
  });
}

describe('the reflink snapshot on XFS: what it reports besides its clones', () => {
  let xfs: LoopFs | undefined;
  let elsewhere: { dir: string; remove: () => void } | undefined;

  before(async () => {
    if (xfsUnavailable !== undefined) return;
    xfs = await mountLoopFs('xfs', 300);
    elsewhere = tempDir('reflink-release');
  });

  after(async () => {
    elsewhere?.remove();
    await xfs?.remove();
  });

  function setUp(name: string): { dbpath: string; stagingRoot: string; destination: string; journal: RecordingJournal; request: SnapshotRequest } {
    const root = path.join((xfs as LoopFs).dir, name);
    const dbpath = path.join(root, 'db');
    fs.mkdirSync(path.join(dbpath, 'journal'), { recursive: true });
    fs.writeFileSync(path.join(dbpath, 'WiredTiger'), 'WiredTiger\nWiredTiger 3.2.1\n');
    fs.writeFileSync(path.join(dbpath, 'collection-1-42.wt'), Buffer.alloc(64 * 1024, 7));
    fs.writeFileSync(path.join(dbpath, 'journal', 'WiredTigerLog.0000000001'), Buffer.alloc(16 * 1024, 1));
    fs.writeFileSync(path.join(dbpath, 'mongod.log'), 'a log line\n');
    // On another filesystem: the clones are staged, not made in the destination.
    const destination = path.join((elsewhere as { dir: string }).dir, name);
    fs.mkdirSync(destination);
    const journal = new RecordingJournal();
    const request: SnapshotRequest = {
      backupId: randomUUID(),
      destination,
      strategy: 'reflink',
      allowWriteBlocking: false,
      journal,
      signal: new AbortController().signal,
    };
    return { dbpath, stagingRoot: path.join(root, 'staging'), destination, journal, request };
  }

  it('an optional file gone before its clone is a warning', { skip: xfsUnavailable }, async () => {
    const { dbpath, stagingRoot, request } = setUp('dropped');
    const reflink = new ReflinkStrategy({
      dbpath,
      stagingRoot,
      flush: async () => undefined,
      log: silent,
      // Gone between the listing under the lock and its clone.
      fsyncLock: standInLock(dbpath, () => fs.rmSync(path.join(dbpath, 'mongod.log'))),
    });
    const snapshot = await reflink.open(request);
    try {
      assert.deepEqual(
        snapshot.files.map((f) => f.relativePath),
        ['collection-1-42.wt', 'journal/WiredTigerLog.0000000001', 'WiredTiger'],
      );
      assert.deepEqual(snapshot.warnings, ['mongod.log was left out: it could not be cloned: No such file or directory (ENOENT)']);
    } finally {
      await snapshot.release();
    }
    assert.deepEqual(fs.readdirSync(stagingRoot), [], 'staging removed');
  });

  it('a staging directory that cannot be removed is a warning, stays recorded, and the next start removes it', { skip: xfsUnavailable }, async () => {
    const { dbpath, stagingRoot, journal, request } = setUp('left-behind');
    const reflink = new ReflinkStrategy({ dbpath, stagingRoot, flush: async () => undefined, log: silent, fsyncLock: standInLock(dbpath) });
    const snapshot = await reflink.open(request);
    const staging = path.join(stagingRoot, `hotbackup-staging-${request.backupId}`);
    assert.deepEqual(journal.records.at(-1), { strategy: 'reflink', staging }, 'the staging is recorded before it exists');
    // Not even root may unlink an immutable file (chattr(1), FS_IMMUTABLE_FL).
    const stuck = path.join(staging, 'collection-1-42.wt');
    execFileSync('chattr', ['+i', stuck]);
    try {
      await snapshot.release();
      assert.equal(snapshot.warnings?.length, 1);
      assert.match(
        snapshot.warnings?.[0] ?? '',
        new RegExp(
          // Node's recursive rm reports an undeletable file as EPERM, or ENOTDIR once it tried it as a directory.
          `^the staging directory ${staging} could not be removed \\(.+ \\((EPERM|ENOTDIR)\\) at ${stuck}\\): the backup is complete all the same\\. ` +
            'The proxy removes it at its next start',
        ),
      );
      assert.ok(fs.existsSync(stuck), 'the staging directory is still there');
      assert.deepEqual(journal.records.at(-1), { strategy: 'reflink', staging }, 'not struck from the journal: it is still there');
      await snapshot.release();
      assert.equal(snapshot.warnings?.length, 1, 'released once');
    } finally {
      execFileSync('chattr', ['-i', stuck]);
    }
    // What the next start does, with or without a state file.
    await recoverStaging(undefined, stagingRoot, silent);
    assert.deepEqual(fs.readdirSync(stagingRoot), []);
  });
});
