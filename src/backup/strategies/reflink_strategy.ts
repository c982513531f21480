/**
 * reflink: a consistent copy of a mongod without `$backupCursor` (MongoDB Community)
 * that blocks writes for milliseconds rather than for the whole copy:
 *
 * 1. `{fsync: 1}` (no lock): a checkpoint while writers still run, so that the locked
 *    flush that follows has little left to write;
 * 2. fsyncLock, through the fsyncLock strategy (its unlock watchdog, its lock-count
 *    checks, its lost-lock detection), which lists the dbpath under the lock;
 * 3. clone every listed file into `<stagingRoot>/hotbackup-staging-<backupId>/` (clone_files.ts);
 * 4. fsyncUnlock; a lock lost meanwhile (someone else's fsyncUnlock) fails the backup,
 *    since the clones may then hold writes made after the flush;
 * 5. the snapshot is the clones: they never change, so it is never lost, and the copy
 *    can take as long as the throttle says. Its release removes the staging directory;
 *    a removal that fails then does not fail a backup whose copy is complete: it is a
 *    warning, and the proxy's next start removes what is left (recovery.ts sweeps every
 *    `<stagingRoot>/hotbackup-staging-<uuid>`).
 *
 * Where the destination is on the dbpath's filesystem too, the clones are made straight
 * in it ("instant local snapshots"): no staging, no copy, no throttle. The engine then
 * has them checksummed and fsynced (seal_clones.ts) and writes the manifest last.
 *
 * The window `writesBlockedMs` reports is the fsync lock's: from just before the lock
 * is sent to just after the unlock is acknowledged (writes_blocked.ts).
 *
 * A clone is made by the filesystem, not by mongod: this works only where the dbpath
 * and the staging root are on one filesystem that clones (reflink_probe.ts checks).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Snapshot, SnapshotStrategy } from './snapshot.js';
import type { SnapshotRequest } from '../backup_engine.js';
import { listDbpath, relistDbpath, withLinks } from './files.js';
import type { SourceFile } from '../copy_types.js';
import { cloneFiles, DEFAULT_CLONE_CONCURRENCY, prepareDirectories } from './clone_files.js';
import { describeErrno, probeReflink, type ReflinkSupport } from './reflink_probe.js';
import { createStaging, removeStaging } from './staging.js';
import { sealClones } from '../seal_clones.js';
import { statStamp } from '../source_stamp.js';
import { mapFiles } from '../file_walk.js';
import { hangIfEnabled } from '../../failpoints.js';
import { CommandError } from '../../errors.js';
import { toCommandError } from '../io_error.js';
import type { Logger } from '../../log.js';
import { unlessAborted } from './unless_aborted.js';

export interface ReflinkOptions {
  dbpath: string;
  /** Each backup stages in `<stagingRoot>/hotbackup-staging-<backupId>/`; on the dbpath's filesystem (work_dirs.ts). */
  stagingRoot: string;
  /**
   * An fsyncLock strategy for one backup, listing the dbpath under its lock with `list`:
   * the clones are made while its snapshot is open.
   */
  fsyncLock: (list: (dbpath: string) => Promise<SourceFile[]>) => SnapshotStrategy;
  /** Sends `{fsync: 1}` without a lock. */
  flush: () => Promise<void>;
  log: Logger;
  /** Clones in flight at once. Default 16. */
  cloneConcurrency?: number;
}

/** The reason of a snapshot cloned straight into its destination. */
export const IN_DESTINATION = "cloned straight into the destination, on the dbpath's filesystem: nothing to copy";


export class ReflinkStrategy implements SnapshotStrategy {
  readonly name = 'reflink' as const;

  constructor(private readonly options: ReflinkOptions) {}

  /** Whether the dbpath can be cloned into the staging root (a real clone; cached per process). */
  probe(): Promise<ReflinkSupport> {
    return probeReflink(this.options.dbpath, this.options.stagingRoot);
  }

