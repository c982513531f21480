/**
 * Authentication and user management: saslStart, saslContinue (and the same
 * conversation begun speculatively in hello), logout, connectionStatus, createUser,
 * updateUser, dropUser and usersInfo. mongod's side: src/mongo/db/auth/sasl_commands.cpp,
 * sasl_scram_server_conversation.cpp, src/mongo/db/commands/user_management_commands.cpp,
 * connection_status.cpp.
 */
import { Binary } from 'bson';
import type { Document } from '../bson.js';
import type { Command, CommandContext } from './handler.js';
import { DevServerError, DevServerCodes } from '../dev_server_errors.js';
import { parseClientFirst, ScramFailure, ScramServerConversation, SCRAM_MECHANISMS, type ScramMechanism } from '../auth/scram.js';
import { UserStore, type StoredUser } from '../auth/users.js';
import { isBuiltinRole, mergePrivileges, privilegeDocument, rolePrivileges, type Privilege, type RoleName } from '../auth/privileges.js';
import type { AuthSession } from '../auth/session.js';
import { isNumeric, toNumber } from '../query/values.js';

/**
 * Every authentication failure reaches the client as this one status, whatever the
 * reason (mongod: AuthorizationManager::authenticationFailedStatus, used by
 * sasl_commands.cpp); the reason goes to the log only.
 */
function authenticationFailed(ctx: CommandContext, user: string | undefined, reason: string): DevServerError {
  ctx.state.log.info({ connectionId: ctx.connection.id, user, db: ctx.db, reason }, 'authentication failed');
  return new DevServerError(DevServerCodes.AuthenticationFailed, 'Authentication failed.');
}

function payloadText(value: unknown): string {
  if (value instanceof Binary) return Buffer.from(value.buffer.subarray(0, value.position)).toString('utf8');
  if (value instanceof Uint8Array) return Buffer.from(value).toString('utf8');
  if (typeof value === 'string') return Buffer.from(value, 'base64').toString('utf8');
  throw new DevServerError(DevServerCodes.TypeMismatch, "BSON field 'payload' is the wrong type, expected a binData");
}

const binary = (text: string): Binary => new Binary(Buffer.from(text, 'utf8'));

function sessionOf(ctx: CommandContext): AuthSession {
  return ctx.connection.auth;
}

/** The reply fields of saslStart (and of hello's speculativeAuthenticate). */
export function saslStart(cmd: Document, ctx: CommandContext, db: string): Document {
  const mechanism = cmd['mechanism'];
  if (typeof mechanism !== 'string' || !(SCRAM_MECHANISMS as readonly string[]).includes(mechanism)) {
    // sasl_commands.cpp (via SASLServerMechanismRegistry::getServerMechanism).
    throw new DevServerError(DevServerCodes.MechanismUnavailable, `Received authentication for mechanism ${String(mechanism)} which is not enabled`);
  }
  const session = sessionOf(ctx);
  session.conversation = undefined;
  let first;
  try {
    first = parseClientFirst(payloadText(cmd['payload']));
  } catch (err) {
    if (err instanceof ScramFailure) throw authenticationFailed(ctx, undefined, err.message);
    throw err;
  }
  const stored = ctx.state.users.find(first.user, db);
  const credential = stored?.credentials[mechanism as ScramMechanism];
  if (credential === undefined) {
    throw authenticationFailed(ctx, first.user, stored === undefined ? 'UserNotFound' : `user has no ${mechanism} credentials`);
  }
  const scram = new ScramServerConversation(mechanism as ScramMechanism, first, credential);
  const options = cmd['options'];
  const skipEmptyExchange = options !== null && typeof options === 'object' && (options as Document)['skipEmptyExchange'] === true;
  const id = session.nextConversationId();
  session.conversation = { id, db, scram, skipEmptyExchange, step: 'proof' };
  return { conversationId: id, done: false, payload: binary(scram.serverFirst), ok: 1 };
}

