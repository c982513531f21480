/**
 * `hotbackup serve --upstream <mongodb-uri> --port N [--bind ADDR] [--dbpath DIR]
 *  [--allow-write-blocking]`: the proxy in front of one mongod, answering
 * backupStart/backupStatus/backupThrottle itself.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { MongoClient } from 'mongodb';
import { ConnectionString } from 'mongodb-connection-string-url';
import { ProxyServer } from '../proxy/proxy_server.js';
import { BackupEngine } from '../backup/backup_engine.js';
import { BackupCommands } from '../commands/backup_commands.js';
import { createLogger, type LogFormat, type Logger } from '../log.js';
import { DEFAULT_SHUTDOWN_TIMEOUT_SECS, shutDownAndExit, untilSignal } from './shutdown.js';

const HELP = `Usage: hotbackup serve --upstream <mongodb-uri> [options]

A MongoDB wire-protocol proxy that forwards everything to mongod and answers
backupStart, backupStatus and backupThrottle itself (see docs/commands.md).

Options:
  --upstream URI            mongod to front, e.g. mongodb://127.0.0.1:27018   [required]
  --port N                  port to listen on                                   [27017]
  --bind ADDR               address to listen on                                [127.0.0.1]
  --dbpath DIR              mongod's dbpath; default: asked of mongod (getCmdLineOpts)
  --allow-write-blocking    allow fsyncLock for the whole copy where mongod has no $backupCursor
  --concurrency N           parallel copy workers                               [4]
  --backup-cursor-keepalive-ms N  ms between keepalive getMores on $backupCursor [30000]
  --shutdown-timeout SECS   on SIGTERM/SIGINT, how long the cleanup may take    [20]
                            (a second signal exits at once)
  --log-format json|pretty|auto                                                 [auto]
`;

export interface ProxyRuntimeOptions {
  upstreamUri: string;
  port: number;
  bind: string;
  dbpath: string | undefined;
  allowWriteBlocking: boolean;
  concurrency: number;
  /** Milliseconds between the backup cursor's keepalives; default 30 s. */
  backupCursorKeepaliveMs?: number;
}

function splitHostPort(hostPort: string): { host: string; port: string } {
  const match = /^\[([^\]]+)\](?::(\d+))?$/.exec(hostPort) ?? /^([^:]+)(?::(\d+))?$/.exec(hostPort);
  if (match === null) throw new Error(`cannot read host and port from '${hostPort}'`);
  return { host: match[1] ?? '127.0.0.1', port: match[2] ?? '27017' };
}

/** mongod knows its dbpath; a relative one cannot be resolved from here, so it must be given. */
export async function discoverDbpath(upstreamUri: string): Promise<string> {
  const client = new MongoClient(upstreamUri, { directConnection: true, serverSelectionTimeoutMS: 10_000 });
  try {
    const opts = await client.db('admin').command({ getCmdLineOpts: 1 });
    const dbpath = (opts['parsed'] as { storage?: { dbPath?: unknown } } | undefined)?.storage?.dbPath;
    if (typeof dbpath !== 'string' || !path.isAbsolute(dbpath)) {
      throw new Error(`mongod reports dbPath ${JSON.stringify(dbpath)}; pass the absolute path with --dbpath`);
    }
    return dbpath;
  } finally {
    await client.close();
  }
}

export interface RunningProxy {
  proxy: ProxyServer;
  engine: BackupEngine;
  close(): Promise<void>;
  /** What is still running, for the log of a shutdown that ran out of time. */
  describeLeft(): Record<string, unknown>;
}

/** Starts the engine and the proxy; the caller owns shutdown. */
export async function startProxy(options: ProxyRuntimeOptions, log: Logger): Promise<RunningProxy> {
  const upstream = new ConnectionString(options.upstreamUri);
  const [first] = upstream.hosts;
  if (first === undefined) throw new Error(`--upstream has no host: ${options.upstreamUri}`);
  // A sidecar fronts one mongod: the first host of the URI.
  const { host, port } = splitHostPort(first);
  const dbpath = options.dbpath ?? (await discoverDbpath(options.upstreamUri));
  const engine = new BackupEngine({
    dbpath,
    upstreamUri: options.upstreamUri,
    allowWriteBlocking: options.allowWriteBlocking,
    concurrency: options.concurrency,
    backupCursorKeepaliveMs: options.backupCursorKeepaliveMs,
    log: log.child({ component: 'backup' }),
  });
  const proxy = await ProxyServer.start({
    upstream: { host, port: Number(port) },
    port: options.port,
    bind: options.bind,
    interceptor: new BackupCommands(engine),
    log: log.child({ component: 'proxy' }),
  });
  log.info({ dbpath, allowWriteBlocking: options.allowWriteBlocking, concurrency: options.concurrency }, 'backup commands ready');
  return {
    proxy,
    engine,
    async close() {
      // The engine first: a running backup releases its cursor or fsync lock.
      await engine.close();
      await proxy.close();
    },
    describeLeft() {
      const running = engine.status().running;
      return {
        backup: running === undefined ? null : { backupId: running.backupId, strategy: running.strategy, phase: running.phase },
      };
    },
  };
}

export function parseShutdownTimeout(value: string | undefined): number {
  const secs = Number(value ?? DEFAULT_SHUTDOWN_TIMEOUT_SECS);
  if (!Number.isFinite(secs) || secs < 0) throw new Error(`--shutdown-timeout must be a non-negative number of seconds, got '${value}'`);
  return secs;
}

export async function runServe(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      upstream: { type: 'string' },
      port: { type: 'string', default: '27017' },
      bind: { type: 'string', default: '127.0.0.1' },
      dbpath: { type: 'string' },
      'allow-write-blocking': { type: 'boolean', default: false },
      concurrency: { type: 'string', default: '4' },
      'backup-cursor-keepalive-ms': { type: 'string', default: '30000' },
      'shutdown-timeout': { type: 'string', default: String(DEFAULT_SHUTDOWN_TIMEOUT_SECS) },
      'log-format': { type: 'string', default: 'auto' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help === true) {
    process.stdout.write(HELP);
    return 0;
  }
  if (values.upstream === undefined) throw new Error('--upstream is required (e.g. --upstream mongodb://127.0.0.1:27018)');
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be 0-65535, got '${values.port}'`);
  const concurrency = Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) throw new Error('--concurrency must be 1-64');
  const keepaliveMs = Number(values['backup-cursor-keepalive-ms']);
  if (!Number.isInteger(keepaliveMs) || keepaliveMs < 1) throw new Error('--backup-cursor-keepalive-ms must be a positive integer');
  const shutdownTimeoutSecs = parseShutdownTimeout(values['shutdown-timeout']);
  const log = createLogger({ name: 'hotbackup', format: values['log-format'] as LogFormat });
  const running = await startProxy(
    {
      upstreamUri: values.upstream,
      port,
      bind: values.bind ?? '127.0.0.1',
      dbpath: values.dbpath === undefined ? undefined : path.resolve(values.dbpath),
      allowWriteBlocking: values['allow-write-blocking'] === true,
      concurrency,
      backupCursorKeepaliveMs: keepaliveMs,
    },
    log,
  );
  await untilSignal(log);
  return shutDownAndExit({ cleanup: () => running.close(), timeoutSecs: shutdownTimeoutSecs, describeLeft: () => running.describeLeft(), log });
}
