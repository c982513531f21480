/**
 * `hotbackup unlock --upstream URI [--state-dir DIR | --dbpath DIR] [--all] [--force]`: for the operator whose mongod was
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
 *
 * A proxy killed together with its watchdog (a container's PID 1 going down) leaves its
 * lock recorded in its state file, and its next start releases it (recovery.ts). An
 * operator who unlocks by hand meanwhile must say so there, or that start releases one
 * lock more, maybe a DBA's: given the state dir (or the dbpath it derives from), this
 * releases the backup's lock and records that it did, so the next start sends nothing.
 */
import { ConnectionString } from 'mongodb-connection-string-url';
import { parseArgs } from 'node:util';
import path from 'node:path';
import { AdminConnection, isFsyncLocked, releaseOneLock, type UnlockOutcome } from '../backup/strategies/fsync_lock_state.js';
import { lockMayBeHeld, readStateFile, stateFilePath, writeStateFile, type RunState } from '../backup/run_state_file.js';
import { claimStateDir, type StateDirClaim } from '../backup/state_dir_claim.js';
import { watchdogProcesses } from '../backup/strategies/watchdog_processes.js';
import { workDirs } from '../backup/work_dirs.js';
import { resolveUpstreamUri, UPSTREAM_PASSWORD_ENV, UPSTREAM_URI_ENV } from './upstream_credentials.js';

const HELP = `Usage: hotbackup unlock --upstream URI [--upstream-password-file FILE] [--state-dir DIR | --dbpath DIR] [--all] [--force]

Releases mongod's fsync lock (db.fsyncUnlock()), one lock at a time, and says
how many remain. Locks nest: writes resume only when the count reaches 0.

Options:
  --upstream URI   the mongod, e.g. mongodb://127.0.0.1:27018
                   [required, or ${UPSTREAM_URI_ENV}]
  --upstream-password-file FILE
                   the password of the URI's user (mode 0600), or
                   ${UPSTREAM_PASSWORD_ENV}: as \`serve\` takes them, never on
                   a command line that ps shows
  --state-dir DIR  the dead proxy's state dir: the backup's lock is released
                   and recorded as released, so its next start sends nothing
  --dbpath DIR     mongod's dbpath, for the default state dir beside it
  --all            release every lock, until writes resume
  --force          unlock even while a proxy's unlock watchdog is armed on this host
  -h, --help       this text
`;

/** The mongod addresses (host:port, lowercased) a connection string names. */
function hostsOf(uri: string): Set<string> {
  try {
    return new Set(new ConnectionString(uri).hosts.map((host) => host.toLowerCase()));
  } catch {
    return new Set();
  }
}

/**
 * Pids of hotbackup unlock watchdogs running on this host that guard a lock on the mongod
 * `uri` names (the URI in their environment). One whose environment cannot be read
 * counts, to be safe; one for another mongod does not.
 */
export async function armedWatchdogs(uri: string): Promise<number[]> {
  const ours = hostsOf(uri);
  return (await watchdogProcesses())
    .filter((watchdog) => watchdog.uri === undefined || [...hostsOf(watchdog.uri)].some((host) => ours.has(host)))
    .map((watchdog) => watchdog.pid);
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
      'upstream-password-file': { type: 'string' },
      'state-dir': { type: 'string' },
      dbpath: { type: 'string' },
      all: { type: 'boolean', default: false },
      force: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help === true) {
    process.stdout.write(HELP);
    return 0;
  }
  const upstream = resolveUpstreamUri({ flag: values.upstream, passwordFile: values['upstream-password-file'], env: process.env });
  if (upstream === undefined) throw new Error(`--upstream is required (e.g. --upstream mongodb://127.0.0.1:27018), or ${UPSTREAM_URI_ENV}`);
  const uri = upstream.uri;
  const watchdogs = await armedWatchdogs(uri);
  if (watchdogs.length > 0 && values.force !== true) {
    out(
      `A proxy's unlock watchdog is armed on this host (pid ${watchdogs.join(', ')}): it sends its own fsyncUnlock when its proxy exits, ` +
        'and unlocking by hand as well would release a later, unrelated lock. Disarm it first with ' +
        `\`kill -USR1 ${watchdogs.join(' ')}\` (it then exits without touching mongod), or pass --force.`,
    );
    return 3;
  }
  const stateDir = values['state-dir'] ?? (values.dbpath === undefined ? undefined : workDirs(values.dbpath).stateDir);
  // Held while we unlock, as a proxy holds it while it runs: a running proxy releases its
  // own lock, and a proxy must not start and recover from the record while we change it.
  let claim: StateDirClaim | undefined;
  if (stateDir !== undefined) {
    try {
      claim = await claimStateDir(path.resolve(stateDir));
    } catch (err) {
      out(`${(err as Error).message.replace(/ Give each proxy its own --state-dir\.$/, '')} That proxy releases its own lock: stop it (it unlocks on its way out).`);
      return 3;
    }
  }
  const record = stateDir === undefined ? undefined : await readRecord(path.resolve(stateDir));
  const conn = await AdminConnection.open(uri).catch(async (err: unknown) => {
    await claim?.release();
    throw err;
  });
  try {
    if (!(await isFsyncLocked(conn.admin))) {
      out('mongod is not fsync-locked: nothing to release.');
      return 0;
    }
    for (let first = true; ; first = false) {
      const outcome = await releaseOneLock(conn);
      out(describe(outcome));
      // The first lock released is the backup's, when its record says one is owed.
      if (first && outcome.kind === 'released' && record !== undefined && lockMayBeHeld(record.state)) {
        await recordReleased(record, outcome.lockCount);
        out(`Recorded in ${record.file} that backup ${record.state.backupId}'s fsync lock is released: the proxy's next start sends no fsyncUnlock for it.`);
      }
      if (outcome.kind !== 'released' || outcome.lockCount === 0 || values.all !== true) break;
    }
    if (stateDir === undefined) {
      out('If a hotbackup proxy was killed while it held this lock, run this with its --state-dir (or --dbpath), so that its next start does not release one lock more.');
    }
    return 0;
  } finally {
    await conn.close();
    await claim?.release();
  }
}

interface Record {
  file: string;
  state: RunState;
}

/** The state file in `stateDir`, if any; a damaged one is refused (the proxy's start moves it aside). */
async function readRecord(stateDir: string): Promise<Record | undefined> {
  const file = stateFilePath(stateDir);
  const read = await readStateFile(file);
  if (read.kind === 'absent') return undefined;
  if (read.kind === 'invalid') throw new Error(`${file} cannot be used: ${read.reason}`);
  return { file, state: read.state };
}

/** The backup's lock marked released, with a clause for the interrupted backup's report. */
async function recordReleased(record: Record, lockCount: number): Promise<void> {
  const { state } = record;
  const lock = state.fsyncLock;
  if (lock === undefined) return;
  await writeStateFile(record.file, {
    ...state,
    fsyncLock: { ...lock, phase: 'unlocked' },
    cleanup: [...state.cleanup, `an operator released the backup's fsync lock with hotbackup unlock (lock count now ${lockCount})`],
  });
}
