/**
 * The marker that says why a backup directory has no manifest: written by the engine
 * before the first file, rewritten with the outcome when the backup fails, removed once
 * the manifest is written; and what verify's reader (backup_dir.ts) then says of the
 * directory. The engine runs over fake seams with real files (as in backup_engine.test.ts);
 * a gated throttle holds the copy so the test can look at the directory mid-backup.
 */
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { pino } from 'pino';
import { BackupEngine, type SnapshotSource } from '../../src/backup/backup_engine.js';
import { NEVER_BLOCKED } from '../../src/backup/strategies/writes_blocked.js';
import type { Snapshot } from '../../src/backup/strategies/snapshot.js';
import type { SourceFile } from '../../src/backup/copy_types.js';
import { TokenBucket } from '../../src/backup/throttle.js';
import { INCOMPLETE_MARKER_FILENAME, markInterrupted, readIncompleteMarker } from '../../src/backup/backup_marker.js';
import { BackupRefusal, openBackup } from '../../src/backup/backup_dir.js';
import { MANIFEST_FILENAME } from '../../src/backup/manifest.js';
import { CommandError, ErrorCodes } from '../../src/errors.js';
import { tempDir } from '../helpers/paths.js';
import { until } from '../helpers/poll.js';

const silent = pino({ level: 'silent' });
const admin = { host: 'mongod.test:27018', serverVersion: async () => '8.0.4-fake' };

/** A snapshot of `files` that opens at once, or fails to open with `openError`. */
function source(files: SourceFile[], openError?: Error): SnapshotSource {
  return {
    async open(): Promise<Snapshot> {
      if (openError !== undefined) throw openError;
      return { strategy: 'backupCursor', reason: 'a fake snapshot', files, writesBlocked: NEVER_BLOCKED, lost: new AbortController().signal, release: async () => undefined };
    },
  };
}

