/**
 * Which directories below `--backup-root` the proxy writes through. A check by path
 * holds only as long as nobody else may rename entries on that path: whoever may write
 * in a directory can swap a symbolic link in for what is below it after the check
 * (backup_root.ts, module comment). So every directory on a walk below the root must be
 * owned by the proxy's user or by root, and writable by nobody else, unless it has the
 * sticky bit, which lets only an entry's owner rename it (the rule of OpenSSH's
 * `safe_path` in misc.c, with /tmp's sticky exception). A destination that exists
 * already must be the proxy's own: it is then set to 0700, so that nobody else may add
 * or swap entries in it. Root-owned directories are trusted as root is.
 */
import type { Stats } from 'node:fs';

const STICKY = 0o1000;

/** The effective uid the proxy runs as; undefined where there are none (Windows). */
export function proxyUid(): number | undefined {
  return process.geteuid?.();
}

/** Why a directory below the root is not safe to write through, or undefined when it is. */
export function distrustOfDirectory(stats: Pick<Stats, 'uid' | 'mode'>, euid = proxyUid()): string | undefined {
  if (euid === undefined) return undefined;
  if (stats.uid !== euid && stats.uid !== 0) return `it is owned by uid ${stats.uid}, neither the proxy's user (uid ${euid}) nor root`;
  if ((stats.mode & 0o022) !== 0 && (stats.mode & STICKY) === 0) {
    return `group or others may write to it (mode ${(stats.mode & 0o7777).toString(8).padStart(4, '0')}) and it has no sticky bit`;
  }
  return undefined;
}

/** Why an existing destination below the root cannot be taken, or undefined when it can. */
export function distrustOfDestination(stats: Pick<Stats, 'uid'>, euid = proxyUid()): string | undefined {
  if (euid === undefined || stats.uid === euid) return undefined;
  return `it is owned by uid ${stats.uid}, not by the proxy's user (uid ${euid}), who could not keep others out of it`;
}
