/**
 * The root `hotbackup list` and `hotbackup purge` work on: a directory of backup
 * directories, or an S3 root `s3://bucket/root` whose backups are the prefixes one level
 * down, with the S3 client the AWS environment configures (s3_client.ts). Both commands
 * then read, plan and print the same way; only where the entries come from and how a
 * backup is deleted differ.
 */
import path from 'node:path';
import { directorySource, type CatalogSource } from '../backup/backup_catalog.js';
import { directoryStore, type PurgeStore } from '../backup/retention.js';
import { CommandError } from '../errors.js';
import { createS3Client, s3SettingsFromEnvironment } from '../s3/s3_client.js';
import { s3CatalogSource } from '../s3/s3_catalog.js';
import { s3PurgeStore } from '../s3/s3_purge.js';
import { isS3Url, parseS3Url } from '../s3/s3_location.js';
import { quietSdkNodeWarning } from '../s3/sdk_node_warning.js';

export interface CatalogRoot {
  /** As the output names it: an absolute path, or `s3://bucket/root`. */
  readonly root: string;
  /** What its backups are, for "No backup directories under …". */
  readonly holds: 'directories' | 'prefixes';
  readonly source: CatalogSource;
  readonly store: PurgeStore;
  /** Releases the S3 client's sockets, if any. */
  close(): void;
}

/**
 * Opens `root` as given on the command line. Throws a CommandError (BadValue) for a
 * malformed s3:// URL and a TypeError for an unusable AWS_* setting, both before any request.
 */
export function openCatalogRoot(root: string, env: NodeJS.ProcessEnv = process.env): CatalogRoot {
  if (!isS3Url(root)) {
    const dir = path.resolve(root);
    return { root: dir, holds: 'directories', source: directorySource(dir), store: directoryStore, close: () => undefined };
  }
  const location = parseS3Url(root, 'Backup root');
  quietSdkNodeWarning();
  const client = createS3Client(s3SettingsFromEnvironment(env));
  const source = s3CatalogSource(client, location);
  return { root: source.root, holds: 'prefixes', source, store: s3PurgeStore(client), close: () => client.destroy() };
}

/** Why the root could not be read, in one line: S3's own (it names the URL and S3's code), or the filesystem's. */
export function cannotRead(root: string, err: unknown): string {
  if (err instanceof CommandError) return err.message;
  return `cannot read ${root}: ${err instanceof Error ? err.message : String(err)}`;
}
