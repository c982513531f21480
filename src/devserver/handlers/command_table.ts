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
import { findAndModifyCommands } from './find_and_modify.js';
import { readCommands } from './read.js';
import { catalogCommands } from './catalog.js';
import { aggregateCommands } from './aggregate.js';
import { backupCommands } from './backup.js';
import { setParameterCommands } from './set_parameter.js';
import { currentOpCommands } from './operations.js';
import { authCommands, sessionPrivileges } from './auth_commands.js';
import { checkCommandAuthorization } from '../auth/command_privileges.js';
import { sessionIdOf } from '../sessions.js';
import { DevServerError, DevServerCodes } from '../dev_server_errors.js';

export type { Command, CommandContext, ConnectionInfo } from './handler.js';
export { isAwaitableHello } from './hello.js';

const ALL_COMMANDS: readonly Command[] = [
  ...handshakeCommands,
  ...serverInfoCommands,
  ...writeCommands,
  ...findAndModifyCommands,
  ...readCommands,
  ...catalogCommands,
  ...aggregateCommands,
  ...backupCommands,
  ...setParameterCommands,
  ...currentOpCommands,
  ...authCommands,
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

  async dispatch(cmd: Document, ctx: CommandContext): Promise<Document> {
    const name = commandName(cmd);
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
    if (!COUNTED_ELSEWHERE.has(name)) ctx.state.opcounters.command += 1;
    if (command.isWrite === true) {
      const unlocked = ctx.state.fsyncLock.waitUntilWritable();
      if (unlocked !== undefined) await unlocked;
    }
    // mongod parses the session before running the command (initializeOperationSessionInfo).
    return command.run(cmd, { ...ctx, lsid: sessionIdOf(cmd) });
  }
}
