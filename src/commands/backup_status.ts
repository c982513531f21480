/**
 * backupStatus: Percona's `{inProgress, bytesCopied: NumberLong, filesCopied: int32, ok}`
 * plus what an operator watching a copy wants: totals, percent, rate, ETA, the
 * throttle, the phase, the current file, and the outcome of the previous backup.
 */
import { Int32, Long, Timestamp } from 'bson';
import type { Document } from '../wire/command_message.js';
import type { BackupOutcome, EngineStatus } from '../backup/engine_status.js';

function outcomeDocument(outcome: BackupOutcome): Document {
  const doc: Document = {
    ok: outcome.ok,
    // complete, aborted (backupAbort, killOp: code 11601) or failed: `ok` alone cannot tell the last two apart.
    state: outcome.state,
    backupId: outcome.backupId,
    destination: outcome.destination,
    strategy: outcome.strategy ?? null,
    strategyReason: outcome.strategyReason ?? null,
    writesBlockedMs: Long.fromNumber(outcome.writesBlockedMs),
    startedAt: outcome.startedAt,
    finishedAt: outcome.finishedAt,
    bytes: Long.fromNumber(outcome.bytes),
    files: new Int32(outcome.files),
    // An incremental backup's files taken from its base: not in `bytes`, which were copied.
    bytesReused: Long.fromNumber(outcome.progress.bytesReused),
    filesReused: new Int32(outcome.progress.filesReused),
    seconds: outcome.seconds,
    // Also on success: a backup that left out an optional file says which and why.
    warnings: [...outcome.warnings],
  };
  // A failed backup whose cleanup (an S3 server's unfinished uploads, its marker) is retried in the background.
  if (outcome.cleanup !== undefined) doc['cleanup'] = { state: outcome.cleanup.state, detail: outcome.cleanup.detail };
  if (outcome.error !== undefined) {
    doc['errmsg'] = outcome.error.errmsg;
    doc['code'] = outcome.error.code;
    doc['codeName'] = outcome.error.codeName;
  }
  return doc;
}

/** The reply for one status snapshot (BackupService.status()), with the scheduled job's `job` document when there is a job. */
export function backupStatusReply(status: EngineStatus, job?: Document): Document {
  const { running, last, throttleBytesPerSec } = status;
  // The running backup's counters, else the last one's: Percona kept them after the end.
  const progress = running?.progress ?? last?.progress;
  const reply: Document = {
    inProgress: running !== undefined,
    bytesCopied: Long.fromNumber(progress?.bytesCopied ?? 0),
    filesCopied: new Int32(progress?.filesCopied ?? 0),
    bytesReused: Long.fromNumber(progress?.bytesReused ?? 0),
    filesReused: new Int32(progress?.filesReused ?? 0),
    bytesCompared: Long.fromNumber(progress?.bytesCompared ?? 0),
    bytesTotal: Long.fromNumber(progress?.bytesTotal ?? 0),
    filesTotal: new Int32(progress?.filesTotal ?? 0),
    percent: progress?.percent ?? 0,
    throttleBytesPerSec: Long.fromNumber(throttleBytesPerSec),
  };
  if (running !== undefined) {
    const eta = running.progress.etaSecs;
    Object.assign(reply, {
      bytesPerSec: Long.fromNumber(Math.round(running.progress.bytesPerSec)),
      etaSecs: eta === undefined ? null : Math.ceil(eta),
      backupId: running.backupId,
      destination: running.destination,
      strategy: running.strategy ?? null,
      strategyReason: running.strategyReason ?? null,
      writesBlockedMs: Long.fromNumber(running.writesBlockedMs),
      phase: running.phase,
      startedAt: running.startedAt,
      // Set while it stops: who aborted it (backupAbort or killOp, and from where).
      ...(running.abortedBy === undefined ? {} : { abortedBy: running.abortedBy }),
      ...(running.extendTo === undefined ? {} : { extendTo: new Timestamp({ t: running.extendTo.t, i: running.extendTo.i }) }),
      // phase 'extending': what the extension waits for (the majority commit point), until it copies.
      ...(running.waitingFor === undefined ? {} : { waitingFor: running.waitingFor }),
      currentFiles: [...running.progress.currentFiles],
    });
  }
  if (last !== undefined) reply['last'] = outcomeDocument(last);
  if (job !== undefined) reply['job'] = job;
  reply['ok'] = 1;
  return reply;
}
