/**
 * The backup engine over fake seams: a fake UpstreamAdmin, a fake SnapshotSource whose
 * snapshot records its releases, and real small files in real temp directories. Where
 * a test needs the copy to be under way, a gated throttle holds every read until the
 * test opens the gate: no timing anywhere.
 */
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { pino } from 'pino';
import { RunStateFile } from '../../src/backup/run_state_file.js';
import { NEVER_BLOCKED, WritesBlockedWindow } from '../../src/backup/strategies/writes_blocked.js';
import { BackupEngine, BACKUP_IN_PROGRESS, type SnapshotRequest, type SnapshotSource, type UpstreamAdmin } from '../../src/backup/backup_engine.js';
import type { BackupOutcome } from '../../src/backup/engine_status.js';
import { TokenBucket } from '../../src/backup/throttle.js';
import { MANIFEST_FILENAME, readManifest } from '../../src/backup/manifest.js';
import { noSafeStrategy } from '../../src/backup/strategies/select.js';
import type { Snapshot } from '../../src/backup/strategies/snapshot.js';
import type { SourceFile } from '../../src/backup/copy_types.js';
import { ErrorCodes, CommandError } from '../../src/errors.js';
import { xxh3Hex } from '../helpers/checksum.js';
import { tempDir } from '../helpers/paths.js';
import type { BackupTarget } from '../../src/backup/backup_target.js';
import type { TargetOpener } from '../../src/backup/target_opener.js';

const silent = pino({ level: 'silent' });

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

const admin: UpstreamAdmin = { host: 'mongod.test:27018', serverVersion: async () => '8.0.4-fake' };

class FakeSnapshot implements Snapshot {
  readonly strategy = 'backupCursor' as const;
  readonly reason = 'a fake snapshot';
  readonly writesBlocked = NEVER_BLOCKED;
  readonly lostController = new AbortController();
  releases = 0;

  constructor(
    readonly files: SourceFile[],
    private readonly onRelease: () => Promise<void> = async () => {},
  ) {}

  get lost(): AbortSignal {
    return this.lostController.signal;
  }

  release(): Promise<void> {
    this.releases += 1;
    return this.onRelease();
  }
}

class FakeSource implements SnapshotSource {
  readonly requests: SnapshotRequest[] = [];

  constructor(private readonly opening: () => Promise<Snapshot>) {}

  open(request: SnapshotRequest): Promise<Snapshot> {
    this.requests.push(request);
    return this.opening();
  }
}

/** A throttle that holds every read until open() is called; `entered` resolves at the first. */
class GatedBucket extends TokenBucket {
  private readonly gate = deferred();
  private readonly first = deferred();
  readonly entered = this.first.promise;

  constructor() {
    super(0);
  }

  open(): void {
    this.gate.resolve();
  }

  /** Never unlimited: every chunk must come through take(), which holds it at the gate. */
  override watchUnlimited(listener: (unlimited: boolean) => void): () => void {
    listener(false);
    return () => undefined;
  }

