/**
 * `npm start`: the proxy in front of the embedded dev server, whose dbpath is a
 * persistent, git-ignored directory inside the project. Prints the mongosh line.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DevServer } from '../devserver/dev_server.js';
import { startProxy } from './serve.js';
import { DEFAULT_SHUTDOWN_TIMEOUT_SECS, shutDownAndExit, untilSignal } from './shutdown.js';
import { createLogger } from '../log.js';

const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export async function runStart(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      port: { type: 'string', default: process.env['HOTBACKUP_PORT'] ?? '27017' },
      dbpath: { type: 'string', default: path.join(PROJECT_ROOT, 'data', 'devserver') },
    },
  });
  const log = createLogger({ name: 'hotbackup', format: 'auto' });
  const dbpath = path.resolve(values.dbpath ?? '');
  const devServer = await DevServer.start(
    { dbpath, port: 0, bind: '127.0.0.1', checkpointIntervalSecs: 60, backupCursor: true, argv: ['hotbackup', 'start', ...args] },
    log.child({ component: 'dev-server' }),
  );
  const upstreamUri = `mongodb://127.0.0.1:${devServer.address.port}/?directConnection=true`;
  const proxy = await startProxy(
    { upstreamUri, port: Number(values.port), bind: '127.0.0.1', dbpath, allowWriteBlocking: false, concurrency: 4 },
    log,
  );
  const uri = `mongodb://127.0.0.1:${proxy.proxy.address.port}/?directConnection=true`;
  process.stdout.write(
    `\nThe proxy is in front of the dev server (dbpath ${dbpath}).\n` +
      `Connect with:  npx mongosh "${uri}"\n` +
      `Then try:      db.adminCommand({backupStart: "/tmp/hotbackup-demo"})\n\n`,
  );
  await Promise.race([untilSignal(log), new Promise<void>((resolve) => devServer.once('closed', resolve))]);
  return shutDownAndExit({
    // The proxy first, so a running backup releases its cursor while the server is still there.
    cleanup: async () => {
      await proxy.close();
      await devServer.close();
    },
    timeoutSecs: DEFAULT_SHUTDOWN_TIMEOUT_SECS,
    describeLeft: () => proxy.describeLeft(),
    log,
  });
}
