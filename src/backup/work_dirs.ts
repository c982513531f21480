/**
 * Where the proxy keeps what must outlive it: the state file of a running backup
 * (run_state_file.ts) and the reflink strategy's staged clones.
 *
 * By default both sit in one hidden directory next to the dbpath, never inside it
 * (mongod owns everything under its dbpath, and a backup of the dbpath must not copy
 * them): dbpath /var/lib/mongodb gives /var/lib/.mongodb.hotbackup/. Clones can only
 * be made on the dbpath's own filesystem, so where the dbpath is a mount point of its
 * own (a dedicated XFS volume), `--staging-dir` must name a directory on that volume.
 */
import path from 'node:path';

export interface WorkDirs {
  /** Holds state.json. */
  stateDir: string;
  /** Each reflink backup stages its clones in `<stagingRoot>/<backupId>/`. */
  stagingRoot: string;
}

export const STATE_FILE_NAME = 'state.json';

export function defaultStateDir(dbpath: string): string {
  const resolved = path.resolve(dbpath);
  return path.join(path.dirname(resolved), `.${path.basename(resolved)}.hotbackup`);
}

export function workDirs(dbpath: string, given: { stateDir?: string | undefined; stagingRoot?: string | undefined } = {}): WorkDirs {
  const stateDir = path.resolve(given.stateDir ?? defaultStateDir(dbpath));
  return { stateDir, stagingRoot: path.resolve(given.stagingRoot ?? path.join(stateDir, 'staging')) };
}
