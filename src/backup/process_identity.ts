/**
 * Which process wrote a file, told well enough that another process can later ask
 * whether that writer still runs: its pid, its host, and on Linux when it started (the
 * boot's id and the process's start time, fields of /proc, proc(5)). A pid alone is not
 * enough: pids are reused, and a backup marked "running" by a proxy that died must not
 * read as still running because another process took its pid.
 */
import fs from 'node:fs';
import os from 'node:os';

export interface ProcessIdentity {
  pid: number;
  hostname: string;
  /** `<boot_id>:<starttime>` on Linux; absent where /proc cannot tell. */
  start?: string;
}

/** proc(5): field 22 of /proc/<pid>/stat, after the command name in parentheses (which may hold spaces). */
function startOf(pid: number): string | undefined {
  try {
    const bootId = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields after the name start at field 3; starttime is field 22.
    const starttime = fields[22 - 3];
    return starttime === undefined ? undefined : `${bootId}:${starttime}`;
  } catch {
    return undefined;
  }
}

export function selfIdentity(): ProcessIdentity {
  const start = startOf(process.pid);
  return { pid: process.pid, hostname: os.hostname(), ...(start === undefined ? {} : { start }) };
}

/**
 * Whether the process `identity` names still runs: 'unknown' when it ran on another
 * host (or in another container, whose hostname differs), since its pid means nothing here.
 */
export function processState(identity: ProcessIdentity): 'alive' | 'gone' | 'unknown' {
  if (identity.hostname !== os.hostname()) return 'unknown';
  if (identity.start !== undefined) {
    const now = startOf(identity.pid);
    if (now !== undefined) return now === identity.start ? 'alive' : 'gone';
  }
  try {
    process.kill(identity.pid, 0);
    return 'alive';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? 'alive' : 'gone';
  }
}
