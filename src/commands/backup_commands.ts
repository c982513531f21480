/**
 * The admin commands the proxy answers itself, from request document to reply
 * document: Percona's backupStart, backupStatus and backupThrottle. Everything
 * else goes to mongod untouched.
 */
import type { CommandRequest, Document } from '../wire/command_message.js';
import type { ClientInfo, Interceptor } from '../proxy/interceptor.js';
import type { BackupEngine } from '../backup/backup_engine.js';
import { authorize } from './authorization.js';
import { backupStatusReply } from './backup_status.js';
import { parseThrottle } from '../backup/units.js';
import { CommandError, ErrorCodes, errorReply } from '../errors.js';
import { checkNoTransaction, HelloUpstreamRole, type UpstreamRole } from './session_options.js';

type Handler = (cmd: Document, client: ClientInfo) => Promise<Document> | Document;

export class BackupCommands implements Interceptor {
  private readonly handlers: ReadonlyMap<string, Handler>;

  /**
   * `upstream` tells whether mongod is a replica-set member, which decides its answer to a
   * transaction number; by default its `hello` is asked, once, when first needed.
   */
  constructor(
    private readonly engine: BackupEngine,
    private readonly upstream: UpstreamRole = new HelloUpstreamRole(() => engine.upstreamHello()),
  ) {
    this.handlers = new Map<string, Handler>([
      ['backupStart', (cmd, client) => this.backupStart(cmd, client)],
      ['backupStatus', (_cmd, client) => {
        authorize(client, 'serverStatus');
        return backupStatusReply(this.engine);
      }],
      ['backupThrottle', (cmd, client) => this.backupThrottle(cmd, client)],
    ]);
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
    const started = await this.engine.start({ destination: cmd['backupStart'], allowWriteBlocking: allow === true });
    if (cmd['async'] === true) return { ok: 1, backupId: started.backupId };
    const outcome = await started.done;
    if (outcome.error !== undefined) throw outcome.error;
    return { ok: 1 };
  }

  private backupThrottle(cmd: Document, client: ClientInfo): Document {
    authorize(client, 'fsync');
    this.engine.setThrottle(parseThrottle(cmd['backupThrottle']));
    return { ok: 1 };
  }
}
