/**
 * `npm start`: the proxy in front of the embedded dev server, whose dbpath is a
 * persistent, git-ignored directory inside the project. Prints the mongosh line.
 * It takes the same proxy flags as `serve`; the dev server is its upstream.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DevServer } from '../devserver/dev_server.js';
import { createLogger } from '../log.js';
import { parseProxyFlags, PROXY_FLAGS_HELP } from './proxy_flags.js';
import { startProxyApp } from './proxy_app.js';
import { shutDownAndExit, untilSignal } from './shutdown.js';

const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const DEFAULT_DBPATH = path.join(PROJECT_ROOT, 'data', 'devserver');

const HELP = `Usage: hotbackup start [options]

The proxy in front of the embedded dev server (what npm start runs).

Options:
  --dbpath DIR              the dev server's data directory   [${path.relative(process.cwd(), DEFAULT_DBPATH) || '.'}]
${PROXY_FLAGS_HELP}
--port defaults to $HOTBACKUP_PORT when set.
`;

/** Where a local mongosh reaches a proxy bound to `bind`. */
function connectHost(bind: string): string {
  if (bind === '0.0.0.0' || bind === '::') return '127.0.0.1';
  return bind.includes(':') ? `[${bind}]` : bind;
}

export async function runStart(args: string[]): Promise<number> {
  const parsed = parseProxyFlags(args, { own: { dbpath: DEFAULT_DBPATH }, defaultPort: process.env['HOTBACKUP_PORT'] });
  if (parsed.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const { proxy: flags, own } = parsed;
  const log = createLogger({ name: 'hotbackup', format: flags.logFormat });
  const dbpath = path.resolve(own['dbpath'] ?? DEFAULT_DBPATH);
  const devServer = await DevServer.start(
    { dbpath, port: 0, bind: '127.0.0.1', checkpointIntervalSecs: 60, backupCursor: true, argv: ['hotbackup', 'start', ...args] },
    log.child({ component: 'dev-server' }),
  );
  const upstreamUri = `mongodb://127.0.0.1:${devServer.address.port}/?directConnection=true`;
  const app = await startProxyApp({ ...flags, upstreamUri, dbpath, log }).catch(async (err: unknown) => {
    // The proxy's failure is what the user must see, even if closing the server fails too.
    await devServer.close().catch((closeErr: unknown) => log.error({ err: closeErr }, 'closing the dev server failed'));
    throw err;
  });
  const uri = `mongodb://${connectHost(flags.bind)}:${app.proxy.address.port}/?directConnection=true`;
  process.stdout.write(
    `\nThe proxy is in front of the dev server (dbpath ${dbpath}).\n` +
      `Connect with:  npx mongosh "${uri}"\n` +
      `Then try:      db.adminCommand({backupStart: "/tmp/hotbackup-demo"})\n\n`,
  );
  await Promise.race([untilSignal(log), new Promise<void>((resolve) => devServer.once('closed', resolve))]);
  return shutDownAndExit({
    // The proxy first, so a running backup releases its cursor while the server is still there.
    cleanup: async () => {
      await app.close();
      await devServer.close();
    },
    timeoutSecs: flags.shutdownTimeoutSecs,
    describeLeft: () => app.describeLeft(),
    log,
  });
}
