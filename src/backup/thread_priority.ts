/**
 * A copy thread gives way to the proxy's forwarding thread and to mongod, for the CPU
 * and for the disk. Both settings are per thread on Linux, so the proxy's main thread
 * keeps its own. Best effort: elsewhere the copy runs at the process's priorities.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CopyIoClass } from './copy_messages.js';

/** This thread's kernel id, or undefined off Linux. Node names no thread ids, but /proc/thread-self links to "<pid>/task/<tid>". */
function threadId(): number | undefined {
  try {
    const tid = Number(path.basename(fs.readlinkSync('/proc/thread-self')));
    return Number.isSafeInteger(tid) && tid !== process.pid ? tid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * - CPU: setpriority(PRIO_PROCESS, tid) sets one thread's nice value (man 2 setpriority,
 *   "BUGS"); a thread never raises its own.
 * - Disk: ioprio_set(IOPRIO_WHO_PROCESS, tid) is per thread too (man 2 ioprio_set).
 *   Node has no binding for it, so util-linux's `ionice -p <tid>` makes the call (an
 *   unprivileged process may put its own threads in the idle class). It applies to the
 *   I/O the thread submits itself: its reads, its O_DIRECT writes and what its fsync
 *   writes back, not to pages the kernel's flusher threads write later.
 */
export function lowerThreadPriority(niceness: number, ioClass: CopyIoClass): void {
  const tid = threadId();
  if (tid === undefined) return;
  try {
    os.setPriority(tid, Math.max(os.getPriority(tid), niceness));
  } catch {
    // Not permitted here: the copy runs at the process's nice value.
  }
  if (ioClass !== 'idle') return;
  try {
    execFileSync('ionice', ['-c', '3', '-p', String(tid)], { stdio: 'ignore', timeout: 10_000 });
  } catch {
    // No ionice (not Linux, or no util-linux): the copy's I/O competes as an equal.
  }
}