function saslContinue(cmd: Document, ctx: CommandContext): Document {
  const session = sessionOf(ctx);
  const conversation = session.conversation;
  if (conversation === undefined || toNumber(cmd['conversationId']) !== conversation.id || conversation.db !== ctx.db) {
    // sasl_commands.cpp, CmdSaslContinue: no session, or another conversation's id.
    throw new DevServerError(DevServerCodes.ProtocolError, 'No SASL session state found');
  }
  const { scram } = conversation;
  try {
    const text = payloadText(cmd['payload']);
    if (conversation.step === 'empty') {
      if (text.length !== 0) throw new ScramFailure('SCRAM final message should be empty');
      session.conversation = undefined;
      session.user = { user: scram.user, db: conversation.db };
      return { conversationId: conversation.id, done: true, payload: binary(''), ok: 1 };
    }
    const serverFinal = scram.finish(text);
    if (conversation.skipEmptyExchange) {
      session.conversation = undefined;
      session.user = { user: scram.user, db: conversation.db };
      return { conversationId: conversation.id, done: true, payload: binary(serverFinal), ok: 1 };
    }
    conversation.step = 'empty';
    return { conversationId: conversation.id, done: false, payload: binary(serverFinal), ok: 1 };
  } catch (err) {
    session.conversation = undefined;
    if (err instanceof ScramFailure) throw authenticationFailed(ctx, scram.user, err.message);
    throw err;
  }
}

/** The privileges of the connection's user, resolved from its stored roles now. */
export function sessionPrivileges(ctx: { state: CommandContext['state'] }, session: AuthSession): { roles: RoleName[]; privileges: Privilege[] } {
  if (session.user === undefined) return { roles: [], privileges: [] };
  const stored = ctx.state.users.find(session.user.user, session.user.db);
  const roles = stored?.roles ?? [];
  return { roles, privileges: mergePrivileges(roles.flatMap(rolePrivileges)) };
}

function connectionStatus(cmd: Document, ctx: CommandContext): Document {
  const session = sessionOf(ctx);
  const { roles, privileges } = sessionPrivileges(ctx, session);
  const authInfo: Document = {
    authenticatedUsers: session.user === undefined ? [] : [{ user: session.user.user, db: session.user.db }],
    authenticatedUserRoles: roles.map((r) => ({ role: r.role, db: r.db })),
  };
  if (cmd['showPrivileges'] === true) authInfo['authenticatedUserPrivileges'] = privileges.map(privilegeDocument);
  return { authInfo, ok: 1 };
}

/** `roles: ["read", {role: "backup", db: "admin"}]`; strings name roles of the command's db. */
function parseRoles(value: unknown, db: string): RoleName[] {
  if (!Array.isArray(value)) throw new DevServerError(DevServerCodes.BadValue, "\"roles\" field must be an array");
  return value.map((r: unknown) => {
    const role: RoleName =
      typeof r === 'string' ? { role: r, db } : r !== null && typeof r === 'object' ? { role: String((r as Document)['role']), db: String((r as Document)['db']) } : { role: '', db };
    // user_management_commands.cpp: checkOkayToGrantRolesToRole / RoleNotFound.
    if (!isBuiltinRole(role)) throw new DevServerError(DevServerCodes.RoleNotFound, `Could not find role: ${role.role}@${role.db}`);
    return role;
  });
}

function parsePassword(cmd: Document): string {
  const pwd = cmd['pwd'];
  if (typeof pwd !== 'string') throw new DevServerError(DevServerCodes.BadValue, "Must provide a 'pwd' field for all user documents, except those with '$external' as the user's source db");
  if (pwd.length === 0) throw new DevServerError(DevServerCodes.BadValue, 'Password cannot be empty');
  return pwd;
}

function parseMechanisms(cmd: Document): readonly ScramMechanism[] {
  const value = cmd['mechanisms'];
  if (value === undefined) return SCRAM_MECHANISMS;
  if (!Array.isArray(value) || value.length === 0) throw new DevServerError(DevServerCodes.BadValue, 'mechanisms field must not be empty');
  for (const m of value) {
    if (!(SCRAM_MECHANISMS as readonly unknown[]).includes(m)) throw new DevServerError(DevServerCodes.BadValue, `Unknown auth mechanism '${String(m)}'`);
  }
  return value as ScramMechanism[];
}

function userName(cmd: Document, field: string): string {
  const name = cmd[field];
  if (typeof name !== 'string' || name.length === 0) throw new DevServerError(DevServerCodes.BadValue, 'User name must be a non-empty string');
  return name;
}

function createUser(cmd: Document, ctx: CommandContext): Document {
  const user = userName(cmd, 'createUser');
  const password = parsePassword(cmd);
  const roles = parseRoles(cmd['roles'], ctx.db);
  if (ctx.state.users.find(user, ctx.db) !== undefined) {
    // user_management_commands.cpp, CmdCreateUser: uassert 51003.
    throw new DevServerError(DevServerCodes.UserAlreadyExists, `User "${user}@${ctx.db}" already exists`);
  }
  const stored: StoredUser = { user, db: ctx.db, roles, credentials: UserStore.credentials(user, password, parseMechanisms(cmd)) };
  if (cmd['customData'] !== undefined) stored.customData = cmd['customData'] as Document;
  ctx.state.users.insert(stored);
  return { ok: 1 };
}

