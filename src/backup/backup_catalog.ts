/**
 * The backups under one directory (RocksDB's GetBackupInfo, over a directory of backup
 * directories): each subdirectory, one level down, with what its manifest says, or why
 * it is not a complete backup. Read-only; `hotbackup list` prints it, purge plans on it.
 *
 * A directory is a complete backup exactly when it holds a valid manifest: the manifest
 * is written last (manifest.ts), so a backup that is still running, was aborted, or
 * failed has none; its marker (backup_marker.ts) then says which. Hidden entries (a
 * leading dot) are left out: they are nobody's backup.
 *
 * Only real directories are read. A symbolic link to a directory is listed as the link
 * it is, and nothing behind it is read: a catalog entry is something purge may delete,
 * and deleting "through" a link would delete what lies elsewhere (another catalog, a
 * backup kept on purpose outside the root).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { ManifestError, readManifestFile, type Manifest } from './manifest.js';
import { INCOMPLETE_MARKER_FILENAME, markerVerdict, readIncompleteMarker, type MarkerVerdict } from './backup_marker.js';
import { readVerification as readVerificationRecord } from './verification_record.js';

/** What a verification of the backup recorded, when one did. */
export interface Verification {
  readonly ok: boolean;
  /** ISO 8601. */
  readonly verifiedAt: string;
}

export interface CatalogEntry {
  /** The directory's name under the root. */
  readonly name: string;
  /** Absolute. */
  readonly path: string;
  /** Its manifest, when it is a complete backup. */
  readonly manifest: Manifest | undefined;
  /** Why it is not a complete backup, when it is not (no manifest, an invalid one, a symbolic link). */
  readonly incomplete: string | undefined;
  /**
   * For a directory without a manifest whose marker could be judged: what the marker says
   * of the backup (running, or how it ended; `unknown` when its writer ran on another host).
   */
  readonly unfinished?: MarkerVerdict | undefined;
  /** Set when the entry is a symbolic link to a directory: where it leads. Never read, never deleted through. */
  readonly symlink?: string | undefined;
  /**
   * When the backup finished (its manifest's finishedAt): what orders a catalog, and what
   * purge counts as newest. Lacking a manifest, when the directory (or link) last changed.
   */
  readonly time: Date;
  /** The bytes of its files taken from its base (incremental); 0 for a full backup. */
  readonly bytesReused: number;
  /** Its last verification, if one was recorded; undefined when none is known. */
  readonly verification: Verification | undefined;
}

export interface CatalogOptions {
  /**
   * Where a backup's verification is read from: given the directory, its manifest and the
   * XXH3-64 of the manifest file's bytes. The default reads the record a verify leaves
   * beside the manifest (verification_record.ts), when it names that very manifest.
   */
  readVerification?: (dir: string, manifest: Manifest, manifestChecksum: string) => Promise<Verification | undefined>;
}

/**
 * Where `serve --stream-oplog` and `hotbackup oplog --out R/oplog` keep the streamed oplog
 * under a backup root R (docs/point-in-time.md).
 */
export const ROOT_OPLOG_DIR = 'oplog';

/**
 * Every subdirectory of `root` (one level), oldest first, but the streamed oplog's
 * (ROOT_OPLOG_DIR, when it holds no manifest). Throws when `root` cannot be read.
 */
export async function readCatalog(root: string, options: CatalogOptions = {}): Promise<CatalogEntry[]> {
  const dir = path.resolve(root);
  const entries = await fs.readdir(dir, { withFileTypes: true });
  const readVerification = options.readVerification ?? readVerificationRecord;
  const catalog = await Promise.all(
    entries
      .filter((entry) => !entry.name.startsWith('.'))
      .map(async (entry): Promise<CatalogEntry | undefined> => {
        const full = path.join(dir, entry.name);
        const stats = await fs.lstat(full).catch(() => undefined);
        if (stats?.isSymbolicLink() === true) return linkEntry(entry.name, full, stats.mtime);
        if (stats?.isDirectory() !== true) return undefined;
        try {
          const { manifest, fileChecksum } = await readManifestFile(full);
          return {
            name: entry.name,
            path: full,
            manifest,
            incomplete: undefined,
            time: new Date(manifest.finishedAt),
            bytesReused: manifest.files.reduce((sum, file) => sum + (file.reusedFrom === undefined ? 0 : file.size), 0),
            verification: await readVerification(full, manifest, fileChecksum),
          };
        } catch (err) {
          if (!(err instanceof ManifestError)) throw err;
          // The streamed oplog beside the backups is not an unfinished backup: list and purge pass it over.
          if (entry.name === ROOT_OPLOG_DIR) return undefined;
          const { incomplete, unfinished } = await withoutManifest(full, err);
          return { name: entry.name, path: full, manifest: undefined, incomplete, unfinished, time: stats.mtime, bytesReused: 0, verification: undefined };
        }
      }),
  );
  return catalog.filter((entry): entry is CatalogEntry => entry !== undefined).sort((a, b) => a.time.getTime() - b.time.getTime() || (a.name < b.name ? -1 : 1));
}

/** A symbolic link under the root, when it leads to a directory (others are passed over, as plain files are). */
async function linkEntry(name: string, full: string, time: Date): Promise<CatalogEntry | undefined> {
  const target = await fs.stat(full).catch(() => undefined);
  if (target?.isDirectory() !== true) return undefined;
  const symlink = path.resolve(path.dirname(full), await fs.readlink(full));
  return { name, path: full, manifest: undefined, incomplete: `a symbolic link to ${symlink}: not followed`, symlink, time, bytesReused: 0, verification: undefined };
}

/** Why a directory is not a complete backup, and, when its marker says, what became of the backup. */
export async function withoutManifest(dir: string, err: ManifestError): Promise<{ incomplete: string; unfinished: MarkerVerdict | undefined }> {
  switch (err.code) {
    case 'UNSUPPORTED_VERSION':
      return { incomplete: `a manifest this build cannot read (${err.message})`, unfinished: undefined };
    case 'INVALID':
    case 'UNREADABLE':
      return { incomplete: `an unusable manifest (${err.message})`, unfinished: undefined };
    case 'MISSING':
      break;
  }
  const read = await readIncompleteMarker(dir);
  if (read.kind === 'absent') return { incomplete: `no manifest and no ${INCOMPLETE_MARKER_FILENAME}: not a backup of ours`, unfinished: undefined };
  if (read.kind === 'invalid') return { incomplete: `no manifest, and its ${INCOMPLETE_MARKER_FILENAME} ${read.reason}`, unfinished: undefined };
  const { marker } = read;
  const verdict = markerVerdict(marker);
  const writer = `pid ${marker.writer.pid} on ${marker.writer.hostname}`;
  const says = `an unfinished backup: no manifest, and its ${INCOMPLETE_MARKER_FILENAME} says`;
  const which = `(backup ${marker.backupId}, started ${marker.startedAt})`;
  const incomplete = {
    running: `a backup still being written (by ${writer})`,
    unknown: `${says} it is being written by ${writer}, which cannot be checked from this host ${which}`,
    aborted: `${says} it was aborted ${which}`,
    failed: `${says} it failed ${which}`,
    interrupted: marker.state === 'running' ? `${says} running, but the proxy writing it (${writer}) is gone ${which}` : `${says} it was interrupted ${which}`,
  }[verdict];
  return { incomplete, unfinished: verdict };
}
