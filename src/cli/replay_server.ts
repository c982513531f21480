/**
 * The server `restore --oplog` replays through, behind one small interface: the dev server
 * (this CLI's own `dev-server`, for the dev server's own backups), or a real mongod named
 * by `--mongod` (src/cli/mongod_process.ts). Either is started on the restored dbpath as
 * a standalone on 127.0.0.1, and either is stopped before restore returns, however the
 * replay went.
 */
import { createLogger } from '../log.js';
import { spawnDevServerChild } from './dev_server_child.js';

export interface ReplayServer {
  /** For messages: `the dev server`, `mongod /usr/bin/mongod`. */
  readonly name: string;
  /** A direct connection to it, once it answers. */
  readonly uri: string;
  /** A clean stop that checkpoints; rejects when it did not exit cleanly (it is gone all the same). */
  shutdown(): Promise<void>;
  /** After a failure: SIGTERM, then SIGKILL after a grace period; resolves once it has exited, never rejects. */
  kill(): Promise<void>;
}

/** How long a server may take to close WiredTiger (a final checkpoint) before it is killed. */
export const STOP_GRACE_MS = 120_000;

/** Rejects with the signal's reason once it aborts (at once if it has). */
export function whenAborted(signal: AbortSignal | undefined): Promise<never> {
  return new Promise<never>((_resolve, reject) => {
    if (signal === undefined) return;
    if (signal.aborted) reject(signal.reason as Error);
    else signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
  });
}

/** A signal aborting while it starts stops it (SIGTERM, SIGKILL after the grace) and rejects with the signal's reason. */
export async function startDevServerForReplay(dbpath: string, signal?: AbortSignal): Promise<ReplayServer> {
  const log = createLogger({ name: 'hotbackup-restore', destination: process.stderr });
  const server = spawnDevServerChild({ dbpath, checkpointIntervalSecs: 60, relay: () => undefined, log });
  let port: number;
  try {
    port = await Promise.race([server.ready, whenAborted(signal)]);
  } catch (err) {
    await server.stop(STOP_GRACE_MS);
    throw err;
  }
  return {
    name: 'the dev server',
    uri: `mongodb://127.0.0.1:${port}/?directConnection=true`,
    async shutdown() {
      // SIGTERM is the dev server's clean stop: it closes WiredTiger, which checkpoints.
      const exit = await server.stop(STOP_GRACE_MS);
      if (exit.code !== 0) throw new Error(`the dev server exited ${exit.signal === null ? `with code ${exit.code}` : `on ${exit.signal}`}: ${server.stderrTail() || 'nothing on stderr'}`);
    },
    async kill() {
      await server.stop(STOP_GRACE_MS);
    },
  };
}