function userNotFound(user: string, db: string): DevServerError {
  return new DevServerError(DevServerCodes.UserNotFound, `User ${user}@${db} not found`);
}

function updateUser(cmd: Document, ctx: CommandContext): Document {
  const user = userName(cmd, 'updateUser');
  const password = 'pwd' in cmd ? parsePassword(cmd) : undefined;
  const roles = 'roles' in cmd ? parseRoles(cmd['roles'], ctx.db) : undefined;
  const mechanisms = parseMechanisms(cmd);
  const found = ctx.state.users.update(user, ctx.db, (doc) => {
    if (password !== undefined) doc['credentials'] = UserStore.credentials(user, password, mechanisms);
    if (roles !== undefined) doc['roles'] = roles;
    if ('customData' in cmd) doc['customData'] = cmd['customData'];
  });
  if (!found) throw userNotFound(user, ctx.db);
  return { ok: 1 };
}

function dropUser(cmd: Document, ctx: CommandContext): Document {
  const user = userName(cmd, 'dropUser');
  if (!ctx.state.users.remove(user, ctx.db)) throw userNotFound(user, ctx.db);
  return { ok: 1 };
}

function userInfoDocument(u: StoredUser, showPrivileges: boolean): Document {
  const doc: Document = { _id: `${u.db}.${u.user}`, user: u.user, db: u.db, roles: u.roles.map((r) => ({ role: r.role, db: r.db })) };
  if (u.customData !== undefined) doc['customData'] = u.customData;
  doc['mechanisms'] = Object.keys(u.credentials);
  if (showPrivileges) doc['inheritedPrivileges'] = mergePrivileges(u.roles.flatMap(rolePrivileges)).map(privilegeDocument);
  return doc;
}

/** usersInfo: 1 (this db's users), "name", {user, db}, an array of those, or {forAllDBs: true}. */
function usersInfo(cmd: Document, ctx: CommandContext): Document {
  const arg = cmd['usersInfo'];
  const { users } = ctx.state;
  let found: StoredUser[];
  if (arg !== null && typeof arg === 'object' && !Array.isArray(arg) && (arg as Document)['forAllDBs'] === true) found = users.list(undefined);
  else if (isNumeric(arg)) found = users.list(ctx.db);
  else {
    const names = Array.isArray(arg) ? (arg as unknown[]) : [arg];
    found = names.flatMap((n) => {
      const name = typeof n === 'string' ? { user: n, db: ctx.db } : { user: String((n as Document)['user']), db: String((n as Document)['db']) };
      const u = users.find(name.user, name.db);
      return u === undefined ? [] : [u];
    });
  }
  // Another user's entry needs viewUser on its db (user_management_commands.cpp, CmdUsersInfo).
  const session = sessionOf(ctx);
  if (ctx.state.options.auth === true && session.user !== undefined) {
    const { privileges } = sessionPrivileges(ctx, session);
    const self = session.user;
    const canView = (u: StoredUser) =>
      (u.user === self.user && u.db === self.db) || privileges.some((p) => p.actions.includes('viewUser') && 'db' in p.resource && (p.resource.db === '' || p.resource.db === u.db));
    const refused = found.find((u) => !canView(u));
    if (refused !== undefined) throw new DevServerError(DevServerCodes.Unauthorized, `not authorized on ${ctx.db} to execute command { usersInfo: ... }`);
  }
  return { users: found.map((u) => userInfoDocument(u, cmd['showPrivileges'] === true)), ok: 1 };
}

export const authCommands: Command[] = [
  { names: ['saslStart'], run: (cmd, ctx) => saslStart(cmd, ctx, ctx.db) },
  { names: ['saslContinue'], run: saslContinue },
  {
    names: ['logout'],
    run: (_cmd, ctx) => {
      sessionOf(ctx).logout();
      return { ok: 1 };
    },
  },
  { names: ['connectionStatus'], run: connectionStatus },
  { names: ['createUser'], run: createUser },
  { names: ['updateUser'], run: updateUser },
  { names: ['dropUser'], run: dropUser },
  { names: ['usersInfo'], run: usersInfo },
];
