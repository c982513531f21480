/**
 * The backups under one directory (RocksDB's GetBackupInfo, over a directory of backup
 * directories): each subdirectory, one level down, with what its manifest says, or why
 * it is not a complete backup. Read-only; `hotbackup list` prints it, purge plans on it.
 * An S3 root (`s3://bucket/root`, its backups the prefixes one level down) is read the
 * same way through another CatalogSource (src/s3/s3_catalog.ts).
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
import pMap from 'p-map';
import { ManifestError, readManifestFile, type Manifest, type ReadManifest } from './manifest.js';
import { INCOMPLETE_MARKER_FILENAME, markerVerdict, readIncompleteMarker, type MarkerRead, type MarkerVerdict } from './backup_marker.js';
import { readVerification as readVerificationRecord } from './verification_record.js';
import type { S3Location } from '../s3/s3_location.js';

/** What a verification of the backup recorded, when one did. */
export interface Verification {
  readonly ok: boolean;
  /** ISO 8601. */
  readonly verifiedAt: string;
}

export interface CatalogEntry {
  /** The directory's (or S3 prefix's) name under the root. */
  readonly name: string;
  /** Absolute, or the backup's `s3://` URL. */
  readonly path: string;
  /**
   * On an S3 root, the prefix as listed: what purge deletes. Its name may be one a person
   * made by hand that parseS3Url refuses for a new location (a backslash), so it is
   * carried, never parsed again from `path`.
   */
  readonly s3Location?: S3Location | undefined;
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
   * purge counts as newest. Lacking a manifest, when the directory (or link) last changed,
   * or when the newest object under the S3 prefix was written.
   */
  readonly time: Date;
  /**
   * For one without a manifest, the bytes it holds, when its source counts them cheaply
   * (an S3 prefix: the listing's sizes); undefined otherwise.
   */
  readonly bytesHeld?: number | undefined;
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
 * Where a catalog's entries come from: a directory's subdirectories (below) or an S3
 * root's prefixes one level down (src/s3/s3_catalog.ts). What is made of them (a complete
 * backup, an unfinished one and what its marker says, the order) is the same for both:
 * readCatalogFrom.
 */
export interface CatalogSource {
  /** The root as the output names it: an absolute directory, or `s3://bucket/prefix`. */
  readonly root: string;
  /** The candidates one level down, hidden ones included (readCatalogFrom leaves them out). Throws when the root cannot be read. */
  children(): Promise<CatalogChild[]>;
}

/** One candidate under a root, read only as far as needed. */
export interface CatalogChild {
  readonly name: string;
  /** Where it is: an absolute path, or the backup's `s3://` URL. */
  readonly path: string;
  /** On an S3 root, the prefix as listed (its name may be one parseS3Url refuses for a new location). */
  readonly s3Location?: S3Location | undefined;
  /** Set when it is a symbolic link to a directory: where it leads, and when the link changed. Nothing behind it is read. */
  readonly symlink?: { readonly target: string; readonly time: Date } | undefined;
  /** Its manifest; throws a ManifestError when it has no usable one. */
  readManifest(): Promise<ReadManifest>;
  readMarker(): Promise<MarkerRead>;
  /** The verification recorded beside `manifest` (whose bytes have the XXH3-64 `manifestChecksum`), when it speaks for it. */
  readVerification(manifest: Manifest, manifestChecksum: string): Promise<Verification | undefined>;
  /**
   * For one without a manifest: when it last changed, and the bytes it holds when the
   * source counts them cheaply (an S3 listing has every object's size; a directory would
   * need a walk). Undefined when it is gone meanwhile.
   */
  contents(): Promise<{ time: Date; bytes: number | undefined } | undefined>;
}

/**
 * Every subdirectory of `root` (one level), oldest first, but the streamed oplog's
 * (ROOT_OPLOG_DIR, when it holds no manifest). Throws when `root` cannot be read.
 */
export async function readCatalog(root: string, options: CatalogOptions = {}): Promise<CatalogEntry[]> {
  return readCatalogFrom(directorySource(root, options));
}

/**
 * Entries read at once: an S3 root may hold hundreds of backups, and each read buffers
 * its manifest's bytes (a few hundred per file) besides the parsed manifest kept.
 */
const READ_CONCURRENCY = 8;

