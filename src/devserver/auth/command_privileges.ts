/**
 * What each command needs, and the check mongod makes before running it
 * (src/mongo/db/commands.cpp, CommandInvocation::checkAuthorization, and each command's
 * doCheckAuthorization). Only with `--auth`: without it every command runs, as on a
 * mongod without authorization.
 */
import type { Document } from '../bson.js';
import { DevServerError, DevServerCodes } from '../dev_server_errors.js';
import { isAuthorized, type Privilege, type Resource } from './privileges.js';
import { formatCommand } from '../../wire/command_text.js';
import { trueValue } from '../../wire/true_value.js';

/**
 * Commands that run unauthenticated (their requiresAuth() is false in mongod: the
 * handshake, the authentication commands themselves, ping, buildInfo, connectionStatus,
 * whatsmyuri, logout, endSessions).
 */
const NO_AUTH_COMMANDS = new Set([
  'hello', 'isMaster', 'ismaster', 'saslStart', 'saslContinue', 'authenticate', 'logout', 'ping',
  'buildInfo', 'buildinfo', 'connectionStatus', 'whatsmyuri', 'endSessions',
]);

/** Commands that need one action on the cluster and nothing else (builtin_roles.yml names the roles holding each). */
const CLUSTER_ACTION: Readonly<Record<string, string>> = {
  serverStatus: 'serverStatus',
  fsync: 'fsync',
  fsyncUnlock: 'unlock',
  killOp: 'killop',
  killAllSessions: 'killAnySession',
  shutdown: 'shutdown',
  getCmdLineOpts: 'getCmdLineOpts',
  hostInfo: 'hostInfo',
  getParameter: 'getParameter',
  setParameter: 'setParameter',
};

interface Need {
  resource: Resource;
  action: string;
}

const CLUSTER: Resource = { cluster: true };
const onCollection = (db: string, coll: unknown): Resource => ({ db, collection: typeof coll === 'string' ? coll : '' });
const onDb = (db: string): Resource => ({ db, collection: '' });

function pipelineNeed(cmd: Document, db: string): Need[] {
  const pipeline = Array.isArray(cmd['pipeline']) ? (cmd['pipeline'] as unknown[]) : [];
  const first = pipeline[0];
  if (first !== null && typeof first === 'object') {
    // $backupCursor and $backupCursorExtend need fsync on the cluster
    // (PSMDB src/mongo/db/pipeline/document_source_backup_cursor.cpp, requiredPrivileges).
    if ('$backupCursor' in first || '$backupCursorExtend' in first) return [{ resource: CLUSTER, action: 'fsync' }];
    // Other users' operations need inprog; one's own, nothing (src/mongo/db/pipeline/
    // document_source_current_op.h, LiteParsed::requiredPrivileges: inprog only for
    // allUsers, which defaults to false).
    if ('$currentOp' in first) {
      const options = (first as Document)['$currentOp'];
      const allUsers = options !== null && typeof options === 'object' && trueValue((options as Document)['allUsers']);
      return allUsers ? [{ resource: CLUSTER, action: 'inprog' }] : [];
    }
  }
  return [{ resource: onCollection(db, cmd['aggregate']), action: 'find' }];
}

