/**
 * Which strategy a backup gets, over stand-in strategies that record whether they were
 * built and opened: `auto` goes backupCursor, reflink (where the probe clones), fsyncLock
 * (only when allowed), else an error naming the three; a strategy asked for by name
 * runs or fails saying why, and never falls back to another.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MongoServerError } from 'mongodb';
import { AutoSnapshotSource, FSYNC_LOCK_NOT_ALLOWED, noSafeStrategy, type ReflinkCandidate } from '../../../src/backup/strategies/select.js';
import type { Snapshot, StrategyChoice, StrategyName } from '../../../src/backup/strategies/snapshot.js';
import type { ReflinkSupport } from '../../../src/backup/strategies/reflink_probe.js';
import { NEVER_BLOCKED } from '../../../src/backup/strategies/writes_blocked.js';
import { NO_JOURNAL } from '../../../src/backup/run_journal.js';
import type { SnapshotRequest } from '../../../src/backup/backup_engine.js';
import { CommandError, ErrorCodes } from '../../../src/errors.js';
import type { OplogBounds } from '../../../src/backup/oplog_bounds.js';
import type { SourceFile } from '../../../src/backup/copy_types.js';

const NO_STAGE = new MongoServerError({ ok: 0, code: 40324, codeName: 'Location40324', errmsg: "Unrecognized pipeline stage name: '$backupCursor'" });
const XFS: ReflinkSupport = { ok: true, fsType: 'xfs', reason: 'dbpath on xfs supports reflink' };
const EXT4: ReflinkSupport = { ok: false, fsType: 'ext4', reason: 'dbpath on ext4 cannot clone files (FICLONE: Operation not supported (EOPNOTSUPP))' };

interface Fixture {
  source: AutoSnapshotSource;
  /** Each strategy's name, in the order they were opened (and "probe" for each probe). */
  calls: string[];
}

const OPLOG: OplogBounds = { start: { ts: { t: 1780000000, i: 1 }, t: 1 }, end: { ts: { t: 1780000100, i: 7 }, t: 1 } };
const extendOf = (strategy: StrategyName) => async (): Promise<SourceFile[]> => [{ path: `/db/journal/${strategy}`, relativePath: `journal/${strategy}`, size: 1 } as SourceFile];

function snapshotOf(strategy: StrategyName): Snapshot {
  return {
    strategy,
    reason: `${strategy}'s own reason`,
    files: [],
    writesBlocked: NEVER_BLOCKED,
    lost: new AbortController().signal,
    release: async () => undefined,
    oplog: OPLOG,
    ...(strategy === 'backupCursor' ? { extend: extendOf(strategy) } : {}),
  };
}

function fixture(options: { backupCursor?: unknown; reflink?: ReflinkSupport } = {}): Fixture {
  const calls: string[] = [];
  const fake = (name: StrategyName, fails?: unknown) => () => ({
    name,
    async open() {
      calls.push(name);
      if (fails !== undefined) throw fails;
      return snapshotOf(name);
    },
  });
  const reflink = (): ReflinkCandidate => ({
    ...fake('reflink')(),
    async probe() {
      calls.push('probe');
      return options.reflink ?? XFS;
    },
  });
  return { calls, source: new AutoSnapshotSource({ backupCursor: fake('backupCursor', options.backupCursor), reflink, fsyncLock: fake('fsyncLock') }) };
}

function request(strategy: StrategyChoice, allowWriteBlocking = false, signal = new AbortController().signal): SnapshotRequest {
  return { backupId: '00000000-0000-4000-8000-000000000000', destination: '/backups/b1', strategy, allowWriteBlocking, journal: NO_JOURNAL, signal };
}

