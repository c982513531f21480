/**
 * Resources, privileges and the built-in roles the dev server knows, with the privileges
 * mongod gives them for the actions that matter here (src/mongo/db/auth/builtin_roles.yml
 * in 7.0; builtin_roles.cpp before it). Each role's list is mongod's own for the actions
 * the dev server checks, plus the neighbours `connectionStatus` would show; it is not
 * every action mongod lists.
 *
 * Resource patterns follow src/mongo/db/auth/resource_pattern.h: `{cluster: true}`;
 * `{anyResource: true}`; `{db, collection}` where an empty db or collection means "any"
 * (`{db: '', collection: ''}` is mongod's anyNormalResource).
 */
import type { Document } from '../bson.js';

export type Resource = { cluster: true } | { anyResource: true } | { db: string; collection: string };

export interface Privilege {
  resource: Resource;
  actions: string[];
}

/** A role a user holds: `{role, db}`. */
export interface RoleName {
  role: string;
  db: string;
}

const READ = ['changeStream', 'collStats', 'dbHash', 'dbStats', 'find', 'killCursors', 'listCollections', 'listIndexes', 'planCacheRead'];
const READ_WRITE = [...READ, 'convertToCapped', 'createCollection', 'createIndex', 'dropCollection', 'dropIndex', 'insert', 'remove', 'renameCollectionSameDB', 'update'];
const DB_ADMIN = [
  'bypassDocumentValidation', 'collMod', 'collStats', 'compact', 'convertToCapped', 'createCollection', 'createIndex', 'dbStats',
  'dropCollection', 'dropDatabase', 'dropIndex', 'enableProfiler', 'listCollections', 'listIndexes', 'planCacheIndexFilter',
  'planCacheRead', 'planCacheWrite', 'reIndex', 'renameCollectionSameDB', 'storageDetails', 'validate',
];
const DB_ADMIN_PROFILE = ['changeStream', 'collStats', 'convertToCapped', 'createCollection', 'dbStats', 'dropCollection', 'find', 'killCursors', 'listCollections', 'listIndexes', 'planCacheRead'];
const HOST_MANAGER_CLUSTER = [
  'applicationMessage', 'connPoolSync', 'flushRouterConfig', 'fsync', 'invalidateUserCache', 'killAnyCursor', 'killAnySession',
  'killop', 'logRotate', 'resync', 'setParameter', 'shutdown', 'touch', 'unlock',
];
const CLUSTER_MONITOR_CLUSTER = [
  'connPoolStats', 'getCmdLineOpts', 'getDefaultRWConcern', 'getLog', 'getParameter', 'hostInfo', 'inprog', 'listDatabases',
  'listSessions', 'netstat', 'replSetGetConfig', 'replSetGetStatus', 'serverStatus', 'top', 'useUUID',
];
/** clusterManager's cluster actions that the dev server has commands for, and their neighbours. */
const CLUSTER_MANAGER_CLUSTER = [
  'appendOplogNote', 'applicationMessage', 'getDefaultRWConcern', 'listSessions', 'replSetConfigure', 'replSetGetConfig',
  'replSetGetStatus', 'replSetStateChange', 'resync', 'setDefaultRWConcern', 'setFeatureCompatibilityVersion',
];
/**
 * mongod's backup role, plus PSMDB's `startBackup` (its createBackup command's action,
 * granted to backup and hostManager in PSMDB's builtin roles).
 */
const BACKUP_CLUSTER = ['appendOplogNote', 'getParameter', 'listDatabases', 'listSessions', 'serverStatus', 'startBackup'];
const RESTORE_ANY = [
  'bypassDocumentValidation', 'changeCustomData', 'changePassword', 'collMod', 'convertToCapped', 'createCollection', 'createIndex',
  'createRole', 'createUser', 'dropCollection', 'dropRole', 'dropUser', 'grantRole', 'insert', 'listCollections', 'revokeRole', 'viewRole', 'viewUser',
];
const USER_ADMIN = ['changeCustomData', 'changePassword', 'createRole', 'createUser', 'dropRole', 'dropUser', 'grantRole', 'revokeRole', 'setAuthenticationRestriction', 'viewRole', 'viewUser'];

const db = (name: string, collection = ''): Resource => ({ db: name, collection });
const CLUSTER: Resource = { cluster: true };

/** Roles that exist only on admin (mongod: "cluster-wide" roles). */
const ADMIN_ONLY_ROLES = new Set(['root', 'backup', 'restore', 'hostManager', 'clusterMonitor', 'clusterManager']);
const ANY_DB_ROLES = new Set(['read', 'readWrite', 'dbAdmin']);

export function isBuiltinRole(role: RoleName): boolean {
  return ANY_DB_ROLES.has(role.role) || (ADMIN_ONLY_ROLES.has(role.role) && role.db === 'admin');
}