  async open(request: SnapshotRequest): Promise<Snapshot> {
    const { log } = this.options;
    // Before the lock: mongod's plain fsync is a checkpoint that writers run through;
    // what it writes now, the locked flush need not. It holds nothing of ours, so an abort
    // need not wait for a long checkpoint to end: mongod finishes it on its own.
    await unlessAborted(this.options.flush(), request.signal);
    const local = await this.clonesIntoDestination(request.destination);
    let into: string;
    if (local) {
      // Nothing of ours outside the destination: only the strategy is worth a record.
      await request.journal.record({ strategy: 'reflink' });
      into = request.destination;
    } else {
      into = await createStaging(this.options.stagingRoot, request.backupId, request.journal);
    }
    // Staging is ours to remove, whatever happens; a destination is the engine's, and a
    // failed backup there is told by its missing manifest.
    const cleanUp = local ? async () => undefined : () => removeStaging(into, request.journal);
    // What the backup's outcome says besides (Snapshot.warnings).
    const warnings: string[] = [];
    let lock: Snapshot | undefined;
    try {
      // A listing now, while writes run, makes the subdirectories and brings the dbpath's
      // inodes into the kernel's caches: the listing under the lock is then quick. Writes
      // run, so files come and go meanwhile (old journal files after our own checkpoint,
      // a dropped collection's): what vanishes is skipped, and the names are read again
      // under the lock.
      const prelisted = await listDbpath(this.options.dbpath, { tolerateVanishing: true });
      await prepareDirectories(prelisted, into);
      request.signal.throwIfAborted();
      // Under the lock only the names are read again (relistDbpath): a clone takes the
      // whole file whatever its size, and each clone's size is read after the unlock.
      lock = await this.options.fsyncLock((dbpath) => relistDbpath(dbpath, prelisted)).open(request);
      await hangIfEnabled('hangWhileWritesBlocked', request.signal, () =>
        log.warn({ backupId: request.backupId }, 'fail point hangWhileWritesBlocked: hanging while mongod is fsync-locked'),
      );
      // Where the window went, for the log: locking and listing, cloning, unlocking.
      const lockedMs = lock.writesBlocked.ms();
      const cloned = await cloneFiles(lock.files, into, { concurrency: this.options.cloneConcurrency ?? DEFAULT_CLONE_CONCURRENCY, signal: request.signal });
      const clonedMs = lock.writesBlocked.ms();
      const held = lock;
      lock = undefined;
      // Rejects when the lock was lost before it was released: the clones may hold later writes.
      await held.release();
      const writesBlockedMs = held.writesBlocked.ms();
      // The size as cloned: the listing's sizes may date from before the lock. And the
      // source's mtime now, after the clone: the stamp from the listing was read before
      // it, so an incremental backup takes a file from its base only if both readings
      // match the base's (source_stamp.ts).
      const sources = new Map(held.files.map((file) => [file.relativePath, file.path]));
      const clones = await mapFiles(cloned.files, async (file) => ({ ...file, size: (await fs.stat(file.path)).size, ...(await stampAfter(file, sources)) }));
      warnings.push(...(held.warnings ?? []));
      for (const { relativePath, detail } of cloned.dropped) {
        log.warn({ backupId: request.backupId, file: relativePath }, `left out: it ${detail}`);
        // As the copier says of an optional file it skips.
        warnings.push(`${relativePath} was left out: it ${detail}`);
      }
      log.info(
        { backupId: request.backupId, files: cloned.files.length, writesBlockedMs, lockAndListMs: lockedMs, cloneMs: clonedMs - lockedMs, unlockMs: writesBlockedMs - clonedMs, into, local },
        'reflink: files cloned, mongod unlocked',
      );
      // The links the originals were reached through, for the manifest: the clones are plain files.
      const links = new Map((await withLinks(held.files)).map((file) => [file.relativePath, file.link]));
      const files = clones.map((file) => {
        const link = links.get(file.relativePath);
        return link === undefined ? file : { ...file, link };
      });
      let released: Promise<void> | undefined;
      const snapshot: Snapshot = {
        strategy: this.name,
        reason: local ? IN_DESTINATION : 'writes blocked only while the files were cloned',
        files,
        writesBlocked: held.writesBlocked,
        // Never aborted: the clones do not change once made.
        lost: new AbortController().signal,
        warnings,
        ...(held.oplog === undefined ? {} : { oplog: held.oplog }),
        release: () => (released ??= local ? cleanUp() : this.releaseStaging(into, request, warnings)),
      };
      if (!local) return snapshot;
      const directories = [into, ...cloned.directories];
      return { ...snapshot, inDestination: (options) => sealClones(files, directories, options) };
    } catch (err) {
      const failure = await this.releaseLock(lock, err);
      await cleanUp().catch((rmErr: unknown) => log.error({ staging: into, err: String(rmErr) }, 'reflink: could not remove the staging directory'));
      throw failure;
    }
  }

