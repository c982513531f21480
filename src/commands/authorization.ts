/**
 * Who may run the commands the proxy answers itself: mongod's own users decide. The
 * proxy asks mongod, on the client's own authenticated connection, what that client
 * may do (`{connectionStatus: 1, showPrivileges: true}`, injected there and its reply
 * swallowed), and applies:
 *
 * - `backup` (backupStart, backupThrottle, backupAbort, backupVerify, backupJob): the
 *   `fsync` action on the cluster (hostManager, clusterManager, clusterAdmin, root), or
 *   the built-in `backup` role, as in PSMDB, whose backup role grants its backup
 *   command's action;
 * - `serverStatus` (backupStatus): the `serverStatus` action on the cluster
 *   (clusterMonitor, backup, root);
 * - `killop` (a killOp of the backup's opid): the `killop` action, as any killOp.
 *
 * The answer is kept per client connection until the client sends something that may
 * change its authentication (ClientInfo.authGeneration).
 *
 * An upstream without authentication lists no users, and so does one with it for a
 * client that has not authenticated: a second injected command that needs
 * authentication (`listDatabases`) tells them apart. mongod without --auth allows
 * everything, and so does the proxy then.
 */
import type { ClientInfo, Document, Upstream } from '../proxy/interceptor.js';
import { CommandError, ErrorCodes } from '../errors.js';
import { formatCommand } from '../wire/command_text.js';

export type ClusterAction = 'backup' | 'serverStatus' | 'killop';

interface Privileges {
  /** False when mongod enforces no authentication: everything is allowed. */
  readonly enforced: boolean;
  readonly authenticated: boolean;
  readonly clusterActions: ReadonlySet<string>;
  readonly roles: ReadonlySet<string>;
}

const cache = new WeakMap<ClientInfo, { generation: number; privileges: Promise<Privileges> }>();

function asArray(value: unknown): Document[] {
  return Array.isArray(value) ? value.filter((v): v is Document => v !== null && typeof v === 'object') : [];
}

/** `{cluster: true}` or `{anyResource: true}`: both cover the cluster resource (resource_pattern.h). */
function coversCluster(resource: unknown): boolean {
  if (resource === null || typeof resource !== 'object') return false;
  const r = resource as Document;
  return r['cluster'] === true || r['anyResource'] === true;
}

async function learn(upstream: Upstream): Promise<Privileges> {
  const reply = await upstream.command('admin', { connectionStatus: 1, showPrivileges: true });
  if (Number(reply['ok']) !== 1) {
    throw new CommandError(ErrorCodes.Unauthorized, `cannot learn the client's privileges from mongod: ${String(reply['errmsg'] ?? 'connectionStatus failed')}`);
  }
  const authInfo = (reply['authInfo'] ?? {}) as Document;
  const users = asArray(authInfo['authenticatedUsers']);
  const clusterActions = new Set<string>();
  for (const p of asArray(authInfo['authenticatedUserPrivileges'])) {
    const actions = p['actions'];
    if (!coversCluster(p['resource']) || !Array.isArray(actions)) continue;
    for (const a of actions) if (typeof a === 'string') clusterActions.add(a);
  }
  const roles = new Set(asArray(authInfo['authenticatedUserRoles']).map((r) => `${String(r['role'])}@${String(r['db'])}`));
  if (users.length > 0) return { enforced: true, authenticated: true, clusterActions, roles };
  // No user: mongod without --auth, or a client yet to authenticate. A command that
  // needs authentication says which (commands.cpp: "Command listDatabases requires authentication").
  const probe = await upstream.command('admin', { listDatabases: 1, nameOnly: true });
  const enforced = Number(probe['code']) === ErrorCodes.Unauthorized;
  return { enforced, authenticated: false, clusterActions, roles };
}

function privilegesOf(client: ClientInfo, upstream: Upstream): Promise<Privileges> {
  const cached = cache.get(client);
  if (cached !== undefined && cached.generation === client.authGeneration) return cached.privileges;
  const privileges = learn(upstream);
  cache.set(client, { generation: client.authGeneration, privileges });
  // A failed lookup is not kept: the next command asks again.
  privileges.catch(() => cache.delete(client));
  return privileges;
}

function allows(p: Privileges, action: ClusterAction): boolean {
  const has = (a: string) => p.clusterActions.has(a) || p.clusterActions.has('anyAction');
  if (action === 'backup') return has('fsync') || p.roles.has('backup@admin');
  return has(action);
}

/**
 * Resolves when the client may run `command` (on `db`), or throws Unauthorized in
 * mongod's words: "Command <name> requires authentication" for a client that has not
 * authenticated, "not authorized on <db> to execute command { ... }" for one that lacks
 * the privilege (src/mongo/db/commands.cpp, checkAuthorization).
 */
export async function authorize(client: ClientInfo, upstream: Upstream, action: ClusterAction, name: string, command: Document, db = 'admin'): Promise<void> {
  const p = await privilegesOf(client, upstream);
  if (!p.enforced || allows(p, action)) return;
  if (!p.authenticated) throw new CommandError(ErrorCodes.Unauthorized, `Command ${name} requires authentication`);
  throw new CommandError(ErrorCodes.Unauthorized, `not authorized on ${db} to execute command ${formatCommand(command, db)}`);
}