  override take(_bytes: number, signal?: AbortSignal): Promise<void> {
    this.first.resolve();
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = () => reject(signal?.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      void this.gate.promise.then(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }
}

const CONTENTS: Readonly<Record<string, string>> = {
  WiredTiger: 'WiredTiger\nWiredTiger 3.2.1: (March 20, 2019)\n',
  'collection-0-1.wt': 'c'.repeat(5000),
  'journal/WiredTigerLog.0000000001': 'log records',
};

interface Fixture {
  dbpath: string;
  files: SourceFile[];
  destination: string;
  engine(source: SnapshotSource, throttle?: TokenBucket): BackupEngine;
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function fixture(): Fixture {
  const scratch = tempDir('engine');
  cleanups.push(scratch.remove);
  const dbpath = path.join(scratch.dir, 'db');
  const files = Object.entries(CONTENTS).map(([relativePath, data]) => {
    const file = path.join(dbpath, relativePath);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, data);
    return { path: file, relativePath, size: Buffer.byteLength(data) };
  });
  return {
    dbpath,
    files,
    destination: path.join(scratch.dir, 'backup'),
    engine(source, throttle) {
      const engine = new BackupEngine({ dbpath, upstream: admin, snapshots: source, throttle, log: silent });
      cleanups.push(() => engine.close());
      return engine;
    },
  };
}

function hasManifest(destination: string): boolean {
  return fs.existsSync(path.join(destination, MANIFEST_FILENAME));
}

function assertFailed(outcome: BackupOutcome, code: number, errmsg: string | RegExp): void {
  assert.equal(outcome.ok, false);
  assert.ok(outcome.error !== undefined, 'a failed outcome carries its error');
  assert.equal(outcome.error.code, code, outcome.error.errmsg);
  if (typeof errmsg === 'string') assert.equal(outcome.error.errmsg, errmsg);
  else assert.match(outcome.error.errmsg, errmsg);
}

describe('BackupEngine', () => {
  it('copies the snapshot and writes a manifest that lists every file', async () => {
    const fx = fixture();
    const snapshot = new FakeSnapshot(fx.files);
    const source = new FakeSource(async () => snapshot);
    const engine = fx.engine(source);
    const started = await engine.start({ destination: fx.destination });
    const outcome = await started.done;
    assert.equal(outcome.ok, true, outcome.error?.errmsg);
    assert.equal(outcome.backupId, started.backupId);
    assert.equal(outcome.strategy, 'backupCursor');
    assert.equal(outcome.files, fx.files.length);
    assert.equal(snapshot.releases, 1);
    assert.deepEqual(source.requests.map((r) => r.allowWriteBlocking), [false]);

    const manifest = await readManifest(fx.destination);
    assert.equal(manifest.backupId, started.backupId);
    assert.deepEqual(manifest.source, { dbpath: fx.dbpath, host: 'mongod.test:27018', serverVersion: '8.0.4-fake', hostname: os.hostname() });
    assert.deepEqual(manifest.checksum, { algorithm: 'xxh3-64' });
    const expected = Object.entries(CONTENTS)
      .map(([p, data]) => ({ path: p, size: Buffer.byteLength(data), checksum: xxh3Hex(data) }))
      .sort((a, b) => a.path.localeCompare(b.path));
    assert.deepEqual([...manifest.files].sort((a, b) => a.path.localeCompare(b.path)), expected);
    for (const [p, data] of Object.entries(CONTENTS)) assert.equal(fs.readFileSync(path.join(fx.destination, p), 'utf8'), data);

    const status = engine.status();
    assert.equal(status.running, undefined);
    assert.equal(status.last?.ok, true);
    assert.equal(status.last?.progress.filesCopied, fx.files.length);
    assert.equal(status.last?.progress.percent, 100);
  });

  it('does not copy a snapshot that is already in the destination: it asks it for the result, then writes the manifest', async () => {
    const fx = fixture();
    const source = new FakeSource(async () => {
      // What the reflink strategy does for a destination on the dbpath's filesystem.
      const request = source.requests[0] as SnapshotRequest;
      const inPlace = fx.files.map((file) => {
        const target = path.join(request.destination, file.relativePath);
        fs.mkdirSync(path.dirname(target), { recursive: true });
        fs.copyFileSync(file.path, target);
        return { ...file, path: target };
      });
      const snapshot = new FakeSnapshot(inPlace);
      return Object.assign(snapshot, {
        inDestination: async () => ({
          copied: inPlace.map((f) => ({ relativePath: f.relativePath, size: f.size, checksum: xxh3Hex(fs.readFileSync(f.path)) })),
          skipped: [],
        }),
      });
    });
    // A throttle that never grants: a copy would hang here.
    const gated = new GatedBucket();
    const engine = fx.engine(source, gated);
    const outcome = await (await engine.start({ destination: fx.destination })).done;
    assert.equal(outcome.ok, true, outcome.error?.errmsg);
    assert.equal(source.requests[0]?.destination, fx.destination);
    const manifest = await readManifest(fx.destination);
    assert.deepEqual(
      [...manifest.files].map((f) => f.path).sort(),
      Object.keys(CONTENTS).sort(),
    );
  });

  it('keeps the state file of a backup that failed only while it still holds something', async () => {
    const fx = fixture();
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotbackup-engine-state-'));
    cleanups.push(async () => fs.rmSync(stateDir, { recursive: true, force: true }));
    const journal = new RunStateFile(stateDir, silent);
    let holds = false;
    const source = new FakeSource(async () => {
      const request = source.requests.at(-1) as SnapshotRequest;
      if (holds) await request.journal.record({ strategy: 'backupCursor', backupCursor: { lsid: 'ab'.repeat(16), cursorId: '42' } });
      throw new CommandError(ErrorCodes.CannotBackup, 'no snapshot');
    });
    const engine = new BackupEngine({ dbpath: fx.dbpath, upstream: admin, snapshots: source, journal, log: silent });
    cleanups.push(() => engine.close());
    assert.equal((await (await engine.start({ destination: fx.destination })).done).ok, false);
    assert.equal(fs.existsSync(journal.stateFile), false, 'a failed open that holds nothing leaves no record');
    holds = true;
    assert.equal((await (await engine.start({ destination: `${fx.destination}-2` })).done).ok, false);
    assert.equal(fs.existsSync(journal.stateFile), true, 'a cursor left open stays recorded, for the next start to kill');
  });

  it('records --source-name as the machine the backup is of, instead of the hostname a new container changes', async () => {
    const fx = fixture();
    const engine = new BackupEngine({ dbpath: fx.dbpath, upstream: admin, snapshots: new FakeSource(async () => new FakeSnapshot(fx.files)), sourceName: 'mongo-0', log: silent });
    cleanups.push(() => engine.close());
    const outcome = await (await engine.start({ destination: fx.destination })).done;
    assert.equal(outcome.ok, true, outcome.error?.errmsg);
    assert.equal((await readManifest(fx.destination)).source.hostname, 'mongo-0');
  });

  it('asks for a write-blocking snapshot when the request or the engine allows it', async () => {
    const fx = fixture();
    const source = new FakeSource(async () => new FakeSnapshot(fx.files));
    const engine = fx.engine(source);
    await (await engine.start({ destination: fx.destination, allowWriteBlocking: true })).done;
    assert.deepEqual(source.requests.map((r) => r.allowWriteBlocking), [true]);
    const permissive = new BackupEngine({ dbpath: fx.dbpath, upstream: admin, snapshots: source, allowWriteBlocking: true, log: silent });
    cleanups.push(() => permissive.close());
    await (await permissive.start({ destination: `${fx.destination}-2` })).done;
    assert.deepEqual(source.requests.map((r) => r.allowWriteBlocking), [true, true]);
  });

  it('refuses a bad destination with the command error, before any snapshot, and frees the slot', async () => {
    const fx = fixture();
    const source = new FakeSource(async () => new FakeSnapshot(fx.files));
    const engine = fx.engine(source);
    await assert.rejects(engine.start({ destination: 'relative/dir' }), (err: unknown) => {
      assert.ok(err instanceof CommandError);
      assert.equal(err.code, ErrorCodes.BadValue);
      assert.equal(err.message, 'Destination path must be absolute');
      return true;
    });
    assert.equal(source.requests.length, 0, 'no snapshot was opened');
    // The command itself failed: backupStatus shows no outcome for it, as Percona's did not.
    assert.deepEqual({ ...engine.status(), throttleBytesPerSec: undefined }, { running: undefined, last: undefined, throttleBytesPerSec: undefined });
    const outcome = await (await engine.start({ destination: fx.destination })).done;
    assert.equal(outcome.ok, true, 'the slot is free again');
  });

  it('fails without a manifest when the snapshot cannot be opened, and has nothing to release', async () => {
    const fx = fixture();
    const source = new FakeSource(async () => {
      throw new CommandError(ErrorCodes.CannotBackup, noSafeStrategy('dbpath on ext4 cannot clone files'));
    });
    const engine = fx.engine(source);
    const outcome = await (await engine.start({ destination: fx.destination })).done;
    assertFailed(outcome, ErrorCodes.CannotBackup, noSafeStrategy('dbpath on ext4 cannot clone files'));
    assert.equal(outcome.strategy, undefined);
    assert.equal(hasManifest(fx.destination), false);
    assert.equal(engine.status().last?.error?.codeName, 'CannotBackup');
  });

  it('fails before any snapshot when mongod cannot say its version', async () => {
    const fx = fixture();
    const source = new FakeSource(async () => new FakeSnapshot(fx.files));
    const unreachable: UpstreamAdmin = {
      host: admin.host,
      serverVersion: async () => {
        throw new CommandError(ErrorCodes.ShutdownInProgress, 'The server is in quiesce mode and will shut down');
      },
    };
    const engine = new BackupEngine({ dbpath: fx.dbpath, upstream: unreachable, snapshots: source, log: silent });
    const outcome = await (await engine.start({ destination: fx.destination })).done;
    assertFailed(outcome, ErrorCodes.ShutdownInProgress, 'The server is in quiesce mode and will shut down');
    assert.equal(source.requests.length, 0);
    assert.equal(hasManifest(fx.destination), false);
  });

  it('fails the copy of a listed file that is missing, releases once, and writes no manifest', async () => {
    const fx = fixture();
    const missing = path.join(fx.dbpath, 'collection-9-9.wt');
    const snapshot = new FakeSnapshot([...fx.files, { path: missing, relativePath: 'collection-9-9.wt', size: 10 }]);
    const engine = fx.engine(new FakeSource(async () => snapshot));
    const outcome = await (await engine.start({ destination: fx.destination })).done;
    assertFailed(outcome, ErrorCodes.OperationFailed, `backup failed: open ${missing}: No such file or directory`);
    assert.deepEqual(outcome.error?.extra, { errno: 2, strerror: 'No such file or directory' });
    assert.equal(snapshot.releases, 1);
    assert.equal(hasManifest(fx.destination), false);
  });

  it('fails, without a manifest, when the release fails after a good copy', async () => {
    const fx = fixture();
    const unlockFailed = 'fsyncUnlock failed: mongod did not answer';
    const snapshot = new FakeSnapshot(fx.files, async () => {
      throw new CommandError(ErrorCodes.OperationFailed, unlockFailed);
    });
    const engine = fx.engine(new FakeSource(async () => snapshot));
    const outcome = await (await engine.start({ destination: fx.destination })).done;
    assertFailed(outcome, ErrorCodes.OperationFailed, unlockFailed);
    assert.equal(snapshot.releases, 1);
    assert.equal(hasManifest(fx.destination), false);
  });

  it('succeeds, with a warning, when the release only left something behind that harms no copy (a staging directory)', async () => {
    const fx = fixture();
    const leftBehind = 'the staging directory /x/staging/1 could not be removed (Operation not permitted (EPERM)): the backup is complete all the same.';
    // As the reflink strategy does: optional files it could not clone are warnings from the start,
    // and a staging directory its release could not remove is one more.
    const warnings = ['mongod.log was left out: it could not be cloned: No such file or directory (ENOENT)'];
    const snapshot = Object.assign(
      new FakeSnapshot(fx.files, async () => {
        warnings.push(leftBehind);
      }),
      { warnings },
    );
    const gated = new GatedBucket();
    const engine = fx.engine(new FakeSource(async () => snapshot), gated);
    const started = await engine.start({ destination: fx.destination });
    await gated.entered;
    assert.deepEqual(engine.status().running?.warnings, [warnings[0]], 'a file left out shows while the copy runs');
    gated.open();
    const outcome = await started.done;
    assert.equal(outcome.ok, true, outcome.error?.errmsg);
    assert.deepEqual(outcome.warnings, [warnings[0], leftBehind]);
    assert.equal(snapshot.releases, 1);
    assert.equal(hasManifest(fx.destination), true);
    assert.deepEqual(engine.status().last?.warnings, [warnings[0], leftBehind]);
  });

  it('shows the strategy and its growing write-block window while the snapshot is still opening under the lock', async () => {
    const fx = fixture();
    let now = 0;
    const window = new WritesBlockedWindow(() => now);
    const locked = deferred();
    const opened = deferred();
    const source = new FakeSource(async () => {
      const request = source.requests[0] as SnapshotRequest;
      // What the fsyncLock strategy does, for reflink, just before it sends its lock.
      window.begin();
      request.onWritesBlocked?.('reflink', window);
      locked.resolve();
      await opened.promise;
      return Object.assign(new FakeSnapshot(fx.files), { strategy: 'reflink' as const, writesBlocked: window });
    });
    const engine = fx.engine(source);
    const started = await engine.start({ destination: fx.destination });
    await locked.promise;
    now = 5;
    const during = engine.status().running;
    assert.equal(during?.phase, 'snapshot');
    assert.equal(during?.strategy, 'reflink');
    assert.equal(during?.writesBlockedMs, 5);
    now = 12;
    assert.equal(engine.status().running?.writesBlockedMs, 12, 'still counting while the lock is held');
    window.end();
    opened.resolve();
    const outcome = await started.done;
    assert.equal(outcome.ok, true, outcome.error?.errmsg);
    assert.equal(outcome.strategy, 'reflink');
    assert.equal(outcome.writesBlockedMs, 12);
  });

  it('reports the strategy and the time writes were blocked of a snapshot that failed under its lock', async () => {
    const fx = fixture();
    let now = 0;
    const window = new WritesBlockedWindow(() => now);
    const source = new FakeSource(async () => {
      window.begin();
      source.requests[0]?.onWritesBlocked?.('reflink', window);
      now = 7;
      window.end();
      throw new CommandError(ErrorCodes.CannotBackup, 'reflink: cannot clone journal/WiredTigerLog.0000000001');
    });
    const outcome = await (await fx.engine(source).start({ destination: fx.destination })).done;
    assertFailed(outcome, ErrorCodes.CannotBackup, /^reflink: cannot clone/);
    assert.equal(outcome.strategy, 'reflink');
    assert.equal(outcome.writesBlockedMs, 7);
  });

  it('names both errors when the copy and the release both fail, the copy first', async () => {
    const fx = fixture();
    const missing = path.join(fx.dbpath, 'gone.wt');
    const snapshot = new FakeSnapshot([{ path: missing, relativePath: 'gone.wt', size: 1 }], async () => {
      throw new Error('fsyncUnlock failed');
    });
    const engine = fx.engine(new FakeSource(async () => snapshot));
    const outcome = await (await engine.start({ destination: fx.destination })).done;
    assertFailed(
      outcome,
      ErrorCodes.OperationFailed,
      `backup failed: open ${missing}: No such file or directory; releasing the snapshot failed too: fsyncUnlock failed`,
    );
    assert.equal(snapshot.releases, 1);
  });

  it('fails when the manifest cannot be written (the destination vanished after the copy)', async () => {
    const fx = fixture();
    const snapshot = new FakeSnapshot(fx.files, async () => {
      fs.rmSync(fx.destination, { recursive: true });
    });
    const engine = fx.engine(new FakeSource(async () => snapshot));
    const outcome = await (await engine.start({ destination: fx.destination })).done;
    assertFailed(outcome, ErrorCodes.OperationFailed, new RegExp(`^backup failed: open ${fx.destination}/\\.${MANIFEST_FILENAME}\\.[0-9a-f]+\\.tmp: No such file or directory$`));
    assert.equal(snapshot.releases, 1);
    assert.equal(hasManifest(fx.destination), false);
  });

  it('stops the copy when the snapshot is lost, and reports the loss over a failed release', async () => {
    const fx = fixture();
    const bucket = new GatedBucket();
    const snapshot = new FakeSnapshot(fx.files, async () => {
      throw new Error('killCursors did not find the cursor');
    });
    const engine = fx.engine(new FakeSource(async () => snapshot), bucket);
    const started = await engine.start({ destination: fx.destination });
    await bucket.entered;
    const lostText = 'The backup cursor 42 was lost (killed by killCursors or killSessions, or timed out in mongod)';
    snapshot.lostController.abort(new CommandError(ErrorCodes.CursorNotFound, lostText));
    // The gate never opens: only the loss can end this copy.
    const outcome = await started.done;
    assertFailed(outcome, ErrorCodes.CursorNotFound, lostText);
    assert.equal(outcome.bytes, 0, 'nothing was copied after the loss');
    assert.equal(snapshot.releases, 1);
    assert.equal(hasManifest(fx.destination), false);
  });

  it("refuses a second start while one runs, with Percona's ConflictingOperationInProgress", async () => {
    const fx = fixture();
    const bucket = new GatedBucket();
    const source = new FakeSource(async () => new FakeSnapshot(fx.files));
    const engine = fx.engine(source, bucket);
    const first = await engine.start({ destination: fx.destination });
    await bucket.entered;
    await assert.rejects(engine.start({ destination: `${fx.destination}-2` }), (err: unknown) => {
      assert.ok(err instanceof CommandError);
      assert.equal(err.code, ErrorCodes.ConflictingOperationInProgress);
      assert.equal(err.codeName, 'ConflictingOperationInProgress');
      assert.equal(err.message, 'Cannot initiate backup. There already is a backup in progress.');
      assert.equal(err.message, BACKUP_IN_PROGRESS);
      return true;
    });
    assert.equal(source.requests.length, 1);
    assert.equal(fs.existsSync(`${fx.destination}-2`), false, 'the refused start created nothing');
    bucket.open();
    assert.equal((await first.done).ok, true);
  });

  it('close() during a copy interrupts it, releases the snapshot, and resolves once the backup ended', async () => {
    const fx = fixture();
    const bucket = new GatedBucket();
    const snapshot = new FakeSnapshot(fx.files);
    const engine = fx.engine(new FakeSource(async () => snapshot), bucket);
    const started = await engine.start({ destination: fx.destination });
    await bucket.entered;
    await engine.close();
    assert.equal(snapshot.releases, 1, 'released before close() resolved');
    assertFailed(engine.status().last as BackupOutcome, ErrorCodes.InterruptedAtShutdown, 'backup interrupted: the proxy is shutting down');
    assertFailed(await started.done, ErrorCodes.InterruptedAtShutdown, 'backup interrupted: the proxy is shutting down');
    assert.equal(hasManifest(fx.destination), false);
    await assert.rejects(engine.start({ destination: `${fx.destination}-2` }), { code: ErrorCodes.ShutdownInProgress });
  });

  it('close() while the destination is being checked stops the backup before any snapshot', async () => {
    const fx = fixture();
    const source = new FakeSource(async () => new FakeSnapshot(fx.files));
    const engine = fx.engine(source);
    const starting = engine.start({ destination: fx.destination });
    await engine.close();
    assert.ok(engine.status().last !== undefined, 'close() waited for the backup to end');
    const started = await starting;
    assertFailed(await started.done, ErrorCodes.InterruptedAtShutdown, 'backup interrupted: the proxy is shutting down');
    assert.equal(source.requests.length, 0, 'no snapshot was taken');
  });

  it('abort() during a copy stops it, releases the snapshot, and ends the backup aborted with Interrupted', async () => {
    const fx = fixture();
    const bucket = new GatedBucket();
    const snapshot = new FakeSnapshot(fx.files);
    const engine = fx.engine(new FakeSource(async () => snapshot), bucket);
    assert.deepEqual(engine.abort('nobody'), { kind: 'none' });
    const started = await engine.start({ destination: fx.destination });
    await bucket.entered;
    const attempt = engine.abort('{backupAbort: 1} from 127.0.0.1:5555');
    assert.ok(attempt.kind === 'aborting');
    assert.equal(engine.status().running?.abortedBy, '{backupAbort: 1} from 127.0.0.1:5555', 'shown while it stops');
    assert.equal(engine.abort('a second one').kind, 'aborting', 'a second abort joins the first');
    const outcome = await attempt.done;
    assert.deepEqual(outcome, await started.done);
    assert.equal(outcome?.state, 'aborted');
    assert.equal(outcome?.error?.codeName, 'Interrupted');
    assertFailed(
      outcome as BackupOutcome,
      ErrorCodes.Interrupted,
      `operation was interrupted: backup ${started.backupId} was aborted by {backupAbort: 1} from 127.0.0.1:5555; ` +
        `${fx.destination} has no manifest, so the backup there is incomplete: remove it and start a new backup.`,
    );
    assert.equal(snapshot.releases, 1);
    assert.equal(hasManifest(fx.destination), false);
    assert.equal(engine.status().running, undefined);
    assert.deepEqual(engine.abort('nobody'), { kind: 'none' });
    // The slot is free: the next backup runs to the end.
    bucket.open();
    const next = await engine.start({ destination: `${fx.destination}-2` });
    assert.equal((await next.done).state, 'complete');
  });

  it('abort() whose snapshot release fails ends the backup failed, with the release\'s code, saying it was aborted', async () => {
    const fx = fixture();
    const bucket = new GatedBucket();
    const unlockFailed = 'fsyncUnlock failed: mongod did not answer; the proxy keeps retrying in the background';
    const snapshot = new FakeSnapshot(fx.files, async () => {
      throw new CommandError(ErrorCodes.CannotBackup, unlockFailed);
    });
    const engine = fx.engine(new FakeSource(async () => snapshot), bucket);
    const started = await engine.start({ destination: fx.destination });
    await bucket.entered;
    const attempt = engine.abort('{backupAbort: 1} from 127.0.0.1:5555');
    assert.equal(attempt.kind, 'aborting');
    const outcome = await started.done;
    // Not "aborted": that would say everything was let go, and mongod may still be locked.
    assert.equal(outcome.state, 'failed');
    assertFailed(
      outcome,
      ErrorCodes.CannotBackup,
      `operation was interrupted: backup ${started.backupId} was aborted by {backupAbort: 1} from 127.0.0.1:5555; ` +
        `${fx.destination} has no manifest, so the backup there is incomplete: remove it and start a new backup. ` +
        `While it stopped, releasing its snapshot failed: ${unlockFailed}`,
    );
    assert.equal(outcome.error?.codeName, 'CannotBackup');
    assert.equal(snapshot.releases, 1);
    assert.equal(hasManifest(fx.destination), false);
  });

  it('abort() while the destination is checked stops the backup before its target is begun (no marker written)', async () => {
    const checking = deferred();
    const entered = deferred();
    let begun = false;
    const target: BackupTarget = {
      destination: 's3://bucket/slow-check',
      directory: undefined,
      markerName: 's3://bucket/slow-check/hotbackup-incomplete.json',
      begin: async () => void (begun = true),
      copy: () => Promise.reject(new Error('not reached')),
      replace: () => Promise.reject(new Error('not reached')),
      writeManifest: () => Promise.reject(new Error('not reached')),
      complete: async () => undefined,
      fail: async () => ({ state: 'done' }),
    };
    const targets: TargetOpener = {
      open: async () => {
        entered.resolve();
        await checking.promise;
        return { target, base: undefined };
      },
    };
    const engine = new BackupEngine({ dbpath: '/nonexistent-dbpath', upstream: { host: 'h:27017', serverVersion: async () => '7.0.14' }, snapshots: new FakeSource(async () => { throw new Error('no snapshot should open'); }), targets, log: silent });
    try {
      const starting = engine.start({ destination: target.destination });
      await entered.promise;
      assert.equal(engine.abort('backupAbort from 127.0.0.1:6666').kind, 'aborting');
      checking.resolve();
      const outcome = await (await starting).done;
      assert.equal(outcome.state, 'aborted');
      assert.equal(begun, false, 'the marker was written after the abort');
    } finally {
      await engine.close();
    }
  });

  it('abort() while the snapshot opens reaches the source through its signal; whatever the source then throws, the backup ends aborted', async () => {
    const fx = fixture();
    const opening = deferred();
    const source = new FakeSource(async () => {
      const request = source.requests[0] as SnapshotRequest;
      opening.resolve();
      // A source that stops its open on the signal, failing with an error of its own.
      await new Promise<void>((resolve) => request.signal.addEventListener('abort', () => resolve(), { once: true }));
      throw new Error('connection closed by the abort');
    });
    const engine = fx.engine(source);
    const started = await engine.start({ destination: fx.destination });
    await opening.promise;
    assert.equal(engine.status().running?.phase, 'snapshot');
    const attempt = engine.abort('killOp (op 4294967297) from 127.0.0.1:6666');
    assert.equal(attempt.kind, 'aborting');
    const outcome = await started.done;
    assert.equal(outcome.state, 'aborted');
    assertFailed(outcome, ErrorCodes.Interrupted, /^operation was interrupted: backup .* was aborted by killOp \(op 4294967297\) from 127\.0\.0\.1:6666; .* While it stopped: backup failed: connection closed by the abort$/);
    assert.equal(outcome.strategy, undefined);
  });

  it('hands out frozen status snapshots that never change afterwards', async () => {
    const fx = fixture();
    const bucket = new GatedBucket();
    const engine = fx.engine(new FakeSource(async () => new FakeSnapshot(fx.files)), bucket);
    engine.setThrottle(1024);
    const started = await engine.start({ destination: fx.destination });
    await bucket.entered;
    const during = engine.status();
    const running = during.running;
    assert.ok(running !== undefined);
    assert.equal(running.phase, 'copying');
    assert.equal(running.progress.bytesCopied, 0);
    assert.equal(running.progress.filesTotal, fx.files.length);
    assert.ok(running.progress.currentFiles.length > 0);
    assert.equal(during.throttleBytesPerSec, 1024);
    for (const frozen of [during, running, running.progress, running.progress.currentFiles, running.warnings]) {
      assert.ok(Object.isFrozen(frozen));
    }
    assert.throws(() => {
      (running as { phase: string }).phase = 'manifest';
    }, TypeError);
    assert.throws(() => {
      (running.progress as { bytesCopied: number }).bytesCopied = 1;
    }, TypeError);
    assert.throws(() => (running.warnings as string[]).push('x'), TypeError);

    bucket.open();
    await started.done;
    assert.equal(running.phase, 'copying', 'the snapshot taken during the copy still says so');
    assert.equal(running.progress.bytesCopied, 0);
    const after = engine.status();
    assert.equal(after.running, undefined);
    const last = after.last;
    assert.ok(last !== undefined && Object.isFrozen(last) && Object.isFrozen(last.progress) && Object.isFrozen(last.warnings));
    assert.throws(() => {
      (last as { ok: boolean }).ok = false;
    }, TypeError);
    // Dates cannot be frozen: each snapshot has its own.
    last.startedAt.setTime(0);
    assert.notEqual(engine.status().last?.startedAt.getTime(), 0);
  });
});