async function refused(promise: Promise<unknown>): Promise<CommandError> {
  const err = await promise.then(
    () => assert.fail('the snapshot opened'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof CommandError, String(err));
  return err;
}

describe('auto', () => {
  it('takes $backupCursor where mongod has it, and never probes reflink', async () => {
    const fx = fixture();
    const snapshot = await fx.source.open(request('auto', true));
    assert.equal(snapshot.strategy, 'backupCursor');
    assert.equal(snapshot.reason, "backupCursor's own reason");
    assert.deepEqual(fx.calls, ['backupCursor']);
  });

  it('takes reflink where mongod has no $backupCursor and the probe clones, and says why', async () => {
    const fx = fixture({ backupCursor: NO_STAGE });
    const snapshot = await fx.source.open(request('auto'));
    assert.equal(snapshot.strategy, 'reflink');
    assert.equal(snapshot.reason, 'no $backupCursor; dbpath on xfs supports reflink');
    assert.deepEqual(fx.calls, ['backupCursor', 'probe', 'reflink']);
  });

  it('prefers reflink to fsyncLock even when blocking writes is allowed', async () => {
    const fx = fixture({ backupCursor: NO_STAGE });
    assert.equal((await fx.source.open(request('auto', true))).strategy, 'reflink');
  });

  it('refuses, naming the three ways out and why reflink cannot run, unless blocking writes is allowed', async () => {
    const fx = fixture({ backupCursor: NO_STAGE, reflink: EXT4 });
    const err = await refused(fx.source.open(request('auto')));
    assert.equal(err.code, ErrorCodes.CannotBackup);
    assert.equal(err.message, noSafeStrategy(EXT4.reason));
    assert.match(err.message, /^This mongod has no \$backupCursor \(MongoDB Community\), and reflink cannot run here \(dbpath on ext4 cannot clone files/);
    assert.deepEqual(fx.calls, ['backupCursor', 'probe'], 'no lock was taken');
  });

  it('takes fsyncLock where nothing else can run and blocking writes is allowed, and says so', async () => {
    const fx = fixture({ backupCursor: NO_STAGE, reflink: EXT4 });
    const snapshot = await fx.source.open(request('auto', true));
    assert.equal(snapshot.strategy, 'fsyncLock');
    assert.equal(snapshot.reason, `no $backupCursor; ${EXT4.reason}; fsyncLock for the whole copy, as allowed: writes wait until the copy ends`);
  });

  it('passes any other $backupCursor error through, without trying another strategy', async () => {
    const busy = new MongoServerError({ ok: 0, code: 50886, errmsg: 'The existing backup cursor must be closed before $backupCursor can succeed.' });
    const fx = fixture({ backupCursor: busy });
    assert.equal(await fx.source.open(request('auto', true)).catch((e: unknown) => e), busy);
    assert.deepEqual(fx.calls, ['backupCursor']);
  });

  it('opens nothing once the engine is closing', async () => {
    const fx = fixture();
    const closing = new AbortController();
    closing.abort(new CommandError(ErrorCodes.InterruptedAtShutdown, 'closing'));
    await assert.rejects(fx.source.open(request('auto', true, closing.signal)), /closing/);
    assert.deepEqual(fx.calls, []);
  });
});

describe('a strategy asked for by name', () => {
  it('backupCursor on a mongod without it fails saying so, and falls back to nothing', async () => {
    const fx = fixture({ backupCursor: NO_STAGE });
    const err = await refused(fx.source.open(request('backupCursor', true)));
    assert.equal(err.code, ErrorCodes.CannotBackup);
    assert.match(err.message, /^strategy backupCursor was asked for, but this mongod has no \$backupCursor \(MongoDB Community\)/);
    assert.deepEqual(fx.calls, ['backupCursor']);
  });

  it('reflink where the probe cannot clone fails with the probe\'s reason and how to enable it, even when blocking writes is allowed', async () => {
    const fx = fixture({ reflink: EXT4 });
    const err = await refused(fx.source.open(request('reflink', true)));
    assert.equal(err.code, ErrorCodes.CannotBackup);
    assert.match(err.message, /^strategy reflink was asked for, but it cannot run here: dbpath on ext4 cannot clone files .*\. To use it, put the dbpath on a filesystem that clones files \(XFS/);
    assert.deepEqual(fx.calls, ['probe'], 'neither $backupCursor nor fsyncLock was tried');
  });

  it('reflink where it can run runs, even on a mongod with $backupCursor', async () => {
    const fx = fixture();
    const snapshot = await fx.source.open(request('reflink'));
    assert.equal(snapshot.strategy, 'reflink');
    assert.equal(snapshot.reason, 'strategy reflink as asked; dbpath on xfs supports reflink');
    assert.deepEqual(fx.calls, ['probe', 'reflink']);
  });

  it('fsyncLock still needs blocking writes to be allowed, and says how', async () => {
    const fx = fixture();
    const err = await refused(fx.source.open(request('fsyncLock')));
    assert.equal(err.code, ErrorCodes.CannotBackup);
    assert.equal(err.message, FSYNC_LOCK_NOT_ALLOWED);
    assert.match(err.message, /allowWriteBlocking: true.*--allow-write-blocking/);
    assert.deepEqual(fx.calls, []);
    const snapshot = await fx.source.open(request('fsyncLock', true));
    assert.equal(snapshot.strategy, 'fsyncLock');
    assert.match(snapshot.reason, /^strategy fsyncLock as asked; fsyncLock for the whole copy, as allowed/);
  });

  it('backupCursor where mongod has it keeps its own reason, marked as asked for', async () => {
    const fx = fixture();
    assert.equal((await fx.source.open(request('backupCursor'))).reason, "strategy backupCursor as asked; backupCursor's own reason");
  });
});

describe('what the chosen strategy says of its copy', () => {
  // The engine writes the manifest's oplog window and runs extendTo from what select hands it.
  const paths: Array<[string, StrategyChoice, { backupCursor?: unknown; reflink?: ReflinkSupport }]> = [
    ['auto, backupCursor', 'auto', {}],
    ['auto, reflink', 'auto', { backupCursor: NO_STAGE }],
    ['auto, fsyncLock', 'auto', { backupCursor: NO_STAGE, reflink: EXT4 }],
    ['backupCursor by name', 'backupCursor', {}],
    ['reflink by name', 'reflink', { backupCursor: NO_STAGE }],
    ['fsyncLock by name', 'fsyncLock', {}],
  ];
  for (const [name, choice, options] of paths) {
    it(`keeps the oplog window and the extension: ${name}`, async () => {
      const snapshot = await fixture(options).source.open(request(choice, true));
      assert.deepEqual(snapshot.oplog, OPLOG);
      if (snapshot.strategy === 'backupCursor') {
        assert.ok(snapshot.extend !== undefined, 'a backupCursor snapshot can be extended');
        assert.deepEqual((await snapshot.extend({ to: { t: 1, i: 1 }, signal: new AbortController().signal, waiting: () => undefined }))[0]?.relativePath, 'journal/backupCursor');
      } else {
        assert.equal(snapshot.extend, undefined);
      }
    });
  }
});
