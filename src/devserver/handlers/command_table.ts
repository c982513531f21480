/**
 * The command table, and the checks mongod makes before running any command:
 * known name, admin-only, shutdown, and the fsync lock for writers.
 */
import type { Document } from '../bson.js';
import { commandName } from '../bson.js';
import type { Command, CommandContext } from './handler.js';
import { handshakeCommands } from './hello.js';
import { serverInfoCommands } from './server_info.js';
import { writeCommands } from './write.js';
import { applyOpsCommands } from './apply_ops.js';
import { findAndModifyCommands } from './find_and_modify.js';
import { readCommands } from './read.js';
import { catalogCommands } from './catalog.js';
import { aggregateCommands } from './aggregate.js';
import { backupCommands } from './backup.js';
import { setParameterCommands } from './set_parameter.js';
import { currentOpCommands } from './operations.js';
import { authCommands, sessionPrivileges } from './auth_commands.js';
import { replicationCommands } from './replication.js';
import { checkCanRunHere } from '../replication/member_gate.js';
import { checkReadConcern, replyTimes } from '../replication/cluster_time.js';
import { writeConcernError } from '../replication/write_concern.js';
import type { OpTime } from '../replication/oplog.js';
import { CommandError } from '../../errors.js';
import { checkCommandAuthorization } from '../auth/command_privileges.js';
import { sessionIdOf } from '../sessions.js';
import { DevServerError, DevServerCodes } from '../dev_server_errors.js';
import { parseMaxTimeMS } from '../max_time.js';

export type { Command, CommandContext, ConnectionInfo } from './handler.js';
export { isAwaitableHello } from './hello.js';

const ALL_COMMANDS: readonly Command[] = [
  ...handshakeCommands,
  ...serverInfoCommands,
  ...writeCommands,
  ...applyOpsCommands,
  ...findAndModifyCommands,
  ...readCommands,
  ...catalogCommands,
  ...aggregateCommands,
  ...backupCommands,
  ...setParameterCommands,
  ...currentOpCommands,
  ...authCommands,
  ...replicationCommands,
];

/** With --auth: mongod's check before any command runs (auth/command_privileges.ts). */
function checkAuthorization(name: string, cmd: Document, ctx: CommandContext): void {
  const session = ctx.connection.auth;
  checkCommandAuthorization(name, cmd, ctx.db, {
    authenticated: session.user !== undefined,
    privileges: () => sessionPrivileges(ctx, session).privileges,
    localhostException: () => session.fromLocalhost && ctx.state.users.isEmpty(),
  });
}

/** Commands counted under their own opcounter rather than `command`. */
const COUNTED_ELSEWHERE = new Set(['insert', 'update', 'delete', 'find', 'getMore', 'aggregate']);

export class CommandDispatcher {
  private readonly byName = new Map<string, Command>();

  constructor(commands: readonly Command[] = ALL_COMMANDS) {
    for (const command of commands) {
      for (const name of command.names) this.byName.set(name, command);
    }
  }

  /**
   * Runs a command. On an initiated replica set every reply, an error's included,
   * carries `$clusterTime` and `operationTime` (replication/cluster_time.ts).
   */
  async dispatch(cmd: Document, ctx: CommandContext): Promise<Document> {
    const name = commandName(cmd);
    const written: { opTime?: OpTime | undefined } = {};
    try {
      const reply = await this.run(name, cmd, ctx, written);
      return withReplicationFields(reply, cmd, ctx, this.byName.get(name), written.opTime);
    } catch (err) {
      if (!(err instanceof CommandError) || ctx.state.replSet?.initiated !== true) throw err;
      throw new DevServerError(err.code, err.message, { codeName: err.codeName, extra: { ...err.extra, ...replyTimes(ctx.state, written.opTime) } });
    }
  }

  private async run(name: string, cmd: Document, ctx: CommandContext, written: { opTime?: OpTime | undefined }): Promise<Document> {
    const command = this.byName.get(name);
    if (command === undefined) {
      throw new DevServerError(DevServerCodes.CommandNotFound, `no such command: '${name}'`);
    }
    if (command.adminOnly === true && ctx.db !== 'admin') {
      throw new DevServerError(DevServerCodes.Unauthorized, `${name} may only be run against the admin database.`);
    }
    if (ctx.state.options.auth === true) checkAuthorization(name, cmd, ctx);
    if (ctx.state.shuttingDown) {
      throw new DevServerError(DevServerCodes.ShutdownInProgress, 'The server is in quiesce mode and will shut down');
    }
    // After authorization, as mongod's execCommandDatabase orders them.
    checkCanRunHere(name, cmd, ctx);
    checkReadConcern(cmd, ctx.state);
    if (!COUNTED_ELSEWHERE.has(name)) ctx.state.opcounters.command += 1;
    // Every command's maxTimeMS, a getMore's await time too, is checked before it runs
    // (service_entry_point_common.cpp, execCommandDatabase): no handler waits beyond INT_MAX.
    parseMaxTimeMS(cmd);
    if (command.isWrite === true) {
      const unlocked = ctx.state.fsyncLock.waitUntilWritable();
      if (unlocked !== undefined) await unlocked;
    }
    // mongod parses the session before running the command (initializeOperationSessionInfo).
    const running = command.run(cmd, { ...ctx, lsid: sessionIdOf(cmd) });
    // A write runs synchronously: the last oplog entry now is its own, whatever other
    // clients do before the reply goes out (mongod's per-client lastOp).
    if (!(running instanceof Promise)) {
      written.opTime = ctx.state.oplog?.lastApplied();
      return running;
    }
    const reply = await running;
    written.opTime = ctx.state.oplog?.lastApplied();
    return reply;
  }
}

/** Commands that take a write concern (supportsWriteConcern in mongod): the writes, and user management. */
function takesWriteConcern(command: Command | undefined, name: string): boolean {
  return command?.isWrite === true || ['createUser', 'updateUser', 'dropUser'].includes(name);
}

/** writeConcernError before `ok`, then `$clusterTime` and `operationTime`, as mongod's reply orders them. */
function withReplicationFields(reply: Document, cmd: Document, ctx: CommandContext, command: Command | undefined, opTime: OpTime | undefined): Document {
  if (ctx.state.replSet?.initiated !== true) return reply;
  const name = commandName(cmd);
  const wcError = reply['ok'] === 1 && takesWriteConcern(command, name) ? writeConcernError(cmd) : undefined;
  const out: Document = {};
  for (const [key, value] of Object.entries(reply)) {
    if (key === 'ok' && wcError !== undefined) out['writeConcernError'] = wcError;
    out[key] = value;
  }
  return { ...out, ...replyTimes(ctx.state, opTime) };
}