/** The privileges a command needs; undefined for one any authenticated user may run. */
function needs(name: string, cmd: Document, db: string): Need[] | undefined {
  const target = cmd[name];
  switch (name) {
    case 'find':
    case 'count':
    case 'distinct':
      return [{ resource: onCollection(db, target), action: 'find' }];
    case 'aggregate':
      return pipelineNeed(cmd, db);
    case 'insert':
      return [{ resource: onCollection(db, target), action: 'insert' }];
    case 'update': {
      const updates = Array.isArray(cmd['updates']) ? (cmd['updates'] as Document[]) : [];
      const out: Need[] = [{ resource: onCollection(db, target), action: 'update' }];
      if (updates.some((u) => u !== null && typeof u === 'object' && u['upsert'] === true)) out.push({ resource: onCollection(db, target), action: 'insert' });
      return out;
    }
    case 'delete':
      return [{ resource: onCollection(db, target), action: 'remove' }];
    case 'findAndModify':
    case 'findandmodify':
      return [
        { resource: onCollection(db, target), action: 'find' },
        { resource: onCollection(db, target), action: cmd['remove'] === true ? 'remove' : 'update' },
      ];
    case 'createIndexes':
      return [{ resource: onCollection(db, target), action: 'createIndex' }];
    case 'create':
      return [{ resource: onCollection(db, target), action: 'createCollection' }];
    case 'drop':
      return [{ resource: onCollection(db, target), action: 'dropCollection' }];
    case 'dropIndexes':
    case 'deleteIndexes':
      return [{ resource: onCollection(db, target), action: 'dropIndex' }];
    case 'dropDatabase':
      return [{ resource: onDb(db), action: 'dropDatabase' }];
    case 'listCollections':
      return [{ resource: onDb(db), action: 'listCollections' }];
    case 'listIndexes':
      return [{ resource: onCollection(db, target), action: 'listIndexes' }];
    case 'killCursors':
      return [{ resource: onCollection(db, target), action: 'killCursors' }];
    case 'dbStats':
    case 'dbstats':
      return [{ resource: onDb(db), action: 'dbStats' }];
    case 'listDatabases':
      // Without the action mongod lists only the databases the user may read
      // (authorizedDatabases, list_databases.cpp); the dev server refuses only an
      // explicit `authorizedDatabases: false`.
      return cmd['authorizedDatabases'] === false ? [{ resource: CLUSTER, action: 'listDatabases' }] : undefined;
    case 'currentOp':
      // Any authenticated user may list its own operations with $ownOps
      // (src/mongo/db/commands/current_op.cpp, checkAuthForOperation).
      return trueValue(cmd['$ownOps']) ? undefined : [{ resource: CLUSTER, action: 'inprog' }];
    case 'createUser':
      return [{ resource: onDb(db), action: 'createUser' }];
    case 'dropUser':
      return [{ resource: onDb(db), action: 'dropUser' }];
    case 'updateUser': {
      const out: Need[] = [];
      if ('pwd' in cmd) out.push({ resource: onDb(db), action: 'changePassword' });
      if ('roles' in cmd) out.push({ resource: onDb(db), action: 'grantRole' }, { resource: onDb(db), action: 'revokeRole' });
      if ('customData' in cmd) out.push({ resource: onDb(db), action: 'changeCustomData' });
      return out;
    }
    default: {
      const action = Object.hasOwn(CLUSTER_ACTION, name) ? CLUSTER_ACTION[name] : undefined;
      if (action !== undefined) return [{ resource: CLUSTER, action }];
      // getMore, startSession, refreshSessions, killSessions, usersInfo, getLog and any
      // command without a rule here: authentication alone (mongod checks the first ones
      // against the session's own cursors and sessions).
      return undefined;
    }
  }
}

export interface AuthView {
  /** Whether any user is authenticated on the connection. */
  readonly authenticated: boolean;
  /** The authenticated users' privileges, resolved now. */
  privileges(): Privilege[];
  /** No user exists yet and the client is on localhost: mongod's localhost exception. */
  localhostException(): boolean;
}

/**
 * Throws Unauthorized (13) in mongod's words unless the connection may run the command:
 * "Command <name> requires authentication" for an unauthenticated one
 * (commands.cpp), "not authorized on <db> to execute command { ... }" for a user lacking
 * a privilege (commands.cpp, CommandHelpers::auditLogAuthEvent / checkAuthorization).
 */
export function checkCommandAuthorization(name: string, cmd: Document, db: string, auth: AuthView): void {
  if (NO_AUTH_COMMANDS.has(name)) return;
  if (!auth.authenticated) {
    // The localhost exception lets an unauthenticated local client create the first
    // user, and nothing else (authorization_session_impl.cpp, _isAuthorizedForPrivilege
    // with the localhost bypass; mongod 7 allows createUser and createRole).
    if (name === 'createUser' && auth.localhostException()) return;
    throw new DevServerError(DevServerCodes.Unauthorized, `Command ${name} requires authentication`);
  }
  const required = needs(name, cmd, db);
  if (required === undefined) return;
  const privileges = auth.privileges();
  if (required.every((need) => isAuthorized(privileges, need.resource, need.action))) return;
  throw new DevServerError(DevServerCodes.Unauthorized, `not authorized on ${db} to execute command ${formatCommand(cmd, db)}`);
}
