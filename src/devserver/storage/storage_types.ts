/** The storage engine's public types (re-exported by engine.ts). */
import type { UUID } from 'bson';
import type { StorageLayout } from './ident_layout.js';

export interface EngineOptions {
  dbpath: string;
  /** WiredTiger cache size; default 256. */
  cacheSizeMB?: number;
  /** Appended to wiredtiger_open's configuration, where it overrides ours (mongod's --wiredTigerEngineConfigString). */
  engineConfig?: string;
  /** mongod's --directoryperdb and --wiredTigerDirectoryForIndexes; both off by default. */
  layout?: StorageLayout;
}

export interface IndexSpec {
  v: number;
  key: Record<string, unknown>;
  name: string;
  [k: string]: unknown;
}

export interface CollectionMeta {
  ns: string;
  db: string;
  name: string;
  uuid: UUID;
  /** WiredTiger ident of the record table: `collection-<n>-<random>`. */
  ident: string;
  /** WiredTiger ident of the `_id` index table: `index-<n>-<random>`. */
  idIndexIdent: string;
  options: Record<string, unknown>;
  indexes: IndexSpec[];
}

/** A record: its id in the collection table (natural order) and the BSON document. */
export interface RecordEntry {
  rid: number;
  doc: Buffer;
}

export interface BackupFile {
  /** Absolute path. */
  filename: string;
  /** Copy the file up to this many bytes. */
  fileSize: number;
}

export interface BackupCursorHandle {
  readonly backupId: UUID;
  readonly files: BackupFile[];
  /**
   * What StorageEngine's checkpoint marker said when the checkpoint this backup holds was
   * taken (undefined: no checkpoint marked since the engine opened).
   */
  readonly checkpointMark: unknown;
  /**
   * Syncs the journal and lists, through a duplicate cursor with `target=("log:")`, the
   * journal files the backup did not list when it opened, as mongod's extendBackupCursor.
   */
  extend(): BackupFile[];
  /** Ends the backup; idempotent. */
  close(): void;
}