/** Holds every read until open(); never unlimited, so each chunk asks. */
class GatedBucket extends TokenBucket {
  private opened = false;
  private readonly held: Array<() => void> = [];
  asked = 0;
  constructor() {
    super(0);
  }
  open(): void {
    this.opened = true;
    for (const go of this.held.splice(0)) go();
  }
  override watchUnlimited(listener: (unlimited: boolean) => void): () => void {
    listener(false);
    return () => undefined;
  }
  override take(_bytes: number, signal?: AbortSignal): Promise<void> {
    this.asked += 1;
    if (this.opened) return Promise.resolve();
    return new Promise((resolve, reject) => {
      signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
      this.held.push(resolve);
    });
  }
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function fixture(): { files: SourceFile[]; destination: string; engine: (snapshots: SnapshotSource, throttle?: TokenBucket) => BackupEngine } {
  const scratch = tempDir('marker');
  cleanups.push(scratch.remove);
  const dbpath = path.join(scratch.dir, 'db');
  fs.mkdirSync(dbpath);
  const files = ['WiredTiger', 'collection-0-1.wt'].map((name, i) => {
    const file = path.join(dbpath, name);
    fs.writeFileSync(file, Buffer.alloc(1000 * (i + 1), i + 1));
    return { path: file, relativePath: name, size: 1000 * (i + 1) };
  });
  return {
    files,
    destination: path.join(scratch.dir, 'backup'),
    engine: (snapshots, throttle) => {
      const engine = new BackupEngine({ dbpath, upstream: admin, snapshots, throttle, log: silent });
      cleanups.push(() => engine.close());
      return engine;
    },
  };
}

async function refusal(dir: string): Promise<BackupRefusal> {
  const err = await openBackup(dir).then(
    () => assert.fail(`${dir} opened as a complete backup`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof BackupRefusal, String(err));
  return err;
}

describe('the incomplete-backup marker', () => {
  it('says running while the backup copies, and is gone once the manifest is written', async () => {
    const fx = fixture();
    const gate = new GatedBucket();
    const started = await fx.engine(source(fx.files), gate).start({ destination: fx.destination });
    await until(() => gate.asked > 0);
    const read = await readIncompleteMarker(fx.destination);
    assert.equal(read.kind, 'present');
    assert.equal(read.kind === 'present' && read.marker.state, 'running');
    assert.equal(read.kind === 'present' && read.marker.backupId, started.backupId);
    const running = await refusal(fx.destination);
    assert.equal(running.state, 'running');
    assert.equal(running.error.code, ErrorCodes.ConflictingOperationInProgress);
    assert.match(running.message, /is a backup still being written/);

    gate.open();
    assert.equal((await started.done).ok, true);
    assert.equal(fs.existsSync(path.join(fx.destination, INCOMPLETE_MARKER_FILENAME)), false);
    const opened = await openBackup(fx.destination);
    assert.equal(opened.manifest.backupId, started.backupId);
    assert.equal(opened.markerLeft, false);
  });

  it('records a failure as failed, with its errmsg, and verify says so', async () => {
    const fx = fixture();
    const missing = { ...(fx.files[1] as SourceFile), path: `${fx.files[1]?.path}.gone` };
    const outcome = await (await fx.engine(source([fx.files[0] as SourceFile, missing])).start({ destination: fx.destination })).done;
    assert.equal(outcome.ok, false);
    const read = await readIncompleteMarker(fx.destination);
    assert.ok(read.kind === 'present');
    assert.equal(read.marker.state, 'failed');
    assert.equal(read.marker.error?.errmsg, outcome.error?.errmsg);
    const failed = await refusal(fx.destination);
    assert.equal(failed.state, 'failed');
    assert.equal(failed.error.code, ErrorCodes.OperationIncomplete);
    assert.match(failed.message, /is not a complete backup: backup [0-9a-f-]+ \(started [^)]+\) failed: .*No such file or directory/);
    assert.match(failed.message, /remove it and take a new backup/);
  });

  it('records a backup aborted through the proxy (backupAbort, killOp) as aborted, as backupStatus does', async () => {
    const fx = fixture();
    const gate = new GatedBucket();
    const engine = fx.engine(source(fx.files), gate);
    const started = await engine.start({ destination: fx.destination });
    await until(() => gate.asked > 0);
    engine.abort('{backupAbort: 1} from 127.0.0.1:5555');
    const outcome = await started.done;
    assert.equal(outcome.state, 'aborted');
    assert.equal(outcome.error?.code, ErrorCodes.Interrupted);
    const aborted = await refusal(fx.destination);
    assert.equal(aborted.state, 'aborted');
    assert.match(aborted.message, /was aborted \(killOp or backupAbort\) at \d{4}-/);
    assert.equal(fs.existsSync(path.join(fx.destination, MANIFEST_FILENAME)), false);
  });

  it('records an Interrupted that no abort asked for (mongod killed the proxy\'s own operation) as failed, as backupStatus does', async () => {
    const fx = fixture();
    // What the driver throws when an operator's killOp on mongod hits the proxy's $backupCursor open or getMore.
    const killed = new CommandError(ErrorCodes.Interrupted, 'operation was interrupted');
    const outcome = await (await fx.engine(source(fx.files, killed)).start({ destination: fx.destination })).done;
    assert.equal(outcome.error?.code, ErrorCodes.Interrupted);
    assert.equal(outcome.state, 'failed');
    const read = await readIncompleteMarker(fx.destination);
    assert.ok(read.kind === 'present');
    assert.equal(read.marker.state, 'failed', 'the marker says what backupStatus.last says');
    assert.equal((await refusal(fx.destination)).state, 'failed');
  });

  it('records an abort whose snapshot release failed as failed: mongod may still be locked', async () => {
    const fx = fixture();
    const gate = new GatedBucket();
    const snapshots: SnapshotSource = {
      async open(): Promise<Snapshot> {
        const release = async () => {
          throw new CommandError(ErrorCodes.OperationFailed, 'fsyncUnlock failed: mongod did not answer');
        };
        return { strategy: 'fsyncLock', reason: 'a fake lock', files: fx.files, writesBlocked: NEVER_BLOCKED, lost: new AbortController().signal, release };
      },
    };
    const engine = fx.engine(snapshots, gate);
    const started = await engine.start({ destination: fx.destination });
    await until(() => gate.asked > 0);
    engine.abort('{backupAbort: 1} from 127.0.0.1:5555');
    const outcome = await started.done;
    assert.equal(outcome.state, 'failed');
    const read = await readIncompleteMarker(fx.destination);
    assert.ok(read.kind === 'present');
    assert.equal(read.marker.state, 'failed');
    assert.equal(read.marker.error?.code, ErrorCodes.OperationFailed);
    assert.match(read.marker.error?.errmsg ?? '', /was aborted by \{backupAbort: 1\} .* While it stopped, releasing its snapshot failed: fsyncUnlock failed: mongod did not answer$/);
  });

  it('records a backup the stopping proxy interrupted (11600) as interrupted', async () => {
    const fx = fixture();
    const gate = new GatedBucket();
    const engine = fx.engine(source(fx.files), gate);
    const started = await engine.start({ destination: fx.destination });
    await until(() => gate.asked > 0);
    await engine.close();
    assert.equal((await started.done).error?.code, ErrorCodes.InterruptedAtShutdown);
    const interrupted = await refusal(fx.destination);
    assert.equal(interrupted.state, 'interrupted');
    assert.match(interrupted.message, /was interrupted: backup interrupted: the proxy is shutting down/);
  });

  it('reads a running marker whose writer is gone as interrupted, and the next start marks it so', async () => {
    const fx = fixture();
    const gate = new GatedBucket();
    const engine = fx.engine(source(fx.files), gate);
    const started = await engine.start({ destination: fx.destination });
    await until(() => gate.asked > 0);
    // As a proxy killed with -9 leaves it: the marker of a process that no longer exists.
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const file = path.join(fx.destination, INCOMPLETE_MARKER_FILENAME);
    const marker = JSON.parse(fs.readFileSync(file, 'utf8')) as { writer: { pid: number; start?: string } };
    gate.open();
    await started.done;
    // The engine has removed its own marker by now: write back the one a dead proxy would have left.
    fs.rmSync(path.join(fx.destination, MANIFEST_FILENAME));
    fs.writeFileSync(file, JSON.stringify({ ...marker, writer: { ...marker.writer, pid: Number(dead.stdout), start: 'another-boot:1' } }));
    const gone = await refusal(fx.destination);
    assert.equal(gone.state, 'interrupted');
    assert.match(gone.message, new RegExp(`the proxy writing it \\(pid ${dead.stdout} on [^)]+\\) is gone \\(killed, crashed, or the machine restarted\\)`));

    const failure = { code: ErrorCodes.InterruptedAtShutdown, codeName: 'InterruptedAtShutdown', errmsg: 'backup interrupted: the proxy (pid 1) died during this backup', extra: {} };
    assert.equal(await markInterrupted(fx.destination, 'not-this-backup', failure), false, 'another backup\'s marker is left alone');
    assert.equal(await markInterrupted(fx.destination, started.backupId, failure), true);
    const read = await readIncompleteMarker(fx.destination);
    assert.ok(read.kind === 'present');
    assert.equal(read.marker.state, 'interrupted');
    assert.match((await refusal(fx.destination)).message, /was interrupted: backup interrupted: the proxy \(pid 1\) died during this backup/);
  });

  it('tells a directory that is no backup from an incomplete one, and says which', async () => {
    const scratch = tempDir('not-a-backup');
    cleanups.push(scratch.remove);
    const empty = path.join(scratch.dir, 'empty');
    fs.mkdirSync(empty);
    assert.match((await refusal(empty)).message, /is not a hotbackup backup: it is empty/);
    const dbpath = path.join(scratch.dir, 'dbpath');
    fs.mkdirSync(dbpath);
    fs.writeFileSync(path.join(dbpath, 'WiredTiger'), 'WiredTiger\n');
    const notOurs = await refusal(dbpath);
    assert.equal(notOurs.state, 'notABackup');
    assert.equal(notOurs.error.code, ErrorCodes.UnsupportedFormat);
    assert.match(notOurs.message, /has WiredTiger files but neither hotbackup-manifest.json nor hotbackup-incomplete.json: a dbpath, a copy made by another tool, or a backup left unfinished by a hotbackup older than that marker/);
    const torn = path.join(scratch.dir, 'torn');
    fs.mkdirSync(torn);
    fs.writeFileSync(path.join(torn, INCOMPLETE_MARKER_FILENAME), '{"format": "mongo-hot');
    const incomplete = await refusal(torn);
    assert.equal(incomplete.state, 'incomplete');
    assert.match(incomplete.message, /is an incomplete backup: its hotbackup-incomplete.json is not valid JSON/);
    assert.equal((await refusal(path.join(scratch.dir, 'nothing'))).state, 'absent');
  });
});
