/**
 * `hotbackup unlock --upstream URI [--all] [--force]`: for the operator whose mongod was
 * left fsync-locked (a proxy and its watchdog both killed, a DBA's own lock forgotten).
 *
 * mongod's fsync lock is a bare count shared by every client (fsync.cpp `_lockCount`),
 * so one `db.fsyncUnlock()` releases one lock, whoever took it. By default this releases
 * exactly one, through the same lost-reply-safe path the proxy uses (releaseOneLock),
 * and prints the count that remains; `--all` releases until writes resume.
 *
 * An armed unlock watchdog (unlock_watchdog.ts) will send its own fsyncUnlock when its
 * proxy exits; unlocking by hand as well would release a later, unrelated lock. So this
 * refuses while one runs on this host, unless `--force`, and says how to disarm it.
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { AdminConnection, isFsyncLocked, releaseOneLock, type UnlockOutcome } from '../backup/strategies/fsync_lock_state.js';

const HELP = `Usage: hotbackup unlock --upstream URI [--all] [--force]

Releases mongod's fsync lock (db.fsyncUnlock()), one lock at a time, and says
how many remain. Locks nest: writes resume only when the count reaches 0.

Options:
  --upstream URI   the mongod, e.g. mongodb://127.0.0.1:27018              [required]
  --all            release every lock, until writes resume
  --force          unlock even while a proxy's unlock watchdog is armed on this host
  -h, --help       this text
`;

/** Pids of hotbackup unlock watchdogs running on this host (Linux /proc), besides ourselves. */
export function armedWatchdogs(procDir = '/proc'): number[] {
  let entries: string[];
  try {
    entries = fs.readdirSync(procDir);
  } catch {
    return [];
  }
  const pids: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const argv = fs.readFileSync(`${procDir}/${entry}/cmdline`, 'utf8').split('\0');
      // node <flags> /…/backup/strategies/unlock_watchdog.js: argv[0] is node, the script follows.
      if (argv.slice(1).some((arg) => arg.endsWith('/strategies/unlock_watchdog.js'))) pids.push(Number(entry));
    } catch {
      // Gone since readdir, or not ours to read.
    }
  }
  return pids;
}

function describe(outcome: UnlockOutcome): string {
  switch (outcome.kind) {
    case 'released':
      return outcome.lockCount === 0
        ? 'fsyncUnlock applied: lock count is now 0, writes resume.'
        : `fsyncUnlock applied: lock count is now ${outcome.lockCount}; writes stay blocked until every lock is released (--all releases them all).`;
    case 'notLocked':
      return 'mongod is not fsync-locked (any more): nothing to release.';
    case 'restarted':
      return 'mongod restarted during the unlock: its locks died with the old process; nothing was sent to the new one.';
  }
}

export async function runUnlock(args: string[], out: (line: string) => void = (line) => process.stdout.write(`${line}\n`)): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      upstream: { type: 'string' },
      all: { type: 'boolean', default: false },
      force: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help === true) {
    process.stdout.write(HELP);
    return 0;
  }
  const uri = values.upstream;
  if (uri === undefined) throw new Error('--upstream is required (e.g. --upstream mongodb://127.0.0.1:27018)');
  const watchdogs = armedWatchdogs();
  if (watchdogs.length > 0 && values.force !== true) {
    out(
      `A proxy's unlock watchdog is armed on this host (pid ${watchdogs.join(', ')}): it sends its own fsyncUnlock when its proxy exits, ` +
        'and unlocking by hand as well would release a later, unrelated lock. Disarm it first with ' +
        `\`kill -USR1 ${watchdogs.join(' ')}\` (it then exits without touching mongod), or pass --force.`,
    );
    return 3;
  }
  const conn = await AdminConnection.open(uri);
  try {
    if (!(await isFsyncLocked(conn.admin))) {
      out('mongod is not fsync-locked: nothing to release.');
      return 0;
    }
    for (;;) {
      const outcome = await releaseOneLock(conn);
      out(describe(outcome));
      if (outcome.kind !== 'released' || outcome.lockCount === 0 || values.all !== true) return 0;
    }
  } finally {
    await conn.close();
  }
}
