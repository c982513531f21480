/**
 * `restore --oplog DIR --until TS`, after the files are restored: the dev server started
 * on the restored dbpath as a standalone (this CLI's own `dev-server` subcommand, as a
 * child process: src/cli/dev_server_child.ts), the oplog replayed from the backup's own
 * last entry (the newest in its `local.oplog.rs`) up to TS, and the server stopped
 * cleanly, so that its last checkpoint holds the replayed writes.
 */
import { MongoClient, MongoServerError, type Document } from 'mongodb';
import { createLogger } from '../log.js';
import { compareOplogTs, formatOplogTs, type OplogTs } from '../oplog/oplog_ts.js';
import { spawnDevServerChild } from './dev_server_child.js';
import { replayToServer } from './replay.js';

/** restore's exit code when the files are restored but the replay was refused or stopped. */
export const EXIT_REPLAY_NOT_DONE = 5;
/** How long the dev server may take to close WiredTiger (a final checkpoint) before it is killed. */
const STOP_GRACE_MS = 120_000;
const NOT_IMPLEMENTED = 238;

export interface RestoreReplayRequest {
  dbpath: string;
  oplogDir: string;
  until: OplogTs;
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

export async function replayOntoRestore(request: RestoreReplayRequest): Promise<number> {
  const fail = (message: string): number => {
    process.stderr.write(`hotbackup restore: ${message}\n`);
    return EXIT_REPLAY_NOT_DONE;
  };
  const log = createLogger({ name: 'hotbackup-restore', destination: process.stderr });
  const server = spawnDevServerChild({ dbpath: request.dbpath, checkpointIntervalSecs: 60, relay: () => undefined, log });
  let code: number;
  try {
    const port = await server.ready;
    const uri = `mongodb://127.0.0.1:${port}/?directConnection=true`;
    const client = new MongoClient(uri);
    let last: Document | null;
    try {
      last = await lastOplogEntry(client);
    } finally {
      await client.close();
    }
    const from = toOplogTs(last?.['ts']);
    if (from === undefined) {
      code = fail(`the backup holds no oplog (local.oplog.rs is empty or missing): it was not taken from a replica-set member, so there is no point to replay from; ${request.dbpath} holds the backup as it was`);
    } else if (compareOplogTs(request.until, from) < 0) {
      code = fail(`the backup already holds entries up to ts ${formatOplogTs(from)}, after --until ${formatOplogTs(request.until)}: a restore cannot go back in time; restore an older backup`);
    } else {
      process.stdout.write(`Replaying ${request.oplogDir} from the backup's last oplog entry, ts ${formatOplogTs(from)}, up to ${formatOplogTs(request.until)}.\n`);
      code = await replayToServer({ dir: request.oplogDir, uri, from, until: request.until, command: 'restore' });
      if (code !== 0) {
        process.stderr.write(
          `hotbackup restore: the files are restored, the replay is not complete: finish it with \`hotbackup replay ${request.oplogDir} --to <uri> --from ${formatOplogTs(from)} --until ${formatOplogTs(request.until)}\` against a server on ${request.dbpath}\n`,
        );
        code = EXIT_REPLAY_NOT_DONE;
      }
    }
  } catch (err) {
    code = fail(`cannot replay onto the restored ${request.dbpath}: ${(err as Error).message}`);
  } finally {
    const exit = await server.stop(STOP_GRACE_MS);
    if (exit.code !== 0) log.warn({ exit }, 'the dev server did not exit cleanly');
  }
  return code;
}
