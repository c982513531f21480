/**
 * Where WiredTiger's table files go inside the dbpath, as mongod's --directoryperdb and
 * --wiredTigerDirectoryForIndexes place them (src/mongo/db/storage/durable_catalog.cpp,
 * generateUniqueIdent; the directories are made by wiredtiger_kv_engine.cpp's
 * _ensureIdentPath before WiredTiger creates the table):
 *   neither:          collection-<n>-<r>,        index-<n>-<r>
 *   directoryperdb:   <db>/collection-<n>-<r>,   <db>/index-<n>-<r>
 *   forIndexes:       collection/<n>-<r>,        index/<n>-<r>
 *   both:             <db>/collection/<n>-<r>,   <db>/index/<n>-<r>
 * The layout is remembered in storage.bson, and a start with another one is refused,
 * as mongod's storage_engine_metadata.cpp does.
 */
import fs from 'node:fs';
import path from 'node:path';
import { deserialize } from 'bson';
import { DevServerError, DevServerCodes } from '../dev_server_errors.js';

export interface StorageLayout {
  directoryPerDB: boolean;
  directoryForIndexes: boolean;
}

export const DEFAULT_LAYOUT: StorageLayout = Object.freeze({ directoryPerDB: false, directoryForIndexes: false });

export type IdentKind = 'collection' | 'index';

/** The ident (WiredTiger's table name, the file's path without `.wt`) for a new table. */
export function identFor(layout: StorageLayout, kind: IdentKind, db: string, unique: string): string {
  const name = layout.directoryForIndexes ? `${kind}/${unique}` : `${kind}-${unique}`;
  return layout.directoryPerDB ? `${db}/${name}` : name;
}

/** Is this table name one of ours (a collection or an index), whatever the layout? */
export function isDataIdent(ident: string): boolean {
  return /(?:^|\/)(?:collection|index)[-/][^/]+$/.test(ident);
}

/** Creates the directories the ident's file will live in; WiredTiger creates none. */
export function ensureIdentDirectory(dbpath: string, ident: string): void {
  const dir = path.dirname(ident);
  if (dir !== '.') fs.mkdirSync(path.join(dbpath, dir), { recursive: true });
}

/**
 * Removes the ident's directories that its drop left empty, as mongod's
 * WiredTigerKVEngine::_removeIdentDirectoryIfEmpty does (a dropped database's directory
 * goes with its last table). Stops at the first one that is not empty.
 */
export function removeEmptyIdentDirectories(dbpath: string, ident: string): void {
  for (let dir = path.dirname(ident); dir !== '.'; dir = path.dirname(dir)) {
    try {
      fs.rmdirSync(path.join(dbpath, dir));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') return;
      if (code !== 'ENOENT') throw err;
    }
  }
}

/**
 * Refuses a layout other than the one storage.bson records (none recorded: any is fine),
 * with mongod's InvalidOptions message (StorageEngineMetadata::validateStorageEngineOption).
 */
export function checkRecordedLayout(storageBson: string, requested: StorageLayout): void {
  let recorded: Record<string, unknown> | undefined;
  try {
    const doc = deserialize(fs.readFileSync(storageBson)) as { storage?: { options?: Record<string, unknown> } };
    recorded = doc.storage?.options;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  for (const field of ['directoryPerDB', 'directoryForIndexes'] as const) {
    const value = recorded?.[field];
    if (value === undefined) continue;
    if (typeof value !== 'boolean') {
      throw new DevServerError(DevServerCodes.FailedToParse, `Expected boolean field ${field} but got ${typeof value} instead`);
    }
    if (value !== requested[field]) {
      throw new DevServerError(
        DevServerCodes.InvalidOptions,
        `Requested option conflicts with current storage engine option for ${field}; ` +
          `you requested ${String(requested[field])} but the current server storage is already set to ${String(value)} and cannot be changed`,
      );
    }
  }
}
