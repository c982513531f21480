/**
 * Where the proxy keeps what must outlive it: the state file of a running backup
 * (run_state_file.ts), the scheduled job's record (job_state_file.ts) and the reflink
 * strategy's staged clones.
 *
 * By default both sit in one hidden directory next to the dbpath, never inside it
 * (mongod owns everything under its dbpath, and a backup of the dbpath must not copy
 * them): dbpath /var/lib/mongodb gives /var/lib/.mongodb.hotbackup/. Clones can only
 * be made on the dbpath's own filesystem, so where the dbpath is a mount point of its
 * own (a dedicated XFS volume), `--staging-dir` must name a directory on that volume.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { pathsOverlap } from './destination.js';

export interface WorkDirs {
  /** Holds state.json. */
  stateDir: string;
  /** Each reflink backup stages its clones in `<stagingRoot>/hotbackup-staging-<backupId>/`. */
  stagingRoot: string;
}

export const STATE_FILE_NAME = 'state.json';

/** The scheduled job's record (job_state_file.ts): its state, its backups, its last run. */
export const JOB_FILE_NAME = 'job.json';

export function defaultStateDir(dbpath: string): string {
  const resolved = path.resolve(dbpath);
  return path.join(path.dirname(resolved), `.${path.basename(resolved)}.hotbackup`);
}

export function workDirs(dbpath: string, given: { stateDir?: string | undefined; stagingRoot?: string | undefined } = {}): WorkDirs {
  const stateDir = path.resolve(given.stateDir ?? defaultStateDir(dbpath));
  return { stateDir, stagingRoot: path.resolve(given.stagingRoot ?? path.join(stateDir, 'staging')) };
}

/**
 * Each backup's staging directory is `<stagingRoot>/<STAGING_PREFIX><backupId>`: the
 * prefix marks it as ours, so that the sweep of leftovers at start (recovery_steps.ts)
 * never removes a directory it did not make, whatever else the operator keeps there.
 */
export const STAGING_PREFIX = 'hotbackup-staging-';

/** `dir` with its symbolic links resolved as far as it exists. */
async function realPath(dir: string): Promise<string> {
  let existing = path.resolve(dir);
  const rest: string[] = [];
  for (;;) {
    try {
      return path.join(await fs.realpath(existing), ...rest);
    } catch {
      const parent = path.dirname(existing);
      if (parent === existing) return path.resolve(dir);
      rest.unshift(path.basename(existing));
      existing = parent;
    }
  }
}

/**
 * Refuses a state dir or staging root that is the dbpath, inside it, or holds it: mongod
 * owns everything under its dbpath (a staging directory there would be copied by the
 * next backup, and the sweep of leftovers must never reach mongod's files).
 */
export async function checkWorkDirs(dbpath: string, dirs: WorkDirs): Promise<void> {
  const db = path.resolve(dbpath);
  const realDb = await realPath(db);
  for (const [flag, dir] of [
    ['--state-dir', dirs.stateDir],
    ['--staging-dir', dirs.stagingRoot],
  ] as const) {
    if (pathsOverlap(dir, db) || pathsOverlap(await realPath(dir), realDb)) {
      throw new Error(`${flag} ${dir} must be outside the dbpath ${db}, and must not contain it: mongod owns everything under its dbpath`);
    }
  }
}