  /**
   * Whether to clone straight into the destination: it is on the dbpath's filesystem
   * (same st_dev) and a test clone into it works. Then there is nothing to copy at all.
   * Never for an S3 destination.
   */
  private async clonesIntoDestination(destination: string): Promise<boolean> {
    // An s3:// destination is on no filesystem: the clones are staged, then uploaded.
    if (!path.isAbsolute(destination)) return false;
    const [db, dest] = await Promise.all([fs.stat(this.options.dbpath), fs.stat(destination)]);
    if (db.dev !== dest.dev) return false;
    return (await probeReflink(this.options.dbpath, destination)).ok;
  }

  /**
   * The release of a snapshot whose copy is done or failed on its own: the clones are no
   * longer needed. A staging directory that cannot be removed (an immutable file, an I/O
   * error) harms no copy, so it is a warning, not the backup's failure; the proxy's next
   * start sweeps it. Only the removal: a journal that cannot be written still fails.
   */
  private async releaseStaging(into: string, request: SnapshotRequest, warnings: string[]): Promise<void> {
    try {
      await removeStaging(into, request.journal);
    } catch (err) {
      const left = await fs.lstat(into).then(
        () => true,
        () => false,
      );
      if (!left) throw err;
      const where = (err as { path?: unknown }).path;
      const why = `${describeErrno(err)}${typeof where === 'string' && where !== into ? ` at ${where}` : ''}`;
      this.options.log.warn({ backupId: request.backupId, staging: into, err: String(err) }, 'reflink: could not remove the staging directory');
      warnings.push(
        `the staging directory ${into} could not be removed (${why}): the backup is complete all the same. ` +
          "The proxy removes it at its next start; until then its clones hold disk space that the dbpath's files no longer share.",
      );
    }
  }

  /**
   * Unlocks after a failure under the lock. The failure leads; an unlock that failed
   * too is said in the same message, since mongod may then still be locked.
   */
  private async releaseLock(lock: Snapshot | undefined, err: unknown): Promise<unknown> {
    if (lock === undefined) return err;
    try {
      await lock.release();
      return err;
    } catch (releaseErr) {
      const first = toCommandError(err, 'reflink snapshot');
      const second = releaseErr instanceof Error ? releaseErr.message : String(releaseErr);
      this.options.log.error({ err: second }, 'reflink: releasing the fsync lock failed too');
      return new CommandError(first.code, `${first.message}; releasing the fsync lock failed too: ${second}`, {
        extra: { ...first.extra },
        cause: err,
        codeName: first.codeName,
      });
    }
  }
}

/** `file`'s stamp with its `after` reading taken now from its source; no stamp at all when the source cannot be read. */
async function stampAfter(file: SourceFile, sources: ReadonlyMap<string, string>): Promise<Pick<SourceFile, 'stamp'>> {
  const source = sources.get(file.relativePath);
  const now = source === undefined ? undefined : await statStamp(source).catch(() => undefined);
  if (file.stamp === undefined || now === undefined) return { stamp: undefined };
  return { stamp: { before: file.stamp.before, after: now.after } };
}
