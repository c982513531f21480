/** A dev server running as a single-node replica set (`--replSet rs0`), initiated, with its oplog. */
import { MongoClient, MongoServerError } from 'mongodb';
import { startDevServer, type RunningDevServer, type StartOptions } from './dev_server.js';

export interface ReplStartOptions extends StartOptions {
  /** --oplogSize, in whole megabytes, as mongod's. */
  oplogSizeMB?: number;
}

/** mongod's codes for "no such command" and "already initialized". */
const COMMAND_NOT_FOUND = 59;
const ALREADY_INITIALIZED = 23;

export async function startReplDevServer(options: ReplStartOptions = {}): Promise<RunningDevServer> {
  const { oplogSizeMB, ...rest } = options;
  const args = ['--replSet', 'rs0', ...(oplogSizeMB === undefined ? [] : ['--oplogSize', String(oplogSizeMB)]), ...(options.args ?? [])];
  const server = await startDevServer({ ...rest, args });
  const client = new MongoClient(server.uri);
  try {
    // A server without replSetInitiate yet creates its oplog at start.
    await client.db('admin').command({ replSetInitiate: {} });
  } catch (err) {
    if (!(err instanceof MongoServerError) || (err.code !== COMMAND_NOT_FOUND && err.code !== ALREADY_INITIALIZED)) {
      await server.stop();
      server.cleanup();
      throw err;
    }
  } finally {
    await client.close();
  }
  return server;
}
