/**
 * `npm start`: the proxy in front of the dev server, whose dbpath is a persistent,
 * git-ignored directory inside the project. Prints the mongosh line. It takes the same
 * proxy flags as `serve`; the dev server is its upstream.
 *
 * The dev server runs as a child process (dev_server_child.ts), so its synchronous
 * WiredTiger calls never stall forwarding, and the proxy runs here in front of it.
 * Stopping is in that order too: the proxy first, so a running backup releases its
 * cursor while the server is still there, then the dev server (SIGTERM, and SIGKILL
 * once the shutdown timeout has passed). A dev server that dies on its own stops the
 * proxy, and `start` exits 1 saying so.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLogger, createLogRelay } from '../log.js';
import { parseProxyFlags, PROXY_FLAGS_HELP } from './proxy_flags.js';
import { startProxyApp } from './proxy_app.js';
import { shutDownAndExit, untilSignal } from './shutdown.js';
import { spawnDevServerChild, type ChildExit } from './dev_server_child.js';

const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const DEFAULT_DBPATH = path.join(PROJECT_ROOT, 'data', 'devserver');

const HELP = `Usage: hotbackup start [options]

The proxy in front of the dev server, which runs as its child process (what npm start runs).

Options:
  --dbpath DIR              the dev server's data directory   [${path.relative(process.cwd(), DEFAULT_DBPATH) || '.'}]
${PROXY_FLAGS_HELP}
--port defaults to $HOTBACKUP_PORT when set. The shutdown timeout covers the proxy
and then the dev server; a dev server still running when it ends is killed.
`;

/** Where a local mongosh reaches a proxy bound to `bind`. */
function connectHost(bind: string): string {
  if (bind === '0.0.0.0' || bind === '::') return '127.0.0.1';
  return bind.includes(':') ? `[${bind}]` : bind;
}

function describeExit({ code, signal }: ChildExit): string {
  return signal === null ? `with code ${code}` : `on ${signal}`;
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
  const graceMs = flags.shutdownTimeoutSecs * 1000;
  // From the first moment: a Ctrl-C while WiredTiger opens still stops the child.
  const signalled = untilSignal(log);
  const devServer = spawnDevServerChild({ dbpath, checkpointIntervalSecs: 60, relay: createLogRelay({ format: flags.logFormat }), log });
  const stopDevServer = async () => {
    const exit = await devServer.stop(graceMs);
    log.info({ devServerPid: devServer.pid, exit }, 'dev server exited');
  };
  const devServerLeft = () => (devServer.running() ? { devServer: { pid: devServer.pid } } : {});

  const startup = await Promise.race([devServer.ready.then((port) => ({ port })), signalled.then((signal) => ({ signal }))]);
  if ('signal' in startup) {
    return shutDownAndExit({ cleanup: stopDevServer, timeoutSecs: flags.shutdownTimeoutSecs, describeLeft: devServerLeft, log });
  }
  log.info({ devServerPid: devServer.pid, port: startup.port, dbpath }, 'dev server started as a child process');

  const upstreamUri = `mongodb://127.0.0.1:${startup.port}/?directConnection=true`;
  const app = await startProxyApp({ ...flags, upstreamUri, dbpath, log }).catch(async (err: unknown) => {
    // The proxy's failure is what the user must see, even if stopping the server fails too.
    await stopDevServer().catch((stopErr: unknown) => log.error({ err: stopErr }, 'stopping the dev server failed'));
    throw err;
  });
  const uri = `mongodb://${connectHost(flags.bind)}:${app.proxy.address.port}/?directConnection=true`;
  process.stdout.write(
    `\nThe proxy is in front of the dev server (pid ${devServer.pid}, dbpath ${dbpath}).\n` +
      `Connect with:  npx mongosh "${uri}"\n` +
      `Then try:      db.adminCommand({backupStart: "/tmp/hotbackup-demo"})\n\n`,
  );

  const reason = await Promise.race([signalled.then(() => 'signal' as const), devServer.exited]);
  let exitCode = 0;
  if (reason !== 'signal') {
    if (reason.code === 0) {
      // Its clean exit: someone sent it `shutdown` (or a signal of their own). As before
      // the split, that stops `start` too, and it is no failure.
      log.info({ devServerPid: devServer.pid }, 'the dev server stopped; stopping the proxy');
    } else {
      exitCode = 1;
      const stderr = devServer.stderrTail();
      const message = `the dev server (pid ${devServer.pid}) exited unexpectedly ${describeExit(reason)}; stopping the proxy`;
      log.error({ devServerPid: devServer.pid, exit: reason, stderr }, message);
      process.stderr.write(`hotbackup: ${message}${stderr === '' ? '' : `\n${stderr}`}\n`);
    }
  }
  return shutDownAndExit({
    cleanup: async () => {
      await app.close();
      await stopDevServer();
    },
    timeoutSecs: flags.shutdownTimeoutSecs,
    describeLeft: () => ({ ...app.describeLeft(), ...devServerLeft() }),
    log,
    exitCode,
  });
}
