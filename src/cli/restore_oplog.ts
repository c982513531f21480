/**
 * `restore --oplog DIR --until TS`, after the files are restored: a server started on the
 * restored dbpath as a standalone (src/cli/replay_server.ts), the oplog replayed from the
 * backup's own last entry (the newest in its `local.oplog.rs`) up to TS, and the server
 * stopped cleanly, so that its last checkpoint holds the replayed writes.
 *
 * Which server: the dev server by default, for the dev server's own backups, and only when
 * the dbpath's files were written by the dev server's own WiredTiger (checked before
 * anything starts: an older WiredTiger must never open, let alone write, a newer one's
 * files); with `--mongod PATH`, that mongod, in two starts, as Percona Backup for
 * MongoDB's physical restore with point in time does (pbm/restore/physical.go,
 * `recoverStandalone`, then `replayOplog`):
 *  1. with `recoverFromOplogAsStandalone=true` and `takeUnstableCheckpointOnShutdown=true`:
 *     mongod applies the copy's own oplog from its checkpoint's timestamp to the oplog's
 *     end, and on shutdown takes a checkpoint holding all of it
 *     (src/mongo/db/repl/replication_recovery.cpp, `recoverFromOplogAsStandalone`). It is
 *     read-only after that recovery ("Setting mongod to readOnly mode as a result of
 *     specifying 'recoverFromOplogAsStandalone'", same file), so it cannot take applyOps;
 *  2. as a plain standalone (`disableLogicalSessionCacheRefresh=true`, as PBM's replay, so
 *     that it writes no sessions of its own into the restore): it now holds every entry of
 *     its oplog, so the replay starts after the newest one, which a standalone's writes
 *     do not move (a standalone writes no oplog).
 */
import path from 'node:path';
import { MongoClient, MongoServerError, type Document } from 'mongodb';
import { compareOplogTs, formatOplogTs, type OplogTs } from '../oplog/oplog_ts.js';
import { EXIT_INTERRUPTED } from './job_flags.js';
import { startMongod } from './mongod_process.js';
import { replayToServer } from './replay.js';
import { startDevServerForReplay, STOP_GRACE_MS, type ReplayServer } from './replay_server.js';
import { DEV_SERVER_WIREDTIGER, devServerCanOpen, formatWiredTigerVersion, newerWiredTigerFiles, readWiredTigerVersion } from './wiredtiger_version.js';

/** restore's exit code when the files are restored but the replay was refused or stopped. */
export const EXIT_REPLAY_NOT_DONE = 5;
const NOT_IMPLEMENTED = 238;
/** The first start's parameters: how a replica-set member's physical backup is brought forward as a standalone. */
export const RECOVER_PARAMETERS: readonly string[] = ['recoverFromOplogAsStandalone=true', 'takeUnstableCheckpointOnShutdown=true'];
/** The second start's: PBM's `replayOplog` starts mongod with this. */
export const REPLAY_PARAMETERS: readonly string[] = ['disableLogicalSessionCacheRefresh=true'];

export interface RestoreReplayRequest {
  /** The backup restored, for the command that finishes the job. */
  backup: string;
  dbpath: string;
  oplogDir: string;
  until: OplogTs;
  /** `--mongod`: the mongod binary to replay through; undefined for the dev server. */
  mongod: string | undefined;
  /** How long mongod may take to answer after it starts (its startup recovery included). */
  mongodStartTimeoutMs: number;
  /** restore's abort on SIGINT/SIGTERM: stops the server however far it got, and restore exits 130. */
  signal?: AbortSignal;
}

/** The newest entry of local.oplog.rs, by natural order (the dev server may only sort by ts). */
async function lastOplogEntry(client: MongoClient): Promise<Document | null> {
  const oplog = client.db('local').collection('oplog.rs');
  try {
    return await oplog.findOne({}, { sort: { $natural: -1 } });
  } catch (err) {
    if (!(err instanceof MongoServerError) || err.code !== NOT_IMPLEMENTED) throw err;
    return oplog.findOne({}, { sort: { ts: -1 } });
  }
}

/** An entry's ts as the driver decoded it (a bson Timestamp, whose t and i are its seconds and increment). */
function toOplogTs(value: unknown): OplogTs | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const { t, i } = value as { t?: unknown; i?: unknown };
  return typeof t === 'number' && typeof i === 'number' ? { secs: t, inc: i } : undefined;
}

/** Where mongod's output goes: beside the dbpath, never in it. */
export function mongodLogFile(dbpath: string): string {
  return path.join(path.dirname(path.resolve(dbpath)), `${path.basename(path.resolve(dbpath))}.restore-mongod.log`);
}

function finishCommand(request: RestoreReplayRequest, mongod: string | undefined): string {
  return `hotbackup restore ${request.backup} --to ${request.dbpath} --force --oplog ${request.oplogDir} --until ${formatOplogTs(request.until)}${mongod === undefined ? '' : ` --mongod ${mongod}`}`;
}

/** Refuses, before anything starts, a dbpath the dev server's WiredTiger did not write. */
async function devServerRefusal(request: RestoreReplayRequest): Promise<string | undefined> {
  const version = await readWiredTigerVersion(request.dbpath);
  const newerFiles = await newerWiredTigerFiles(request.dbpath);
  if (version !== undefined && devServerCanOpen(version) && newerFiles.length === 0) return undefined;
  const writer =
    newerFiles.length > 0
      ? `a WiredTiger newer than the dev server's ${formatWiredTigerVersion(DEV_SERVER_WIREDTIGER)} (it holds ${newerFiles.join(', ')}, which only WiredTiger 10 and later write: mongod 4.4 and later)`
      : version === undefined
        ? 'a WiredTiger whose version its WiredTiger and WiredTiger.turtle files do not name'
        : `WiredTiger ${formatWiredTigerVersion(version)} (mongod)`;
  return `this backup was written by ${writer}, which the dev server cannot open safely: pass --mongod <path to the mongod that wrote it>. The files are restored and nothing was started; finish the job with \`${finishCommand(request, '<path to mongod>')}\``;
}

