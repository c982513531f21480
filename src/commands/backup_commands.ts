/**
 * The admin commands the proxy answers itself, from request document to reply
 * document: Percona's backupStart, backupStatus and backupThrottle, and our backupAbort,
 * backupVerify (backup_verify.ts) and backupJob for the scheduled job
 * (backup_job_command.ts). currentOp and killOp go to mongod, amended for the running
 * backup (current_op.ts). createUser and createRole go to mongod too, except from a
 * remote client that has not authenticated (localhost_exception.ts). Everything else
 * goes to mongod untouched.
 */
import type { CommandRequest, Document } from '../wire/command_message.js';
import { FORWARD, type ClientInfo, type Interceptor, type InterceptorResult, type Upstream } from '../proxy/interceptor.js';
import type { BackupService } from './backup_service.js';
import { Authorization, type AuthEnforcement } from './authorization.js';
import { backupStatusReply } from './backup_status.js';
import { checkKnownFields, parseBackupStart } from './backup_start_options.js';
import { BackupOperations } from './backup_operation.js';
import { CurrentOpCommands } from './current_op.js';
import { jobStatusDocument, runBackupJob, type BackupJobService } from './backup_job_command.js';
import { parseThrottle } from '../backup/units.js';
import { CommandError, ErrorCodes, errorReply } from '../errors.js';
import { checkNoTransaction, type UpstreamRole } from './session_options.js';
import { backupVerify, type VerifyService } from './backup_verify.js';
import type { Logger } from '../log.js';
import { checkLocalhostException, FIRST_USER_COMMANDS } from './localhost_exception.js';

/**
 * backupAbort with no backup running. IllegalOperation, in the words of mongod's own
 * command for ending a state that is not in effect: fsyncUnlock without a lock
 * (fsync.cpp, FSyncUnlockCommand, 7.0+: uassert(ErrorCodes::IllegalOperation,
 * "fsyncUnlock called when not locked", ...)). Not NoSuchKey or a success: a script that
 * meant to stop a backup should learn that none was running.
 */
export const NO_BACKUP_TO_ABORT = 'backupAbort called when no backup is running';

const NO_OPTIONS: ReadonlySet<string> = new Set();

type Handler = (cmd: Document, client: ClientInfo, upstream: Upstream) => Promise<Document> | Document;

export class BackupCommands implements Interceptor {
  private readonly handlers: ReadonlyMap<string, Handler>;
  private readonly operations = new BackupOperations();
  private readonly currentOps: CurrentOpCommands;
  private readonly job: BackupJobService | undefined;
  private readonly authorization: Authorization;

  /**
   * `upstream` tells whether mongod is a replica-set member, which decides its answer to a
   * transaction number (the composition asks mongod's `hello`: HelloUpstreamRole).
   * Without a `verifier`, backupVerify is not the proxy's: it goes to mongod. `job` is the
   * scheduled job, when `serve --schedule` runs one.
   */
  constructor(
    private readonly backups: BackupService,
    private readonly upstream: UpstreamRole,
    options: { verifier?: VerifyService; job?: BackupJobService; log?: Logger; authEnforcement?: AuthEnforcement } = {},
  ) {
    const authorization = new Authorization(options.authEnforcement);
    this.authorization = authorization;
    this.currentOps = new CurrentOpCommands(backups, this.operations, options.log, authorization);
    this.job = options.job;
    const handlers = new Map<string, Handler>([
      ['backupStart', async (cmd, client, upstream) => {
        await authorization.authorize(client, upstream, 'backup', 'backupStart', cmd);
        return this.backupStart(cmd, client);
      }],
      ['backupStatus', async (cmd, client, upstream) => {
        await authorization.authorize(client, upstream, 'serverStatus', 'backupStatus', cmd);
        return backupStatusReply(this.backups.status(), this.job === undefined ? undefined : jobStatusDocument(this.job.status()));
      }],
      ['backupThrottle', async (cmd, client, upstream) => {
        await authorization.authorize(client, upstream, 'backup', 'backupThrottle', cmd);
        return this.backupThrottle(cmd);
      }],
      ['backupAbort', async (cmd, client, upstream) => {
        await authorization.authorize(client, upstream, 'backup', 'backupAbort', cmd);
        return this.backupAbort(cmd, client);
      }],
      ['backupJob', async (cmd, client, upstream) => {
        // It starts and deletes backups: the privilege of backupStart.
        await authorization.authorize(client, upstream, 'backup', 'backupJob', cmd);
        return runBackupJob(cmd, this.job);
      }],
    ]);
    const { verifier } = options;
    if (verifier !== undefined) {
      // It reads every byte of a backup, as backupStart writes them: the same privilege.
      handlers.set('backupVerify', async (cmd, client, upstream) => {
        await authorization.authorize(client, upstream, 'backup', 'backupVerify', cmd);
        return backupVerify(cmd, verifier);
      });
    }
    this.handlers = handlers;
  }