/** The privileges of one built-in role (empty for a role we do not know). */
export function rolePrivileges(role: RoleName): Privilege[] {
  switch (role.role) {
    case 'read':
      return [{ resource: db(role.db), actions: READ }];
    case 'readWrite':
      return [{ resource: db(role.db), actions: READ_WRITE }];
    case 'dbAdmin':
      return [
        { resource: db(role.db), actions: DB_ADMIN },
        { resource: db(role.db, 'system.profile'), actions: DB_ADMIN_PROFILE },
      ];
    default:
      if (role.db !== 'admin') return [];
      return adminRolePrivileges(role.role);
  }
}

function adminRolePrivileges(role: string): Privilege[] {
  switch (role) {
    case 'hostManager':
      return [
        { resource: CLUSTER, actions: [...HOST_MANAGER_CLUSTER, 'startBackup'] },
        { resource: db(''), actions: ['killCursors', 'repairDatabase'] },
      ];
    case 'clusterMonitor':
      return [
        { resource: CLUSTER, actions: CLUSTER_MONITOR_CLUSTER },
        { resource: db(''), actions: ['collStats', 'dbStats', 'getDatabaseVersion', 'getShardVersion', 'indexStats'] },
        { resource: db('', 'system.profile'), actions: ['find'] },
      ];
    case 'clusterManager':
      return [
        { resource: CLUSTER, actions: CLUSTER_MANAGER_CLUSTER },
        { resource: db('local', 'system.replset'), actions: ['find', 'insert', 'update', 'remove'] },
      ];
    case 'backup':
      return [
        { resource: CLUSTER, actions: BACKUP_CLUSTER },
        { resource: db(''), actions: ['find', 'listCollections', 'listIndexes'] },
        { resource: db('config', 'settings'), actions: ['find', 'insert', 'update'] },
      ];
    case 'restore':
      // applyOps, forceUUID and useUUID: "Needed by mongorestore --preserveUUID" (builtin_roles.yml).
      return [
        { resource: CLUSTER, actions: ['applyOps', 'forceUUID', 'getParameter', 'useUUID'] },
        { resource: db(''), actions: RESTORE_ANY },
      ];
    case 'root':
      // readWriteAnyDatabase, dbAdminAnyDatabase, userAdminAnyDatabase, clusterAdmin, backup, restore.
      return mergePrivileges([
        // applyOps: dbAdminAnyDatabase's and restore's; forceUUID: restore's.
        { resource: CLUSTER, actions: [...HOST_MANAGER_CLUSTER, ...CLUSTER_MONITOR_CLUSTER, ...CLUSTER_MANAGER_CLUSTER, ...BACKUP_CLUSTER, 'listDatabases', 'applyOps', 'forceUUID'] },
        { resource: db(''), actions: [...READ_WRITE, ...DB_ADMIN, ...USER_ADMIN, ...RESTORE_ANY, 'repairDatabase'] },
        { resource: db('', 'system.profile'), actions: DB_ADMIN_PROFILE },
      ]);
    default:
      return [];
  }
}

function resourceKey(resource: Resource): string {
  if ('cluster' in resource) return 'cluster';
  if ('anyResource' in resource) return 'any';
  return `${resource.db}\0${resource.collection}`;
}

/** One entry per resource, actions sorted and unique: mongod's connectionStatus shape. */
export function mergePrivileges(privileges: Privilege[]): Privilege[] {
  const byResource = new Map<string, Privilege>();
  for (const p of privileges) {
    const key = resourceKey(p.resource);
    const entry = byResource.get(key) ?? { resource: p.resource, actions: [] };
    entry.actions = [...new Set([...entry.actions, ...p.actions])].sort();
    byResource.set(key, entry);
  }
  return [...byResource.values()];
}

/** Whether `pattern` covers `target` (resource_pattern.h, ResourcePattern::matches*). */
function covers(pattern: Resource, target: Resource): boolean {
  if ('anyResource' in pattern) return true;
  if ('cluster' in pattern) return 'cluster' in target;
  if (!('db' in target)) return false;
  // anyNormalResource and db-wide patterns do not reach system collections (mongod's
  // isSystem check), except the ones a role names itself.
  const systemTarget = target.collection.startsWith('system.');
  if (pattern.collection === '') return !systemTarget && (pattern.db === '' || pattern.db === target.db);
  return pattern.collection === target.collection && (pattern.db === '' || pattern.db === target.db);
}

export function isAuthorized(privileges: readonly Privilege[], resource: Resource, action: string): boolean {
  return privileges.some((p) => (p.actions.includes(action) || p.actions.includes('anyAction')) && covers(p.resource, resource));
}

export function privilegeDocument(p: Privilege): Document {
  return { resource: { ...p.resource }, actions: [...p.actions] };
}
