/** `hotbackup dev-server --dbpath DIR --port N [--bind ADDR] ...` */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DevServer, type DevServerOptions } from '../devserver/dev_server.js';
import { createLogger, type LogFormat, type Logger } from '../log.js';
import { loadServerTls, TLS_MODES, type ServerTlsFiles, type TlsMode } from '../tls/server_tls.js';

const HELP = `Usage: hotbackup dev-server --dbpath DIR [options]

A mongod-compatible server over real WiredTiger files (see docs/devserver.md).

Options:
  --dbpath DIR                 data directory (created if missing)      [required]
  --port N                     TCP port; 0 picks a free one              [27017]
  --bind ADDR                  address to listen on                      [127.0.0.1]
  --checkpoint-interval SECS   seconds between checkpoints; 0 disables   [60]
  --no-backup-cursor           answer $backupCursor as MongoDB Community does
  --auth                       require authentication (SCRAM-SHA-256, SCRAM-SHA-1) and
                               check each command against the user's roles, as mongod's
                               --auth; the first user is created over localhost
  --fsync-lock-delay-ms N      a first {fsync: 1, lock: true} answers only after N ms of
                               flushing, as mongod's on a large dataset               [0]
  --wiredTigerEngineConfigString STR
                               appended to wiredtiger_open's configuration, as mongod's
                               option, e.g. 'log=(file_max=2MB)' for small journal files
  --directoryperdb             each database's files in a directory of its own, as
                               mongod's option; remembered in storage.bson
  --wiredTigerDirectoryForIndexes
                               collections' and indexes' files in collection/ and index/,
                               as mongod's option; remembered in storage.bson
  --tls-mode disabled|allow|require
                               TLS towards clients, as mongod's --tlsMode (allowTLS and
                               preferTLS are allow here)                [disabled]
                               The other --tls-* flags need it, as mongod's need --tlsMode
  --tls-cert-key-file FILE     certificate and private key in one PEM, as mongod's
                               --tlsCertificateKeyFile
  --tls-ca-file FILE           CA that client certificates must chain to, as mongod's
                               --tlsCAFile; clients must then present one
  --tls-allow-connections-without-certificates
                               as mongod's option: with --tls-ca-file, a client without
                               a certificate is let in (an invalid one is still refused)
  --log-format json|pretty|auto                                          [auto]
  --exit-on-stdin-close        shut down cleanly when stdin ends: how \`hotbackup start\`
                               ties the dev server's life to its own
`;

export interface ParsedDevServerArgs {
  options: DevServerOptions;
  /** Read and checked by runDevServer before the server starts. */
  tls: ServerTlsFiles;
  logFormat: LogFormat;
  exitOnStdinClose: boolean;
}

