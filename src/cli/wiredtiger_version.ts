/**
 * Which WiredTiger wrote a dbpath, read from its files without opening it: the
 * `WiredTiger` file's second line (`WiredTiger 3.2.1: (August 27, 2019)`, which
 * WiredTiger's __conn_single in src/conn/conn_api.c writes when it creates a database),
 * or else WiredTiger.turtle's `WiredTiger version` entry (`major=3,minor=2,patch=1`,
 * written by __wt_turtle_update in src/meta/meta_turtle.c at each checkpoint). Opening a
 * dbpath with an older WiredTiger than wrote it is what must never happen: the dev
 * server's 3.2.1 would refuse the newer metadata at best, and at worst rewrite it.
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

/** The version that wrote `dbpath`, or undefined when neither file names one. */
export async function readWiredTigerVersion(dbpath: string): Promise<WiredTigerVersion | undefined> {
  const banner = (await readText(path.join(dbpath, 'WiredTiger')))?.split('\n')[1];
  const fromBanner = banner === undefined ? null : /^WiredTiger (\d+)\.(\d+)\.(\d+)\b/.exec(banner);
  if (fromBanner !== null) return { major: Number(fromBanner[1]), minor: Number(fromBanner[2]), patch: Number(fromBanner[3]) };
  const turtle = (await readText(path.join(dbpath, 'WiredTiger.turtle')))?.split('\n');
  const at = turtle?.indexOf('WiredTiger version') ?? -1;
  const fromTurtle = at < 0 ? null : /^major=(\d+),minor=(\d+),patch=(\d+)$/.exec(turtle?.[at + 1] ?? '');
  if (fromTurtle !== null) return { major: Number(fromTurtle[1]), minor: Number(fromTurtle[2]), patch: Number(fromTurtle[3]) };
  return undefined;
}

/** Whether the dev server may open a dbpath this version wrote: the same major.minor only. */
export function devServerCanOpen(version: WiredTigerVersion): boolean {
  return version.major === DEV_SERVER_WIREDTIGER.major && version.minor === DEV_SERVER_WIREDTIGER.minor;
}
