/** Commands that describe the server: what mongosh and drivers ask at connect time. */
import { Long, UUID } from 'bson';
import os from 'node:os';
import type { Document } from '../bson.js';
import type { Command, CommandContext } from './handler.js';
import { SERVER_VERSION, MAX_WIRE_VERSION, type ServerState } from '../state.js';
import { SETTABLE } from './set_parameter.js';
import { sessionIdsToKill } from '../sessions.js';
import { MAX_BSON_OBJECT_SIZE } from '../../wire/constants.js';
import { DevServerError, DevServerCodes } from '../dev_server_errors.js';

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
      // mongod's option names: storage.directoryPerDB, storage.wiredTiger.engineConfig.directoryForIndexes.
      storage: {
        dbPath: ctx.state.engine.dbpath,
        ...(ctx.state.engine.layout.directoryPerDB ? { directoryPerDB: true } : {}),
        engine: 'wiredTiger',
        journal: { enabled: true },
        ...(ctx.state.engine.layout.directoryForIndexes ? { wiredTiger: { engineConfig: { directoryForIndexes: true } } } : {}),
      },
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

const PARAMETERS: Record<string, (state: ServerState) => unknown> = {
  featureCompatibilityVersion: () => ({ version: SERVER_VERSION.split('.').slice(0, 2).join('.') }),
  authenticationMechanisms: () => [],
  maxWireVersion: () => MAX_WIRE_VERSION,
  logLevel: () => 0,
  // The ones setParameter changes read what is in force.
  ...Object.fromEntries(Object.entries(SETTABLE).map(([name, param]) => [name, param.read] as const)),
};

function getParameter(cmd: Document, ctx: CommandContext): Document {
  const reply: Document = {};
  const all = cmd['getParameter'] === '*';
  for (const [name, read] of Object.entries(PARAMETERS)) {
    if (all || (name in cmd && name !== 'getParameter')) reply[name] = read(ctx.state);
  }
  if (Object.keys(reply).length === 0) {
    throw new DevServerError(DevServerCodes.InvalidOptions, 'no option found to get');
  }
  reply['ok'] = 1;
  return reply;
}

function getLog(cmd: Document): Document {
  const which = cmd['getLog'];
  if (which === '*') return { names: ['global', 'startupWarnings'], ok: 1 };
  if (which === 'global' || which === 'startupWarnings') return { totalLinesWritten: 0, log: [], ok: 1 };
  throw new DevServerError(DevServerCodes.OperationFailed, `No log named '${String(which)}'`);
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

/*
 * Sessions matter to the dev server only through their cursors (see cursors.ts).
 * kill_sessions_command.cpp / kill_all_sessions_command.cpp: both commands ignore their
 * own lsid (attachLogicalSessionsToOpCtx() is false), so they never kill themselves.
 */

/**
 * `killSessions: [{id: UUID}, ...]` kills those sessions' cursors at once. An empty list
 * means "the logged-in user's sessions"; with auth off (always, here) patternsForLoggedInUser
 * matches every session.
 */
function killSessions(cmd: Document, ctx: CommandContext): Document {
  const ids = new Set(sessionIdsToKill(cmd['killSessions'], 'KillSessionsCmdFromClient.killSessions'));
  const killed = ctx.state.cursors.killSessionCursors((lsid) => ids.size === 0 || ids.has(lsid));
  ctx.state.log.info({ sessions: ids.size === 0 ? 'all' : [...ids], cursorsKilled: killed }, 'killSessions');
  return { ok: 1 };
}

/**
 * `killAllSessions: []` kills every session's cursors. A list of `{user, db}` kills the
 * sessions of those users; the dev server has no users, and with auth off every session
 * belongs to the empty user, so a named user matches none.
 */
function killAllSessions(cmd: Document, ctx: CommandContext): Document {
  const users = cmd['killAllSessions'];
  if (!Array.isArray(users)) {
    throw new DevServerError(DevServerCodes.TypeMismatch, "BSON field 'KillAllSessionsCmd.killAllSessions' is the wrong type, expected type 'array'");
  }
  const killed = users.length === 0 ? ctx.state.cursors.killSessionCursors(() => true) : 0;
  ctx.state.log.info({ users: users.length === 0 ? 'all' : users.length, cursorsKilled: killed }, 'killAllSessions');
  return { ok: 1 };
}

/**
 * `endSessions: [{id}, ...]`: mongod marks them ending; their cursors die at the next
 * session refresh (LogicalSessionCacheImpl::_refresh), not at once.
 */
function endSessions(cmd: Document, ctx: CommandContext): Document {
  ctx.state.cursors.endSessions(sessionIdsToKill(cmd['endSessions'], 'EndSessionsCmdFromClient.endSessions'));
  return { ok: 1 };
}

export const serverInfoCommands: Command[] = [
  { names: ['ping'], run: () => ({ ok: 1 }) },
  { names: ['buildInfo', 'buildinfo'], run: buildInfo },
  { names: ['getCmdLineOpts'], adminOnly: true, run: (_cmd, ctx) => getCmdLineOpts(ctx) },
  { names: ['serverStatus'], run: (_cmd, ctx) => serverStatus(ctx) },
  { names: ['getParameter'], adminOnly: true, run: getParameter },
  { names: ['getLog'], adminOnly: true, run: getLog },
  { names: ['hostInfo'], run: hostInfo },
  { names: ['whatsmyuri'], run: (_cmd, ctx) => ({ you: ctx.connection.remoteAddress, ok: 1 }) },
  { names: ['killSessions'], run: killSessions },
  { names: ['killAllSessions'], run: killAllSessions },
  { names: ['endSessions'], run: endSessions },
  // Sessions have no expiry here to postpone: accepted as mongod accepts them.
  { names: ['refreshSessions'], run: () => ({ ok: 1 }) },
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
