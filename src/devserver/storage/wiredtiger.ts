/**
 * Typed loader for the WiredTiger addon (src/devserver/native/).
 *
 * The addon is a thin mirror of WiredTiger's C API; these interfaces are its
 * contract. WT_NOTFOUND is never thrown: lookups answer null/false. Every other
 * WiredTiger failure throws a {@link WtError}.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Keys and values of the formats the binding converts: `q` ↔ number, `u` ↔ Buffer, `S` ↔ string. */
export type WtItem = number | Buffer | string;

export interface WtCursor {
  readonly uri: string;
  readonly keyFormat: string;
  /** Empty for cursors without values, such as `backup:` (whose getValue() is null). */
  readonly valueFormat: string;
  readonly isOpen: boolean;
  /** Positions on key and returns its value, or null (cursor reset) when absent. */
  search(key: WtItem): WtItem | null;
  /** exact < 0: positioned on a smaller key, 0: on key, > 0: on a larger key; null: empty. */
  searchNear(key: WtItem): { exact: number } | null;
  /** Overwrites unless the cursor was opened with `overwrite=false` (then WT_DUPLICATE_KEY). */
  insert(key: WtItem, value: WtItem): void;
  /** false when the key is absent and the cursor was opened with `overwrite=false`. */
  update(key: WtItem, value: WtItem): boolean;
  /** false when the key is absent and the cursor was opened with `overwrite=false`. */
  remove(key: WtItem): boolean;
  next(): boolean;
  prev(): boolean;
  getKey(): WtItem;
  getValue(): WtItem | null;
  /**
   * Up to n `[key, value]` pairs read with next(); fewer means the end was reached,
   * and (as after any next() that answers false) the cursor is reset: calling again
   * starts over from the first key.
   */
  nextBatch(n: number): Array<[WtItem, WtItem | null]>;
  reset(): void;
  close(): void;
  /**
   * WT_SESSION::open_cursor(session, NULL, this, config): a duplicate on the same session,
   * e.g. `target=("log:")` on a `backup:` cursor. Close it before this cursor.
   */
  duplicate(config?: string): WtCursor;
}

export interface WtSession {
  readonly isOpen: boolean;
  create(uri: string, config: string): void;
  drop(uri: string, config?: string): void;
  beginTransaction(config?: string): void;
  /** Committing or rolling back resets every cursor open on this session. */
  commitTransaction(config?: string): void;
  rollbackTransaction(): void;
  checkpoint(config?: string): void;
  logFlush(config?: string): void;
  openCursor(uri: string, config?: string): WtCursor;
  /** Closes the session's cursors too; their wrappers then throw ERR_WT_CLOSED. */
  close(): void;
}

export interface WtConnection {
  readonly isOpen: boolean;
  openSession(config?: string): WtSession;
  /** Closes every session and cursor (wrappers then throw ERR_WT_CLOSED). */
  close(config?: string): void;
}

/** A WiredTiger failure: `message` is wiredtiger_strerror(wtCode), `wtDetail` what WT logged. */
export interface WtError extends Error {
  wtCode: number;
  wtCall: string;
  wtDetail?: string;
}

interface WtAddon {
  Connection: { open(home: string, config: string): WtConnection };
  version: string;
  codes: Readonly<Record<WtCodeName, number>>;
}

export type WtCodeName =
  | 'WT_ROLLBACK' | 'WT_DUPLICATE_KEY' | 'WT_ERROR' | 'WT_NOTFOUND' | 'WT_PANIC'
  | 'WT_RUN_RECOVERY' | 'WT_CACHE_FULL' | 'WT_PREPARE_CONFLICT' | 'WT_TRY_SALVAGE'
  | 'EBUSY' | 'ENOENT' | 'EINVAL';

/** Return codes from wiredtiger.h and errno.h, for {@link isWtError}. */
export const WtCode = Object.freeze({
  WT_ROLLBACK: -31800,
  WT_DUPLICATE_KEY: -31801,
  WT_ERROR: -31802,
  WT_NOTFOUND: -31803,
  WT_PANIC: -31804,
  WT_RUN_RECOVERY: -31806,
  WT_CACHE_FULL: -31807,
  WT_PREPARE_CONFLICT: -31808,
  WT_TRY_SALVAGE: -31809,
  EBUSY: 16,
  ENOENT: 2,
  EINVAL: 22,
} as const satisfies Record<WtCodeName, number>);

const PACKAGE_NAME = 'mongo-hotbackup-proxy';
const ADDON_PATH = ['src', 'devserver', 'native', 'build', 'Release', 'wiredtiger.node'];

/** The repository root: works from src/ (tsx) and from a compiled outDir alike. */
function findPackageRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest)) {
      const { name } = JSON.parse(fs.readFileSync(manifest, 'utf8')) as { name?: unknown };
      if (name === PACKAGE_NAME) return dir;
    }
    if (path.dirname(dir) === dir) {
      throw new Error(`cannot find the ${PACKAGE_NAME} package above ${from}`);
    }
  }
}

let addon: WtAddon | undefined;

function load(): WtAddon {
  if (addon !== undefined) return addon;
  const root = findPackageRoot(path.dirname(fileURLToPath(import.meta.url)));
  const file = path.join(root, ...ADDON_PATH);
  if (!fs.existsSync(file)) {
    throw new Error(`WiredTiger addon not built (${file}); run \`npm run build:native\``);
  }
  addon = createRequire(import.meta.url)(file) as WtAddon;
  return addon;
}

/** wiredtiger_open(home, config). */
export function openConnection(home: string, config: string): WtConnection {
  return load().Connection.open(home, config);
}

export function wiredtigerVersion(): string {
  return load().version;
}

/** True when err is a WiredTiger failure, and (if given) carries that return code. */
export function isWtError(err: unknown, code?: number): err is WtError {
  if (!(err instanceof Error)) return false;
  const wtCode = (err as Partial<WtError>).wtCode;
  return typeof wtCode === 'number' && (code === undefined || wtCode === code);
}
