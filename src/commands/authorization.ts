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
 * - `killop` (a killOp of the backup's opid): the `killop` action, as any killOp;
 * - `inprog` (the backup's entry in a currentOp of one's own operations): the `inprog`
 *   action, which lists every user's (current_op.ts).
 *
 * The answer is kept per client connection until the client sends something that may
 * change its authentication (ClientInfo.authGeneration).
 *
 * mongod without --auth allows everything, and so does the proxy then. Whether it
 * enforces authentication is asked first, off the client's connection
 * (`AuthEnforcement`, cli/auth_enforcement.ts), so that a backupStatus or backupAbort
 * does not wait behind a client's write held by an fsync lock when there is nothing to
 * check. Without an `AuthEnforcement`, the question is asked on the client's connection
 * after connectionStatus listed no user (`{listDatabases: 1, nameOnly: true}`: anything
 * but ok:1 means enforced).
 */
import type { ClientInfo, Document, Upstream } from '../proxy/interceptor.js';
import { CommandError, ErrorCodes } from '../errors.js';
import { formatCommand } from '../wire/command_text.js';

export type ClusterAction = 'backup' | 'serverStatus' | 'killop' | 'inprog';

interface Privileges {
  /** False when mongod enforces no authentication: everything is allowed. */
  readonly enforced: boolean;
  readonly authenticated: boolean;
  readonly clusterActions: ReadonlySet<string>;
  readonly roles: ReadonlySet<string>;
}

/** Whether mongod enforces authentication; a failure to tell must answer true (fail closed). */
export interface AuthEnforcement {
  enforced(): Promise<boolean>;
}

function asArray(value: unknown): Document[] {
  return Array.isArray(value) ? value.filter((v): v is Document => v !== null && typeof v === 'object') : [];
}

/** `{cluster: true}` or `{anyResource: true}`: both cover the cluster resource (resource_pattern.h). */
function coversCluster(resource: unknown): boolean {
  if (resource === null || typeof resource !== 'object') return false;
  const r = resource as Document;
  return r['cluster'] === true || r['anyResource'] === true;
}

async function learn(upstream: Upstream, probeOnClientConnection: boolean): Promise<Privileges> {
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
  if (!probeOnClientConnection) return { enforced: true, authenticated: false, clusterActions, roles };
  // No user: mongod without --auth, or a client yet to authenticate. A command that
  // needs authentication says which (commands.cpp: "Command listDatabases requires authentication").
  // Anything but a success counts as enforced (fail closed): a mongod that cannot answer
  // (shutting down, a stepdown, an interrupted operation) must not open every command.
  const probe = await upstream.command('admin', { listDatabases: 1, nameOnly: true });
  const enforced = Number(probe['ok']) !== 1;
  return { enforced, authenticated: false, clusterActions, roles };
}


function allows(p: Privileges, action: ClusterAction): boolean {
  const has = (a: string) => p.clusterActions.has(a) || p.clusterActions.has('anyAction');
  if (action === 'backup') return has('fsync') || p.roles.has('backup@admin');
  return has(action);
}

export class Authorization {
  readonly #cache = new WeakMap<ClientInfo, { generation: number; privileges: Promise<Privileges> }>();

  constructor(private readonly enforcement?: AuthEnforcement) {}

  /**
   * Resolves when the client may run `command` (on `db`), or throws Unauthorized in
   * mongod's words: "Command <name> requires authentication" for a client that has not
   * authenticated, "not authorized on <db> to execute command { ... }" for one that lacks
   * the privilege (src/mongo/db/commands.cpp, checkAuthorization).
   */
  async authorize(client: ClientInfo, upstream: Upstream, action: ClusterAction, name: string, command: Document, db = 'admin'): Promise<void> {
    const p = await this.#privilegesOf(client, upstream);
    if (p === undefined || !p.enforced || allows(p, action)) return;
    if (!p.authenticated) throw new CommandError(ErrorCodes.Unauthorized, `Command ${name} requires authentication`);
    throw new CommandError(ErrorCodes.Unauthorized, `not authorized on ${db} to execute command ${formatCommand(command, db)}`);
  }

  /** Whether the client may `action`; false when its privileges cannot be learnt (fail closed). */
  async holds(client: ClientInfo, upstream: Upstream, action: ClusterAction): Promise<boolean> {
    try {
      const p = await this.#privilegesOf(client, upstream);
      return p === undefined || !p.enforced || allows(p, action);
    } catch {
      return false;
    }
  }

  /**
   * Resolves when mongod enforces no authentication or the client has authenticated;
   * throws Unauthorized, "Command <name> requires authentication", otherwise.
   */
  async requireAuthenticated(client: ClientInfo, upstream: Upstream, name: string): Promise<void> {
    const p = await this.#privilegesOf(client, upstream);
    if (p === undefined || !p.enforced || p.authenticated) return;
    throw new CommandError(ErrorCodes.Unauthorized, `Command ${name} requires authentication`);
  }

  /** The client's privileges; undefined when mongod enforces no authentication. */
  async #privilegesOf(client: ClientInfo, upstream: Upstream): Promise<Privileges | undefined> {
    // Read once, before any await: the answer is stored for the generation it was asked
    // at, never for one raised meanwhile.
    const generation = client.authGeneration;
    const cached = this.#cache.get(client);
    if (cached !== undefined && cached.generation === generation) return cached.privileges;
    if (this.enforcement !== undefined && !(await this.enforcement.enforced())) return undefined;
    const privileges = learn(upstream, this.enforcement === undefined);
    this.#cache.set(client, { generation, privileges });
    // A failed lookup is not kept: the next command asks again.
    privileges.catch(() => this.#cache.delete(client));
    return privileges;
  }
}
