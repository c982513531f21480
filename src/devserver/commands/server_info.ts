/** Commands that describe the server: what mongosh and drivers ask at connect time. */
import { Long, UUID } from 'bson';
import os from 'node:os';
import type { Document } from '../bson.js';
import type { Command, CommandContext } from './types.js';
import { SERVER_VERSION, MAX_WIRE_VERSION } from '../state.js';
import { MAX_BSON_OBJECT_SIZE } from '../../wire/constants.js';
import { MongoServerError, ErrorCodes } from '../../errors.js';

const VERSION_ARRAY = [...SERVER_VERSION.split('.').map(Number), 0];

function buildInfo(): Document {
  return {
    version: SERVER_VERSION,
    gitVersion: 'hotbackup-dev-server',
    modules: [],
    allocator: 'system',
    javascriptEngine: 'none',
    sysInfo: 'deprecated',
    versionArray: VERSION_ARRAY,
    bits: 64,
    debug: false,
    maxBsonObjectSize: MAX_BSON_OBJECT_SIZE,
    storageEngines: ['wiredTiger'],
    buildEnvironment: { target_os: 'linux', target_arch: process.arch },
    ok: 1,
  };
}

function getCmdLineOpts(ctx: CommandContext): Document {
  const { options } = ctx.state;
  return {
    argv: options.argv,
    parsed: {
      net: { bindIp: options.bind, port: options.port },
      storage: { dbPath: ctx.state.engine.dbpath, engine: 'wiredTiger', journal: { enabled: true } },
    },
    ok: 1,
  };
}

function serverStatus(ctx: CommandContext): Document {
  const { state } = ctx;
  const uptimeMillis = Date.now() - state.startedAt.getTime();
  return {
    host: os.hostname(),
    version: SERVER_VERSION,
    process: 'mongod',
    pid: Long.fromNumber(process.pid),
    uptime: Math.floor(uptimeMillis / 1000),
    uptimeMillis: Long.fromNumber(uptimeMillis),
    uptimeEstimate: Long.fromNumber(Math.floor(uptimeMillis / 1000)),
    localTime: new Date(),
    connections: {
      current: state.connections.current,
      available: 1_000_000 - state.connections.current,
      totalCreated: state.connections.totalCreated,
      active: state.connections.current,
    },
    opcounters: { ...state.opcounters },
    storageEngine: {
      name: 'wiredTiger',
      supportsCommittedReads: true,
      persistent: true,
      backupCursorOpen: state.backupCursor !== undefined,
    },
    fsyncLocked: state.fsyncLock.locked,
    ok: 1,
  };
}

const PARAMETERS: Record<string, () => unknown> = {
  featureCompatibilityVersion: () => ({ version: SERVER_VERSION.split('.').slice(0, 2).join('.') }),
  authenticationMechanisms: () => [],
  maxWireVersion: () => MAX_WIRE_VERSION,
  cursorTimeoutMillis: () => Long.fromNumber(600_000),
  logLevel: () => 0,
};

function getParameter(cmd: Document): Document {
  const reply: Document = {};
  const all = cmd['getParameter'] === '*';
  for (const [name, read] of Object.entries(PARAMETERS)) {
    if (all || (name in cmd && name !== 'getParameter')) reply[name] = read();
  }
  if (Object.keys(reply).length === 0) {
    throw new MongoServerError(ErrorCodes.InvalidOptions, 'no option found to get');
  }
  reply['ok'] = 1;
  return reply;
}

function getLog(cmd: Document): Document {
  const which = cmd['getLog'];
  if (which === '*') return { names: ['global', 'startupWarnings'], ok: 1 };
  if (which === 'global' || which === 'startupWarnings') return { totalLinesWritten: 0, log: [], ok: 1 };
  throw new MongoServerError(ErrorCodes.OperationFailed, `No log named '${String(which)}'`);
}

function hostInfo(): Document {
  return {
    system: {
      currentTime: new Date(),
      hostname: os.hostname(),
      cpuAddrSize: 64,
      memSizeMB: Long.fromNumber(Math.round(os.totalmem() / 1024 / 1024)),
      numCores: os.cpus().length,
      cpuArch: os.arch(),
      numaEnabled: false,
    },
    os: { type: os.type(), name: os.type(), version: os.release() },
    extra: {},
    ok: 1,
  };
}

/** Sessions are accepted and forgotten: the dev server has no transactions to tie to them. */
const acceptSessions = (): Document => ({ ok: 1 });

export const serverInfoCommands: Command[] = [
  { names: ['ping'], run: () => ({ ok: 1 }) },
  { names: ['buildInfo', 'buildinfo'], run: buildInfo },
  { names: ['getCmdLineOpts'], adminOnly: true, run: (_cmd, ctx) => getCmdLineOpts(ctx) },
  { names: ['serverStatus'], run: (_cmd, ctx) => serverStatus(ctx) },
  { names: ['getParameter'], adminOnly: true, run: getParameter },
  { names: ['getLog'], adminOnly: true, run: getLog },
  { names: ['hostInfo'], run: hostInfo },
  { names: ['whatsmyuri'], run: (_cmd, ctx) => ({ you: ctx.connection.remoteAddress, ok: 1 }) },
  {
    names: ['connectionStatus'],
    run: (cmd) => {
      const authInfo: Document = { authenticatedUsers: [], authenticatedUserRoles: [] };
      if (cmd['showPrivileges'] === true) authInfo['authenticatedUserPrivileges'] = [];
      return { authInfo, ok: 1 };
    },
  },
  { names: ['endSessions', 'refreshSessions', 'killSessions', 'killAllSessions'], run: acceptSessions },
  {
    names: ['startSession'],
    run: () => ({ id: { id: new UUID() }, timeoutMinutes: 30, ok: 1 }),
  },
  {
    names: ['shutdown'],
    adminOnly: true,
    run: (_cmd, ctx) => {
      // mongod closes the connection instead of replying; the owner does the same.
      ctx.state.requestShutdown();
      return { ok: 1 };
    },
  },
];
