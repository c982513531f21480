/**
 * Whether the server answering on a port is the one this process started there. restore
 * --mongod finds a free port and then starts mongod, which binds it only after its startup
 * recovery (src/cli/mongod_process.ts): meanwhile anything may take the port, and hello
 * alone cannot tell, so before any applyOps the server must say it runs on our dbpath
 * (getCmdLineOpts' `parsed.storage.dbPath`, as mongod echoes its --dbpath:
 * src/mongo/db/commands/generic_servers.cpp, CmdGetCmdLineOpts) with our child's pid
 * (serverStatus's `pid`: src/mongo/db/commands/server_status_servers.cpp).
 */
import path from 'node:path';
import type { MongoClient } from 'mongodb';

export interface ExpectedServer {
  /** The child's pid. */
  pid: number;
  /** The --dbpath it was started with. */
  dbpath: string;
}

/** Why the server `client` reaches is not the one expected, or undefined when it is. */
export async function serverIdentityRefusal(client: MongoClient, expected: ExpectedServer): Promise<string | undefined> {
  const admin = client.db('admin');
  const opts = await admin.command({ getCmdLineOpts: 1 });
  const dbPath = (opts['parsed'] as { storage?: { dbPath?: unknown } } | undefined)?.storage?.dbPath;
  const status = await admin.command({ serverStatus: 1, repl: 0, metrics: 0, locks: 0 });
  const pid = Number(status['pid']);
  const notOurs = 'the server answering is not the one started';
  if (typeof dbPath !== 'string' || path.resolve(dbPath) !== path.resolve(expected.dbpath)) {
    return `${notOurs}: it runs on ${typeof dbPath === 'string' ? `dbpath ${dbPath}` : 'no dbpath it names'} (pid ${pid}), not ${expected.dbpath}`;
  }
  if (pid !== expected.pid) return `${notOurs}: it is pid ${pid}, not ${expected.pid}`;
  return undefined;
}
