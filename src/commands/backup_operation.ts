/**
 * The running backup as an operation of mongod's currentOp: what `db.currentOp()` through
 * the proxy shows of it, and the opid `db.killOp()` takes to stop it, as Percona's users
 * found and killed their blocking backupStart.
 *
 * The opid: mongod reports its own as int32 (curop.cpp, reportCurrentOpForClient:
 * `infoBuilder->append("opid", static_cast<int>(opCtx->getOpID()))`), and its killOp
 * refuses any op outside int32 (kill_op_cmd_base.cpp, KillOpCmdBase::parseOpId:
 * uassert 26823 "Op ID cannot be represented with 32 bits"). So a number at or above
 * 2^32 is no opid mongod ever had or will have: the proxy's are 2^32 + 1, 2^32 + 2, ...
 * one per backup, reported as NumberLong. A killOp of one of them that is not running
 * goes on to mongod, which answers it with its own 26823.
 */
import { Long } from 'bson';
import type { Document } from '../wire/command_message.js';
import type { EngineStatus, RunningStatus } from '../backup/engine_status.js';

/** The proxy's opids are above every opid mongod can have. */
export const OPID_BASE = 2 ** 32;

interface Operation {
  readonly backupId: string;
  readonly opid: number;
  /** The backupStart request as the client sent it; undefined for a backup started otherwise. */
  command: Document | undefined;
  /** The client that sent it, `host:port`. */
  client: string | undefined;
}

/** The running backup, as currentOp lists it: its opid, and its entry of `inprog`. */
export interface RunningOperation {
  readonly opid: number;
  readonly backupId: string;
  readonly document: Document;
}

export class BackupOperations {
  #next = 1;
  /** The one backup that has an opid: the running one, or the last one seen running. */
  #current: Operation | undefined;

  /** Records who started backup `backupId`, and how; it keeps the opid it may already have. */
  started(backupId: string, command: Document, client: string): void {
    const op = this.#operation(backupId);
    op.command = command;
    op.client = client;
  }

  /** The running backup of `status` as an operation, or undefined when none runs. */
  running(status: EngineStatus, now: Date = new Date()): RunningOperation | undefined {
    const running = status.running;
    if (running === undefined) return undefined;
    const op = this.#operation(running.backupId);
    return { opid: op.opid, backupId: op.backupId, document: operationDocument(op, running, now) };
  }

  #operation(backupId: string): Operation {
    if (this.#current?.backupId !== backupId) {
      this.#current = { backupId, opid: OPID_BASE + this.#next++, command: undefined, client: undefined };
    }
    return this.#current;
  }
}

/**
 * The fields mongod gives an active command in currentOp (curop.cpp, CurOp::reportState),
 * and `msg` and `progress` as its index builds have them (ProgressMeter: "<name>:
 * <done>/<total> <percent>%"), plus `backup` with what backupStatus says of it.
 */
function operationDocument(op: Operation, running: RunningStatus, now: Date): Document {
  const micros = Math.max(0, (now.getTime() - running.startedAt.getTime()) * 1000);
  const { bytesCopied, bytesTotal, percent } = running.progress;
  const doc: Document = {
    type: 'op',
    desc: 'hotbackup',
    active: true,
    currentOpTime: now.toISOString(),
    opid: Long.fromNumber(op.opid),
  };
  if (running.abortedBy !== undefined) doc['killPending'] = true;
  Object.assign(doc, {
    secs_running: Long.fromNumber(Math.floor(micros / 1e6)),
    microsecs_running: Long.fromNumber(Math.floor(micros)),
    op: 'command',
    ns: 'admin.$cmd',
    command: op.command ?? { backupStart: running.destination, $db: 'admin' },
  });
  if (op.client !== undefined) doc['client'] = op.client;
  doc['msg'] =
    running.phase === 'copying' ? `Hot Backup: copying: ${bytesCopied}/${bytesTotal} ${Math.floor(percent)}%` : `Hot Backup: ${running.phase}`;
  doc['progress'] = { done: Long.fromNumber(bytesCopied), total: Long.fromNumber(bytesTotal) };
  Object.assign(doc, {
    numYields: 0,
    waitingForLock: false,
    locks: {},
    backup: {
      backupId: running.backupId,
      destination: running.destination,
      phase: running.phase,
      strategy: running.strategy ?? null,
      ...(running.abortedBy === undefined ? {} : { abortedBy: running.abortedBy }),
    },
  });
  return doc;
}
