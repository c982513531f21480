/**
 * Which WiredTiger wrote a dbpath, read from its files without opening it. Two files name
 * a version: WiredTiger.turtle's `WiredTiger version` entry (`major=3,minor=2,patch=1`),
 * which __wt_turtle_update (src/meta/meta_turtle.c) rewrites at each checkpoint, so it
 * names the last WiredTiger that opened the files; and the `WiredTiger` file's second
 * line (`WiredTiger 3.2.1: (August 27, 2019)`), which __conn_single (src/conn/conn_api.c)
 * writes only when it creates the database (`if (conn->is_new)`), so a dbpath created by
 * an old WiredTiger and upgraded in place keeps the old banner. The newer of the two is
 * taken. Files only a newer WiredTiger writes (its history store) are checked as well.
 * Opening a dbpath with an older WiredTiger than wrote it is what must never happen: the
 * dev server's 3.2.1 would refuse the newer metadata at best, and at worst rewrite it.
 */
import fs from 'node:fs/promises';
import path from 'node:path';

export interface WiredTigerVersion {
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
}

/**
 * The dev server's own WiredTiger, Debian's libwiredtiger 3.2.1 (docs/devserver.md); the
 * product may not import the dev server to ask it, so test/cli/restore_guard.test.ts
 * checks this against the native binding's wiredtiger_version().
 */
export const DEV_SERVER_WIREDTIGER: WiredTigerVersion = Object.freeze({ major: 3, minor: 2, patch: 1 });

export function formatWiredTigerVersion(version: WiredTigerVersion): string {
  return `${version.major}.${version.minor}.${version.patch}`;
}

async function readText(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'latin1');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function compareVersions(a: WiredTigerVersion, b: WiredTigerVersion): number {
  return a.major - b.major || a.minor - b.minor || a.patch - b.patch;
}

/** The newest version either file names, or undefined when neither names one. */
export async function readWiredTigerVersion(dbpath: string): Promise<WiredTigerVersion | undefined> {
  const found: WiredTigerVersion[] = [];
  const banner = (await readText(path.join(dbpath, 'WiredTiger')))?.split('\n')[1];
  const fromBanner = banner === undefined ? null : /^WiredTiger (\d+)\.(\d+)\.(\d+)\b/.exec(banner);
  if (fromBanner !== null) found.push({ major: Number(fromBanner[1]), minor: Number(fromBanner[2]), patch: Number(fromBanner[3]) });
  const turtle = (await readText(path.join(dbpath, 'WiredTiger.turtle')))?.split('\n');
  const at = turtle?.indexOf('WiredTiger version') ?? -1;
  const fromTurtle = at < 0 ? null : /^major=(\d+),minor=(\d+),patch=(\d+)$/.exec(turtle?.[at + 1] ?? '');
  if (fromTurtle !== null) found.push({ major: Number(fromTurtle[1]), minor: Number(fromTurtle[2]), patch: Number(fromTurtle[3]) });
  return found.sort(compareVersions).at(-1);
}

/**
 * Files WiredTiger writes only from a version the dev server's cannot open: the history
 * store, WiredTigerHS.wt, of WiredTiger 10 (mongod 4.4 on; src/include/meta.h,
 * WT_HS_FILE), which replaced 3.x's lookaside file WiredTigerLAS.wt. mongod's own files
 * (sizeStorer.wt, _mdb_catalog.wt) say nothing about WiredTiger's version.
 */
const NEWER_WIREDTIGER_FILES: readonly string[] = ['WiredTigerHS.wt'];

/** Which of those files `dbpath` holds. */
export async function newerWiredTigerFiles(dbpath: string): Promise<string[]> {
  const names = new Set(await fs.readdir(dbpath));
  return NEWER_WIREDTIGER_FILES.filter((name) => names.has(name));
}

/** Whether the dev server may open a dbpath this version wrote: the same major.minor only. */
export function devServerCanOpen(version: WiredTigerVersion): boolean {
  return version.major === DEV_SERVER_WIREDTIGER.major && version.minor === DEV_SERVER_WIREDTIGER.minor;
}
