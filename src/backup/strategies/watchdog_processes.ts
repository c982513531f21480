/**
 * Unlock watchdogs (unlock_watchdog.ts) as other processes see them, through Linux's
 * /proc: whether a pid is one, and what it guards. Its command line runs the watchdog
 * script (a reused pid, or a zombie, has another or none), and the environment it was
 * started with names the mongod it unlocks and the state file it marks. Recovery asks
 * whether the recorded watchdog still works; `hotbackup unlock` asks whether any guards
 * the mongod it is told to unlock.
 */
import fs from 'node:fs/promises';
import { STATE_FILE_ENV, URI_ENV, WATCHDOG_SCRIPT } from './unlock_watchdog.js';

const hasProc: Promise<boolean> = fs.access('/proc/self/cmdline').then(
  () => true,
  () => false,
);

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The NUL-separated strings of a /proc file of `pid`, or undefined when it cannot be read (gone, or not ours to read). */
async function procStrings(pid: number, file: 'cmdline' | 'environ'): Promise<string[] | undefined> {
  try {
    return (await fs.readFile(`/proc/${pid}/${file}`, 'utf8')).split('\0').filter((s) => s !== '');
  } catch {
    return undefined;
  }
}

/** What a watchdog process guards, as its environment says; undefined fields when it cannot be read. */
export interface WatchdogProcess {
  pid: number;
  /** HOTBACKUP_WATCHDOG_URI: the mongod it unlocks. */
  uri: string | undefined;
  /** The state file it marks. */
  stateFile: string | undefined;
}

/**
 * `pid` as a watchdog, or undefined when it is none (or is gone). Without /proc (not
 * Linux) a live pid is taken for one, guarding nothing known: waiting too long, or
 * refusing an unlock, beats unlocking twice.
 */
export async function watchdogProcess(pid: number): Promise<WatchdogProcess | undefined> {
  if (!(await hasProc)) return processExists(pid) ? { pid, uri: undefined, stateFile: undefined } : undefined;
  const args = await procStrings(pid, 'cmdline');
  // node <flags> /…/unlock_watchdog.js: argv[0] is node, the script follows.
  if (args === undefined || !args.slice(1).some((arg) => arg.endsWith(WATCHDOG_SCRIPT))) return undefined;
  const environ = (await procStrings(pid, 'environ')) ?? [];
  const value = (name: string) => environ.find((entry) => entry.startsWith(`${name}=`))?.slice(name.length + 1);
  return { pid, uri: value(URI_ENV), stateFile: value(STATE_FILE_ENV) };
}

/** Every watchdog running on this host, this process aside. */
export async function watchdogProcesses(): Promise<WatchdogProcess[]> {
  const entries = await fs.readdir('/proc').catch(() => [] as string[]);
  const pids = entries.filter((entry) => /^\d+$/.test(entry) && Number(entry) !== process.pid).map(Number);
  const found = await Promise.all(pids.map((pid) => watchdogProcess(pid)));
  return found.filter((process): process is WatchdogProcess => process !== undefined);
}
