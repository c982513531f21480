/**
 * What a replica set member that is not primary (here: one not yet initiated, state
 * STARTUP) refuses, checked as mongod's command dispatch checks it
 * (src/mongo/db/service_entry_point_common.cpp, execCommandDatabase and
 * commandCanRunHere): writes get NotWritablePrimary; reads without a read preference
 * that allows a secondary get NotPrimaryNoSecondaryOk; then the commands that are not
 * maintenanceOk (the reads) get NotPrimaryOrSecondary, as the member is neither primary
 * nor secondary.
 */
import type { Document } from '../bson.js';
import type { CommandContext } from '../handlers/handler.js';
import { DevServerError, DevServerCodes } from '../dev_server_errors.js';

/** AllowedOnSecondary::kNever: the writes. */
const NEVER_ON_SECONDARY = new Set([
  'insert', 'update', 'delete', 'findAndModify', 'findandmodify', 'create', 'drop', 'createIndexes', 'dropIndexes',
  'deleteIndexes', 'dropDatabase', 'createUser', 'updateUser', 'dropUser', 'collMod', 'renameCollection', 'applyOps',
]);

/** AllowedOnSecondary::kOptIn: the reads. Every other command is kAlways. */
const OPT_IN_ON_SECONDARY = new Set([
  'find', 'count', 'distinct', 'aggregate', 'listCollections', 'listIndexes', 'listDatabases', 'dbStats', 'dbstats', 'collStats', 'usersInfo',
]);

/**
 * Commands whose maintenanceOk() is false: they need a primary or a secondary whatever
 * the read preference (find_cmd.cpp, count_cmd.cpp, distinct.cpp, pipeline_command.cpp,
 * getmore_cmd.cpp, list_databases.cpp, list_collections.cpp, list_indexes.cpp,
 * collection stats and dbStats). An uninitiated PSMDB 7.0 answers mongosh's `show dbs`
 * with 13436.
 */
const NOT_MAINTENANCE_OK = new Set([
  'find', 'count', 'distinct', 'aggregate', 'getMore', 'listDatabases', 'listCollections', 'listIndexes', 'collStats', 'dbStats', 'dbstats',
]);

/** ReadPreferenceSetting::canRunOnSecondary: any mode but primary. */
function optedIn(cmd: Document): boolean {
  const pref = cmd['$readPreference'];
  if (pref === null || typeof pref !== 'object') return false;
  const mode = (pref as Document)['mode'];
  return typeof mode === 'string' && mode !== 'primary';
}

/**
 * Throws mongod's not-primary error when the command cannot run on this member now.
 * A primary runs everything; so does any member for the `local` database, which is
 * never replicated (canAcceptWritesForDatabase).
 */
export function checkCanRunHere(name: string, cmd: Document, ctx: CommandContext): void {
  const set = ctx.state.replSet;
  if (set === undefined || set.initiated || ctx.db === 'local') return;
  const hello = ctx.connection.supportsHello;
  const extra = { topologyVersion: ctx.state.topology.toDocument() };
  if (NEVER_ON_SECONDARY.has(name)) {
    throw new DevServerError(DevServerCodes.NotWritablePrimary, hello ? 'not primary' : 'not master', { extra });
  }
  if (OPT_IN_ON_SECONDARY.has(name) && !optedIn(cmd)) {
    throw new DevServerError(DevServerCodes.NotPrimaryNoSecondaryOk, hello ? 'not primary and secondaryOk=false' : 'not master and slaveOk=false', { extra });
  }
  if (NOT_MAINTENANCE_OK.has(name)) {
    // An uninitiated member is in STARTUP: neither primary nor recovering.
    throw new DevServerError(DevServerCodes.NotPrimaryOrSecondary, 'node is not in primary or recovering state', { extra });
  }
}
