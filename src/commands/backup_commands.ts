/**
 * The admin commands the proxy answers itself, from request document to reply
 * document: Percona's backupStart, backupStatus and backupThrottle, and our
 * backupVerify (backup_verify.ts). Everything else goes to mongod untouched.
 */
import type { CommandRequest, Document } from '../wire/command_message.js';
import type { ClientInfo, Interceptor } from '../proxy/interceptor.js';
import type { BackupService } from './backup_service.js';
import { authorize } from './authorization.js';
import { backupStatusReply } from './backup_status.js';
import { parseThrottle } from '../backup/units.js';
import { CommandError, ErrorCodes, errorReply } from '../errors.js';
import { checkNoTransaction, type UpstreamRole } from './session_options.js';
import { backupVerify, type VerifyService } from './backup_verify.js';
import { STRATEGY_CHOICES, type StrategyChoice } from '../backup/strategies/snapshot.js';

function isStrategyChoice(value: string): value is StrategyChoice {
  return (STRATEGY_CHOICES as readonly string[]).includes(value);
}

type Handler = (cmd: Document, client: ClientInfo) => Promise<Document> | Document;

export class BackupCommands implements Interceptor {
  private readonly handlers: ReadonlyMap<string, Handler>;

  /**
   * `upstream` tells whether mongod is a replica-set member, which decides its answer to a
   * transaction number (the composition asks mongod's `hello`: HelloUpstreamRole).
   * Without a `verifier`, backupVerify is not the proxy's: it goes to mongod.
   */
  constructor(
    private readonly backups: BackupService,
    private readonly upstream: UpstreamRole,
    verifier?: VerifyService,
  ) {
    const handlers = new Map<string, Handler>([
      ['backupStart', (cmd, client) => this.backupStart(cmd, client)],
      ['backupStatus', (_cmd, client) => {
        authorize(client, 'serverStatus');
        return backupStatusReply(this.backups.status());
      }],
      ['backupThrottle', (cmd, client) => this.backupThrottle(cmd, client)],
    ]);
    if (verifier !== undefined) {
      // It reads every byte of a backup, as backupStart writes them: the same privilege.
      handlers.set('backupVerify', (cmd, client) => {
        authorize(client, 'fsync');
        return backupVerify(cmd, verifier);
      });
    }
    this.handlers = handlers;
  }

  intercepts(commandName: string): boolean {
    return this.handlers.has(commandName);
  }

  async run(request: CommandRequest, client: ClientInfo): Promise<Document> {
    const handler = this.handlers.get(request.name);
    try {
      if (handler === undefined) throw new CommandError(ErrorCodes.CommandNotFound, `no such command: '${request.name}'`);
      if (request.db !== 'admin') {
        throw new CommandError(ErrorCodes.Unauthorized, `${request.name} may only be run against the admin database.`);
      }
      // mongod's order: the admin-only check, then the session fields, then the command.
      await checkNoTransaction(request.name, request.command, this.upstream);
      return await handler(request.command, client);
    } catch (err) {
      return errorReply(err);
    }
  }

  private async backupStart(cmd: Document, client: ClientInfo): Promise<Document> {
    authorize(client, 'fsync');
    const allow = cmd['allowWriteBlocking'];
    if (allow !== undefined && typeof allow !== 'boolean') {
      throw new CommandError(ErrorCodes.TypeMismatch, "backupStart option 'allowWriteBlocking' must be a boolean");
    }
    const strategy = cmd['strategy'];
    if (strategy !== undefined && typeof strategy !== 'string') {
      throw new CommandError(ErrorCodes.TypeMismatch, "backupStart option 'strategy' must be a string");
    }
    if (strategy !== undefined && !isStrategyChoice(strategy)) {
      throw new CommandError(ErrorCodes.BadValue, `backupStart option 'strategy' must be one of ${STRATEGY_CHOICES.join(', ')}; got '${strategy}'`);
    }
    const incrementalBase = cmd['incrementalBase'];
    if (incrementalBase !== undefined && typeof incrementalBase !== 'string') {
      throw new CommandError(ErrorCodes.TypeMismatch, "backupStart option 'incrementalBase' must be a string: the directory of an earlier backup");
    }
    const checksum = cmd['checksum'];
    if (checksum !== undefined && typeof checksum !== 'boolean') {
      throw new CommandError(ErrorCodes.TypeMismatch, "backupStart option 'checksum' must be a boolean");
    }
    if (checksum === true && incrementalBase === undefined) {
      throw new CommandError(ErrorCodes.BadValue, "backupStart option 'checksum: true' compares files with an incrementalBase, and none was given");
    }
    const started = await this.backups.start({
      destination: cmd['backupStart'],
      allowWriteBlocking: allow === true,
      ...(strategy === undefined ? {} : { strategy }),
      ...(incrementalBase === undefined ? {} : { incrementalBase, checksum: checksum === true }),
    });
    if (cmd['async'] === true) return { ok: 1, backupId: started.backupId };
    const { error } = await started.done;
    if (error !== undefined) throw new CommandError(error.code, error.errmsg, { codeName: error.codeName, extra: { ...error.extra } });
    return { ok: 1 };
  }

  private backupThrottle(cmd: Document, client: ClientInfo): Document {
    authorize(client, 'fsync');
    this.backups.setThrottle(parseThrottle(cmd['backupThrottle']));
    return { ok: 1 };
  }
}
