/**
 * backupStatus: Percona's `{inProgress, bytesCopied: NumberLong, filesCopied: int32, ok}`
 * plus what an operator watching a copy wants: totals, percent, rate, ETA, the
 * throttle, the phase, the current file, and the outcome of the previous backup.
 */
import { Int32, Long } from 'bson';
import type { Document } from '../wire/command_message.js';
import type { BackupEngine, BackupOutcome } from '../backup/backup_engine.js';

function outcomeDocument(outcome: BackupOutcome): Document {
  const doc: Document = {
    ok: outcome.ok,
    backupId: outcome.backupId,
    destination: outcome.destination,
    strategy: outcome.strategy ?? null,
    startedAt: outcome.startedAt,
    finishedAt: outcome.finishedAt,
    bytes: Long.fromNumber(outcome.bytes),
    files: new Int32(outcome.files),
    seconds: outcome.seconds,
    // Also on success: a backup that left out an optional file says which and why.
    warnings: [...outcome.warnings],
  };
  if (outcome.error !== undefined) {
    doc['errmsg'] = outcome.error.message;
    doc['code'] = outcome.error.code;
    doc['codeName'] = outcome.error.codeName;
  }
  return doc;
}

export function backupStatusReply(engine: BackupEngine): Document {
  const { running, last, counters, throttleBytesPerSec } = engine.status();
  const reply: Document = {
    inProgress: running !== undefined,
    bytesCopied: Long.fromNumber(counters?.bytesCopied ?? 0),
    filesCopied: new Int32(counters?.filesCopied ?? 0),
    bytesTotal: Long.fromNumber(counters?.bytesTotal ?? 0),
    filesTotal: new Int32(counters?.filesTotal ?? 0),
    percent: counters?.percent ?? 0,
    throttleBytesPerSec: Long.fromNumber(throttleBytesPerSec),
  };
  if (running !== undefined) {
    const eta = running.counters.etaSecs;
    Object.assign(reply, {
      bytesPerSec: Long.fromNumber(Math.round(running.counters.bytesPerSec)),
      etaSecs: eta === undefined ? null : Math.ceil(eta),
      backupId: running.backupId,
      destination: running.destination,
      strategy: running.strategy ?? null,
      phase: running.phase,
      startedAt: running.startedAt,
      currentFiles: [...running.counters.currentFiles],
    });
  }
  if (last !== undefined) reply['last'] = outcomeDocument(last);
  reply['ok'] = 1;
  return reply;
}