  intercepts(commandName: string, argumentType: number): boolean {
    return this.handlers.has(commandName) || FIRST_USER_COMMANDS.has(commandName) || this.currentOps.claims(commandName, argumentType);
  }

  async run(request: CommandRequest, client: ClientInfo, upstream: Upstream): Promise<InterceptorResult> {
    const handler = this.handlers.get(request.name);
    try {
      if (FIRST_USER_COMMANDS.has(request.name)) {
        await checkLocalhostException(this.authorization, client, upstream, request.name);
        return FORWARD;
      }
      if (handler === undefined) {
        // mongod judges these, on the client's own connection.
        if (request.name === 'currentOp' || request.name === 'killOp' || request.name === 'aggregate') return await this.currentOps.run(request, client, upstream);
        throw new CommandError(ErrorCodes.CommandNotFound, `no such command: '${request.name}'`);
      }
      if (request.db !== 'admin') {
        throw new CommandError(ErrorCodes.Unauthorized, `${request.name} may only be run against the admin database.`);
      }
      // mongod's order: the admin-only check, then the session fields, then the command.
      await checkNoTransaction(request.name, request.command, this.upstream);
      return await handler(request.command, client, upstream);
    } catch (err) {
      return errorReply(err);
    }
  }

  private async backupStart(cmd: Document, client: ClientInfo): Promise<Document> {
    const request = parseBackupStart(cmd);
    const started = await this.backups.start(request);
    // currentOp lists it as this client's backupStart, with the request as sent.
    this.operations.started(started.backupId, cmd, client.remoteAddress);
    if (request.async) return { ok: 1, backupId: started.backupId };
    // A client that goes away meanwhile does not stop the backup (as in Percona): nothing
    // here watches the connection, and the backup runs on in the engine.
    const { error } = await started.done;
    if (error !== undefined) throw new CommandError(error.code, error.errmsg, { codeName: error.codeName, extra: { ...error.extra } });
    return { ok: 1 };
  }

  private backupThrottle(cmd: Document): Document {
    this.backups.setThrottle(parseThrottle(cmd['backupThrottle']));
    return { ok: 1 };
  }

  /**
   * Stops the running backup and answers once it has ended, its snapshot released: then
   * mongod is unlocked, the cursor closed and the staging removed. `state` says how it
   * ended: `aborted`, or `complete` when the abort came as its manifest was being written.
   *
   * A release that failed (mongod may still be fsync-locked) is an error reply, not
   * `ok: 1` with a field beside it: drivers and mongosh raise on `ok: 0`, so a script
   * that stops a backup and then lets writers back cannot miss it, while a warning field
   * is read only by whoever thinks to look. The abort did happen, and the error says so
   * first; `backupId` and `state: "failed"` come with it, as backupStatus.last has them.
   */
  private async backupAbort(cmd: Document, client: ClientInfo): Promise<Document> {
    checkKnownFields(cmd, NO_OPTIONS);
    const attempt = this.backups.abort(`{backupAbort: 1} from ${client.remoteAddress}`);
    if (attempt.kind === 'none') throw new CommandError(ErrorCodes.IllegalOperation, NO_BACKUP_TO_ABORT);
    const outcome = await attempt.done;
    // After an abort, every other error becomes the abort's Interrupted (BackupRun.failure): a failed end is a failed release.
    if (attempt.kind === 'aborting' && outcome?.state === 'failed' && outcome.error !== undefined) {
      const { error } = outcome;
      throw new CommandError(error.code, error.errmsg, { codeName: error.codeName, extra: { ...error.extra, backupId: attempt.backupId, state: 'failed' } });
    }
    const reply: Document = { backupId: attempt.backupId, state: outcome?.state ?? 'failed' };
    if (outcome === undefined) reply['info'] = 'the backup never began: its destination was refused';
    else if (attempt.kind === 'completing') reply['info'] = 'too late to abort: the backup was writing its manifest, and completed';
    else if (outcome.state === 'aborted') reply['info'] = `aborted; ${outcome.destination} has no manifest`;
    reply['ok'] = 1;
    return reply;
  }
}
