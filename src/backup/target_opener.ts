/**
 * From a backupStart's destination (and incrementalBase) to a checked BackupTarget
 * (backup_target.ts): each kind checks its own before anything is written, and the
 * engine asks only for the target. A local directory is checked here
 * (destination.ts, incremental.ts); an `s3://` prefix by src/s3/s3_targets.ts;
 * `TargetsByKind` sends each request to its kind, and refuses a base of the other kind
 * (a local base's files cannot be taken into S3 without a copy through this host, nor an
 * S3 base's cloned into a directory) and a kind the proxy's `--backup-root` excludes.
 */
import path from 'node:path';
import { prepareDestination, nodeDestinationFs, type DestinationPolicy } from './destination.js';
import { openIncrementalBase, type IncrementalBase, type SourceIdentity } from './incremental.js';
import { DirectoryTarget, type BackupTarget } from './backup_target.js';
import type { CopyIoClass, CopyWrites } from './copy_messages.js';
import { isS3Url } from '../s3/s3_location.js';
import { CommandError, ErrorCodes } from '../errors.js';

export interface TargetRequest {
  destination: unknown;
  incrementalBase?: string | undefined;
  checksum?: boolean | undefined;
}

export interface TargetContext {
  backupId: string;
  startedAt: Date;
  /** Who the backup is of: what a base must be a backup of. */
  source: SourceIdentity;
  /** Aborted when the proxy closes: a cleanup left to the background stops then. */
  closing: AbortSignal;
}

export interface OpenedTarget {
  target: BackupTarget;
  base: IncrementalBase | undefined;
}

export interface TargetOpener {
  /** Checks the destination and the base, and creates nothing but the destination itself; throws the command's error. */
  open(request: TargetRequest, context: TargetContext): Promise<OpenedTarget>;
}

/** Local directories: as backupStart has always checked them. */
export class DirectoryTargets implements TargetOpener {
  constructor(
    private readonly options: {
      dbpath: string;
      policy?: DestinationPolicy | undefined;
      writes?: CopyWrites | undefined;
      ioClass?: CopyIoClass | undefined;
    },
  ) {}

  /** The base first (it creates nothing), then the destination, which prepareDestination may create. */
  async open(request: TargetRequest, context: TargetContext): Promise<OpenedTarget> {
    const policy = this.options.policy ?? {};
    const baseDir = request.incrementalBase;
    // Its files are cloned or linked into the new backup: under a root, only a backup inside it.
    const checkedBase = baseDir === undefined || policy.root === undefined || !path.isAbsolute(baseDir) ? baseDir : await policy.root.existingDirectory(baseDir, 'incrementalBase');
    const base = checkedBase === undefined ? undefined : await openIncrementalBase(checkedBase, request.destination, context.source, request.checksum === true);
    const destination = await prepareDestination(request.destination, this.options.dbpath, nodeDestinationFs, policy);
    const target = new DirectoryTarget(destination, context, { writes: this.options.writes, ioClass: this.options.ioClass });
    return { target, base };
  }
}

export interface TargetsByKindOptions {
  directories: TargetOpener;
  /** Undefined: `s3://` destinations are refused with `refuseS3`'s reason. */
  s3?: TargetOpener | undefined;
  /** Why an `s3://` destination is refused (e.g. a local --backup-root), when it is. */
  refuseS3?: string | undefined;
  /** Why a local destination is refused (an `s3://` --backup-root), when it is. */
  refuseLocal?: string | undefined;
}

/** Each request to the opener of its destination's kind. */
export class TargetsByKind implements TargetOpener {
  constructor(private readonly options: TargetsByKindOptions) {}

  async open(request: TargetRequest, context: TargetContext): Promise<OpenedTarget> {
    const s3 = isS3Url(request.destination);
    const base = request.incrementalBase;
    if (base !== undefined && isS3Url(base) !== s3) {
      throw new CommandError(
        ErrorCodes.BadValue,
        s3
          ? `incrementalBase ${base} cannot be used: the destination is on S3 and the base is a local directory, whose files would all be uploaded again; give a base on S3 (s3://…), or no incrementalBase`
          : `incrementalBase ${base} cannot be used: the destination is a local directory and the base is on S3, whose files cannot be cloned or linked; give a local base, or no incrementalBase`,
      );
    }
    if (s3) {
      const { s3: opener, refuseS3 } = this.options;
      if (opener === undefined || refuseS3 !== undefined) throw new CommandError(ErrorCodes.BadValue, `Backup destination ${String(request.destination)} is refused: ${refuseS3 ?? 'this proxy does not back up to S3'}`);
      return opener.open(request, context);
    }
    if (this.options.refuseLocal !== undefined) throw new CommandError(ErrorCodes.BadValue, `Backup destination ${String(request.destination)} is refused: ${this.options.refuseLocal}`);
    return this.options.directories.open(request, context);
  }
}