export function parseDevServerArgs(args: string[]): ParsedDevServerArgs | 'help' {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      dbpath: { type: 'string' },
      port: { type: 'string', default: '27017' },
      bind: { type: 'string', default: '127.0.0.1' },
      'checkpoint-interval': { type: 'string', default: '60' },
      'no-backup-cursor': { type: 'boolean', default: false },
      auth: { type: 'boolean', default: false },
      'fsync-lock-delay-ms': { type: 'string', default: '0' },
      wiredTigerEngineConfigString: { type: 'string' },
      directoryperdb: { type: 'boolean', default: false },
      wiredTigerDirectoryForIndexes: { type: 'boolean', default: false },
      'log-format': { type: 'string', default: 'auto' },
      'exit-on-stdin-close': { type: 'boolean', default: false },
      'tls-mode': { type: 'string' },
      'tls-cert-key-file': { type: 'string' },
      'tls-ca-file': { type: 'string' },
      'tls-allow-connections-without-certificates': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help === true) return 'help';
  if (values.dbpath === undefined) throw new Error('--dbpath is required');
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be 0-65535, got '${values.port}'`);
  const checkpointIntervalSecs = Number(values['checkpoint-interval']);
  if (!Number.isFinite(checkpointIntervalSecs) || checkpointIntervalSecs < 0) {
    throw new Error(`--checkpoint-interval must be a non-negative number of seconds`);
  }
  const fsyncLockDelayMs = Number(values['fsync-lock-delay-ms']);
  if (!Number.isInteger(fsyncLockDelayMs) || fsyncLockDelayMs < 0) throw new Error('--fsync-lock-delay-ms must be a non-negative number of milliseconds');
  const logFormat = values['log-format'] as LogFormat;
  if (!['json', 'pretty', 'auto'].includes(logFormat)) throw new Error(`--log-format must be json, pretty or auto`);
  const certKeyFile = values['tls-cert-key-file'];
  const caFile = values['tls-ca-file'];
  const tlsMode = values['tls-mode'] ?? 'disabled';
  if (!(TLS_MODES as readonly string[]).includes(tlsMode)) throw new Error(`--tls-mode must be ${TLS_MODES.join(', ')}, got '${tlsMode}'`);
  const allowWithoutCertificates = values['tls-allow-connections-without-certificates'] === true;
  if (tlsMode === 'disabled' && (certKeyFile !== undefined || caFile !== undefined || allowWithoutCertificates)) {
    // mongod refuses to start so, whether tlsMode is absent or disabled, rather than
    // guess a mode (src/mongo/util/net/ssl_options_server.cpp, storeSSLServerOptions).
    throw new Error('need to enable TLS via the --tls-mode flag when using TLS configuration parameters');
  }
  return {
    tls: {
      mode: tlsMode as TlsMode,
      ...(certKeyFile === undefined ? {} : { certFile: path.resolve(certKeyFile) }),
      ...(caFile === undefined ? {} : { caFile: path.resolve(caFile) }),
      allowConnectionsWithoutCertificates: allowWithoutCertificates,
      flags: { cert: '--tls-cert-key-file', ca: '--tls-ca-file', mode: '--tls-mode' },
    },
    options: {
      dbpath: path.resolve(values.dbpath),
      port,
      bind: values.bind ?? '127.0.0.1',
      checkpointIntervalSecs,
      backupCursor: values['no-backup-cursor'] !== true,
      ...(values.auth === true ? { auth: true } : {}),
      ...(fsyncLockDelayMs === 0 ? {} : { fsyncLockDelayMs }),
      ...(values.wiredTigerEngineConfigString === undefined ? {} : { wiredTigerEngineConfigString: values.wiredTigerEngineConfigString }),
      ...(values.directoryperdb === true ? { directoryPerDB: true } : {}),
      ...(values.wiredTigerDirectoryForIndexes === true ? { directoryForIndexes: true } : {}),
      argv: ['hotbackup', 'dev-server', ...args],
    },
    logFormat,
    exitOnStdinClose: values['exit-on-stdin-close'] === true,
  };
}

/**
 * Resolves once `stdin` ends, fails or closes. `hotbackup start` runs the dev server with
 * a pipe as its stdin and never writes to it: the write end lives only in the parent
 * (libuv opens it close-on-exec, so no other child inherits it), and the kernel closes
 * it when the parent dies however it dies, SIGKILL and the OOM killer included. So
 * end-of-file here means the parent is gone, at once and with no polling. A watched
 * parent pid would need polling and can be reused; PR_SET_PDEATHSIG is Linux-only and
 * out of Node's reach; an IPC channel is the same pipe with a protocol we do not need.
 */
function whenStdinCloses(stdin: NodeJS.ReadStream): Promise<void> {
  return new Promise((resolve) => {
    stdin.on('data', () => undefined);
    stdin.once('end', resolve);
    stdin.once('close', resolve);
    stdin.once('error', () => resolve());
    stdin.resume();
  });
}

/**
 * Runs until SIGINT, SIGTERM, the `shutdown` command, or (with `exitOnStdinClose`) the
 * end of stdin; always closes WiredTiger cleanly.
 */
export async function serveUntilStopped(options: DevServerOptions, log: Logger, exitOnStdinClose = false): Promise<number> {
  // Watched from before the (synchronous, possibly long) WiredTiger open: a parent that
  // died meanwhile is seen as soon as the server is up.
  const parentGone = exitOnStdinClose ? whenStdinCloses(process.stdin) : undefined;
  try {
    const server = await DevServer.start(options, log);
    const closed = new Promise<void>((resolve) => server.once('closed', resolve));
    const stop = (signal: string) => {
      log.info({ signal }, 'signal received');
      void server.close();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    let stopped = false;
    void parentGone?.then(() => {
      if (stopped) return;
      // Nobody reads our output any more: a write failing with EPIPE must not end the
      // process before WiredTiger is closed.
      process.stdout.on('error', () => undefined);
      process.stderr.on('error', () => undefined);
      log.info('stdin closed: the parent process is gone; shutting down');
      void server.close();
    });
    await closed;
    stopped = true;
  } finally {
    // The watched stdin would otherwise keep the event loop, and the process, alive,
    // after a clean stop and after a failed start alike.
    if (exitOnStdinClose) process.stdin.destroy();
  }
  return 0;
}

export async function runDevServer(args: string[]): Promise<number> {
  const parsed = parseDevServerArgs(args);
  if (parsed === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  const tls = await loadServerTls(parsed.tls);
  const log = createLogger({ name: 'dev-server', format: parsed.logFormat });
  return serveUntilStopped({ ...parsed.options, tls }, log, parsed.exitOnStdinClose);
}