/** The catalog of `source`: its entries oldest first (by when they finished, then by name). */
export async function readCatalogFrom(source: CatalogSource): Promise<CatalogEntry[]> {
  const children = (await source.children()).filter((child) => !child.name.startsWith('.'));
  const catalog = await pMap(children, (child) => readEntry(child), { concurrency: READ_CONCURRENCY });
  return catalog.filter((entry): entry is CatalogEntry => entry !== undefined).sort((a, b) => a.time.getTime() - b.time.getTime() || (a.name < b.name ? -1 : 1));
}

async function readEntry(child: CatalogChild): Promise<CatalogEntry | undefined> {
  const { name, path: where, symlink } = child;
  const located = child.s3Location === undefined ? {} : { s3Location: child.s3Location };
  if (symlink !== undefined) {
    return { name, path: where, manifest: undefined, incomplete: `a symbolic link to ${symlink.target}: not followed`, symlink: symlink.target, time: symlink.time, bytesReused: 0, verification: undefined };
  }
  try {
    const { manifest, fileChecksum } = await child.readManifest();
    return {
      name,
      path: where,
      ...located,
      manifest,
      incomplete: undefined,
      time: new Date(manifest.finishedAt),
      bytesReused: manifest.files.reduce((sum, file) => sum + (file.reusedFrom === undefined ? 0 : file.size), 0),
      verification: await child.readVerification(manifest, fileChecksum),
    };
  } catch (err) {
    if (!(err instanceof ManifestError)) throw err;
    // The streamed oplog beside the backups is not an unfinished backup: list and purge pass it over.
    if (name === ROOT_OPLOG_DIR) return undefined;
    const contents = await child.contents();
    if (contents === undefined) return undefined;
    const { incomplete, unfinished } = await judgeWithoutManifest(err, () => child.readMarker());
    return { name, path: where, ...located, manifest: undefined, incomplete, unfinished, time: contents.time, bytesReused: 0, verification: undefined, ...(contents.bytes === undefined ? {} : { bytesHeld: contents.bytes }) };
  }
}

/** The subdirectories of a directory, and its symbolic links to directories. */
export function directorySource(root: string, options: CatalogOptions = {}): CatalogSource {
  const dir = path.resolve(root);
  const readVerification = options.readVerification ?? readVerificationRecord;
  return {
    root: dir,
    async children() {
      const entries = await fs.readdir(dir, { withFileTypes: true });
      const children = await Promise.all(
        entries.map(async (entry): Promise<CatalogChild | undefined> => {
          const full = path.join(dir, entry.name);
          const stats = await fs.lstat(full).catch(() => undefined);
          if (stats?.isSymbolicLink() === true) {
            const target = await fs.stat(full).catch(() => undefined);
            if (target?.isDirectory() !== true) return undefined;
            return directoryChild(entry.name, full, readVerification, stats.mtime, { target: path.resolve(dir, await fs.readlink(full)), time: stats.mtime });
          }
          return stats?.isDirectory() === true ? directoryChild(entry.name, full, readVerification, stats.mtime) : undefined;
        }),
      );
      return children.filter((child): child is CatalogChild => child !== undefined);
    },
  };
}

function directoryChild(name: string, full: string, readVerification: NonNullable<CatalogOptions['readVerification']>, mtime: Date, symlink?: CatalogChild['symlink']): CatalogChild {
  return {
    name,
    path: full,
    symlink,
    readManifest: () => readManifestFile(full),
    readMarker: () => readIncompleteMarker(full),
    readVerification: (manifest, checksum) => readVerification(full, manifest, checksum),
    contents: () => Promise.resolve({ time: mtime, bytes: undefined }),
  };
}

/** Why a directory is not a complete backup, and, when its marker says, what became of the backup. */
export async function withoutManifest(dir: string, err: ManifestError): Promise<{ incomplete: string; unfinished: MarkerVerdict | undefined }> {
  return judgeWithoutManifest(err, () => readIncompleteMarker(dir));
}

/** The same, for a backup wherever it lies: `readMarker` reads its marker (a file, an S3 object). */
export async function judgeWithoutManifest(err: ManifestError, readMarker: () => Promise<MarkerRead>): Promise<{ incomplete: string; unfinished: MarkerVerdict | undefined }> {
  switch (err.code) {
    case 'UNSUPPORTED_VERSION':
      return { incomplete: `a manifest this build cannot read (${err.message})`, unfinished: undefined };
    case 'INVALID':
    case 'UNREADABLE':
      return { incomplete: `an unusable manifest (${err.message})`, unfinished: undefined };
    case 'MISSING':
      break;
  }
  const read = await readMarker();
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
