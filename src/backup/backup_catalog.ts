/**
 * The backups under one directory (RocksDB's GetBackupInfo, over a directory of backup
 * directories): each subdirectory, one level down, with what its manifest says, or why
 * it is not a complete backup. Read-only; `hotbackup list` prints it, purge plans on it.
 *
 * A directory is a complete backup exactly when it holds a valid manifest: the manifest
 * is written last (manifest.ts), so a backup that is still running, was aborted, or
 * failed has none. Hidden entries (a leading dot) are left out: they are nobody's backup.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { ManifestError, readManifestFile, type Manifest } from './manifest.js';
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
  /** Why it is not a complete backup, when it is not (no manifest, an invalid one). */
  readonly incomplete: string | undefined;
  /** When the backup started (its manifest's startedAt), or, lacking one, when the directory last changed. */
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

/** Every subdirectory of `root` (one level), oldest first. Throws when `root` cannot be read. */
export async function readCatalog(root: string, options: CatalogOptions = {}): Promise<CatalogEntry[]> {
  const dir = path.resolve(root);
  const entries = await fs.readdir(dir, { withFileTypes: true });
  const readVerification = options.readVerification ?? readVerificationRecord;
  const catalog = await Promise.all(
    entries
      .filter((entry) => !entry.name.startsWith('.'))
      .map(async (entry): Promise<CatalogEntry | undefined> => {
        const full = path.join(dir, entry.name);
        // Followed: a backup reached through a symbolic link is listed under the link's name.
        const stats = await fs.stat(full).catch(() => undefined);
        if (stats?.isDirectory() !== true) return undefined;
        try {
          const { manifest, fileChecksum } = await readManifestFile(full);
          return {
            name: entry.name,
            path: full,
            manifest,
            incomplete: undefined,
            time: new Date(manifest.startedAt),
            bytesReused: manifest.files.reduce((sum, file) => sum + (file.reusedFrom === undefined ? 0 : file.size), 0),
            verification: await readVerification(full, manifest, fileChecksum),
          };
        } catch (err) {
          if (!(err instanceof ManifestError)) throw err;
          return { name: entry.name, path: full, manifest: undefined, incomplete: incompleteReason(err), time: stats.mtime, bytesReused: 0, verification: undefined };
        }
      }),
  );
  return catalog.filter((entry): entry is CatalogEntry => entry !== undefined).sort((a, b) => a.time.getTime() - b.time.getTime() || (a.name < b.name ? -1 : 1));
}

function incompleteReason(err: ManifestError): string {
  switch (err.code) {
    case 'MISSING':
      return 'no manifest (still running, aborted, failed, or not a backup)';
    case 'UNSUPPORTED_VERSION':
      return `a manifest this build cannot read (${err.message})`;
    default:
      return `an unusable manifest (${err.message})`;
  }
}
