/**
 * The dev server as an initiated single-node replica set (`--replSet rs0`), for tests
 * that need a primary with an oplog: started, initiated with mongod's default config
 * (this node at 127.0.0.1:<port>), and handed back with a `replicaSet=` URI, so the
 * driver discovers the set as it would a real one.
 */
import { MongoClient } from 'mongodb';
import { startDevServer, type RunningDevServer, type StartOptions } from './dev_server.js';

export const REPLICA_SET_NAME = 'rs0';

export interface RunningReplicaSet {
  readonly server: RunningDevServer;
  /** `mongodb://127.0.0.1:<port>/?replicaSet=rs0`: no directConnection. */
  readonly uri: string;
}

/** The `replicaSet=` URI of a set member listening on `port`. */
export function replicaSetUri(port: number, name = REPLICA_SET_NAME): string {
  return `mongodb://127.0.0.1:${port}/?replicaSet=${name}`;
}

/** `args` are added after `--replSet rs0` (e.g. `['--oplogSize', '1']`); `initiate: false` leaves it uninitiated. */
export async function startReplicaSet(options: StartOptions & { initiate?: boolean } = {}): Promise<RunningReplicaSet> {
  const { initiate = true, ...start } = options;
  const server = await startDevServer({ ...start, args: ['--replSet', REPLICA_SET_NAME, ...(start.args ?? [])] });
  try {
    if (initiate) await initiateReplicaSet(server.port);
  } catch (err) {
    await server.stop();
    server.cleanup();
    throw err;
  }
  return { server, uri: replicaSetUri(server.port) };
}

/**
 * Starts the set again on the dbpath and port `server` had (stop it first): the config
 * names that port, and the set is primary at once, no initiate. The caller still owns
 * the first server's cleanup(), which removes the dbpath.
 */
export async function restartReplicaSet(server: RunningDevServer, args: string[] = []): Promise<RunningReplicaSet> {
  const again = await startDevServer({ dbpath: server.dbpath, port: server.port, args: ['--replSet', REPLICA_SET_NAME, ...args] });
  return { server: again, uri: replicaSetUri(again.port) };
}

/** `rs.initiate()` over a direct connection: the default config, this node alone. */
export async function initiateReplicaSet(port: number): Promise<Record<string, unknown>> {
  const client = new MongoClient(`mongodb://127.0.0.1:${port}/?directConnection=true`);
  try {
    return await client.db('admin').command({ replSetInitiate: {} });
  } finally {
    await client.close();
  }
}