async function startReplayServer(request: RestoreReplayRequest): Promise<ReplayServer> {
  if (request.mongod === undefined) return startDevServerForReplay(request.dbpath, request.signal);
  const logFile = mongodLogFile(request.dbpath);
  const options = { binary: request.mongod, dbpath: request.dbpath, logFile, startTimeoutMs: request.mongodStartTimeoutMs, stopGraceMs: STOP_GRACE_MS, signal: request.signal };
  process.stdout.write(`Recovering ${request.dbpath} with mongod ${request.mongod} (recoverFromOplogAsStandalone: the backup's own oplog past its checkpoint); its log goes to ${logFile}.\n`);
  const recovering = await startMongod({ ...options, setParameters: RECOVER_PARAMETERS });
  await stopOnAbort(recovering, request.signal, () => recovering.shutdown());
  request.signal?.throwIfAborted();
  return startMongod({ ...options, setParameters: REPLAY_PARAMETERS });
}

/** Runs `work` while `server` runs; a signal meanwhile kills the server (SIGTERM, SIGKILL after the grace), which ends `work`. */
async function stopOnAbort<T>(server: ReplayServer, signal: AbortSignal | undefined, work: () => Promise<T>): Promise<T> {
  let killing: Promise<void> | undefined;
  const onAbort = () => (killing = server.kill());
  if (signal?.aborted === true) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await work();
  } finally {
    signal?.removeEventListener('abort', onAbort);
    await killing;
  }
}

export async function replayOntoRestore(request: RestoreReplayRequest): Promise<number> {
  const fail = (message: string): number => {
    process.stderr.write(`hotbackup restore: ${message}\n`);
    return EXIT_REPLAY_NOT_DONE;
  };
  if (request.mongod === undefined) {
    const refusal = await devServerRefusal(request);
    if (refusal !== undefined) return fail(refusal);
  }
  const aborted = (): boolean => request.signal?.aborted === true;
  const interrupted = (): number => {
    process.stderr.write(
      `hotbackup restore: ${(request.signal?.reason as Error).message}: ${request.dbpath} holds the restored backup, but not the oplog up to --until; finish the job with \`${finishCommand(request, request.mongod)}\`\n`,
    );
    return EXIT_INTERRUPTED;
  };
  let server: ReplayServer;
  try {
    server = await startReplayServer(request);
  } catch (err) {
    if (aborted()) return interrupted();
    return fail(`cannot replay onto the restored ${request.dbpath}: ${(err as Error).message}`);
  }
  let stopped = false;
  try {
    return await stopOnAbort(server, request.signal, async () => {
      const code = await replayThrough(server, request, fail);
      stopped = true;
      if (aborted()) return interrupted();
      try {
        await server.shutdown();
      } catch (err) {
        if (aborted()) return interrupted();
        return fail(`${code === 0 ? 'the replay is applied' : 'the replay stopped'}, but ${server.name} did not stop cleanly: ${(err as Error).message}`);
      }
      // A signal during a clean stop that still exited 0: the replay is in its checkpoint.
      return code;
    });
  } catch (err) {
    if (aborted()) return interrupted();
    return fail(`cannot replay onto the restored ${request.dbpath}: ${(err as Error).message}`);
  } finally {
    if (!stopped) await server.kill();
  }
}

/** The replay proper, the server running: returns restore's exit code. */
async function replayThrough(server: ReplayServer, request: RestoreReplayRequest, fail: (message: string) => number): Promise<number> {
  const client = new MongoClient(server.uri);
  let last: Document | null;
  try {
    last = await lastOplogEntry(client);
  } finally {
    await client.close();
  }
  const from = toOplogTs(last?.['ts']);
  let code: number;
  if (from === undefined) {
    code = fail(`the backup holds no oplog (local.oplog.rs is empty or missing): it was not taken from a replica-set member, so there is no point to replay from; ${request.dbpath} holds the backup as it was`);
  } else if (compareOplogTs(request.until, from) < 0) {
    code = fail(`the backup already holds entries up to ts ${formatOplogTs(from)}, after --until ${formatOplogTs(request.until)}: a restore cannot go back in time; restore an older backup`);
  } else {
    process.stdout.write(`Replaying ${request.oplogDir} from the backup's last oplog entry, ts ${formatOplogTs(from)}, up to ${formatOplogTs(request.until)}, through ${server.name}.\n`);
    code = await replayToServer({ dir: request.oplogDir, uri: server.uri, from, until: request.until, command: 'restore', signal: request.signal });
    if (code !== 0 && request.signal?.aborted !== true) {
      process.stderr.write(
        `hotbackup restore: the files are restored, the replay is not complete: finish it with \`hotbackup replay ${request.oplogDir} --to <uri> --from ${formatOplogTs(from)} --until ${formatOplogTs(request.until)}\` against ${request.mongod === undefined ? 'the dev server' : 'a standalone mongod'} on ${request.dbpath}\n`,
      );
      code = EXIT_REPLAY_NOT_DONE;
    }
  }
  return code;
}
