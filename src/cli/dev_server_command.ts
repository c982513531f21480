/** `hotbackup dev-server --dbpath DIR --port N [--bind ADDR] ...` */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DevServer, type DevServerOptions } from '../devserver/dev_server.js';
import { createLogger, type LogFormat, type Logger } from '../log.js';

const HELP = `Usage: hotbackup dev-server --dbpath DIR [options]

A mongod-compatible server over real WiredTiger files (see docs/devserver.md).

Options:
  --dbpath DIR                 data directory (created if missing)      [required]
  --port N                     TCP port; 0 picks a free one              [27017]
  --bind ADDR                  address to listen on                      [127.0.0.1]
  --checkpoint-interval SECS   seconds between checkpoints; 0 disables   [60]
  --no-backup-cursor           answer $backupCursor as MongoDB Community does
  --log-format json|pretty|auto                                          [auto]
`;

export interface ParsedDevServerArgs {
  options: DevServerOptions;
  logFormat: LogFormat;
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
      'log-format': { type: 'string', default: 'auto' },
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
  const logFormat = values['log-format'] as LogFormat;
  if (!['json', 'pretty', 'auto'].includes(logFormat)) throw new Error(`--log-format must be json, pretty or auto`);
  return {
    options: {
      dbpath: path.resolve(values.dbpath),
      port,
      bind: values.bind ?? '127.0.0.1',
      checkpointIntervalSecs,
      backupCursor: values['no-backup-cursor'] !== true,
      argv: ['hotbackup', 'dev-server', ...args],
    },
    logFormat,
  };
}

/** Runs until SIGINT, SIGTERM or the `shutdown` command; always closes WiredTiger cleanly. */
export async function serveUntilStopped(options: DevServerOptions, log: Logger): Promise<number> {
  const server = await DevServer.start(options, log);
  const closed = new Promise<void>((resolve) => server.once('closed', resolve));
  const stop = (signal: string) => {
    log.info({ signal }, 'signal received');
    void server.close();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await closed;
  return 0;
}

export async function runDevServer(args: string[]): Promise<number> {
  const parsed = parseDevServerArgs(args);
  if (parsed === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  const log = createLogger({ name: 'dev-server', format: parsed.logFormat });
  return serveUntilStopped(parsed.options, log);
}
