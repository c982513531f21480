/**
 * What verify says, one shape for both its faces: `hotbackup verify --json` prints it,
 * and `{backupVerify}` answers with it (as a mongod-style reply: `ok: 0` with errmsg,
 * code and codeName when the backup is not good). `state` is the one word to branch on;
 * `problems` lists every file that does not match the manifest.
 */
import { BackupRefusal, type RefusalState } from './backup_dir.js';
import type { Problem, VerifyReport } from './checker.js';
import { toCommandError } from './io_error.js';
import { formatBytes } from './units.js';
import { CommandError, ErrorCodes } from '../errors.js';

export type VerdictState = 'complete' | RefusalState;

export interface VerifyVerdict {
  ok: boolean;
  directory: string;
  state: VerdictState;
  /** When not ok. */
  error?: { code: number; codeName: string; errmsg: string; extra: Readonly<Record<string, unknown>> };
  /** The backup's, from its manifest or its marker. */
  backupId?: string;
  strategy?: string;
  startedAt?: string;
  finishedAt?: string;
  /** As the manifest lists them (0 without one). */
  files: number;
  bytes: number;
  bytesHashed: number;
  seconds: number;
  problems: Problem[];
  /** Things worth knowing that do not make the backup bad. */
  notes: string[];
}

/** At most this many problems are listed in full: a reply must stay far below 16 MiB. */
export const MAX_PROBLEMS_LISTED = 1000;

const COUNT_WORDS: Record<Problem['problem'], string> = { missing: 'missing', extra: 'extra', resized: 'resized', corrupted: 'corrupted', unreadable: 'unreadable' };

/** '1 corrupted (collection-7-123.wt), 2 missing (a.wt, b.wt)': the errmsg names the files. */
export function summarize(problems: readonly Problem[]): string {
  const byKind = new Map<Problem['problem'], string[]>();
  for (const p of problems) byKind.set(p.problem, [...(byKind.get(p.problem) ?? []), p.file]);
  return [...byKind]
    .map(([kind, files]) => `${files.length} ${COUNT_WORDS[kind]} (${files.slice(0, 5).join(', ')}${files.length > 5 ? `, and ${files.length - 5} more` : ''})`)
    .join(', ');
}

export function verdictOfReport(report: VerifyReport): VerifyVerdict {
  const { backup, problems } = report;
  const { manifest } = backup;
  const notes: string[] = [];
  if (backup.markerFromPurge) notes.push('a purge of it was cut short: its hotbackup-incomplete.json says it is being deleted by hotbackup purge, but its manifest is still there; the manifest decides, and the file can be removed');
  else if (backup.markerLeft) notes.push('a hotbackup-incomplete.json was left beside the manifest (its removal failed after the manifest was written): the manifest decides, and the file can be removed');
  const base = {
    directory: backup.directory,
    backupId: manifest.backupId,
    strategy: manifest.strategy,
    startedAt: manifest.startedAt,
    finishedAt: manifest.finishedAt,
    files: report.files,
    bytes: report.bytes,
    bytesHashed: report.bytesHashed,
    seconds: report.seconds,
    problems,
    notes,
  };
  if (problems.length === 0) return { ok: true, state: 'complete', ...base };
  const error = new CommandError(
    ErrorCodes.DataCorruptionDetected,
    `${backup.directory} is damaged: ${summarize(problems)} of the ${report.files} files (${formatBytes(report.bytes)}) its manifest lists. Do not restore it; take a new backup.`,
  );
  return { ok: false, state: 'damaged', error: errorFields(error), ...base };
}

/** A verify that could not start or finish: the backup's refusal, or an I/O error while looking. */
export function verdictOfError(err: unknown, directory: string, seconds = 0): VerifyVerdict {
  const refusal = err instanceof BackupRefusal ? err : new BackupRefusal('unreadable', directory, toCommandError(err, `verifying ${directory}`));
  const { marker } = refusal;
  return {
    ok: false,
    directory: refusal.directory,
    state: refusal.state,
    error: errorFields(refusal.error),
    ...(marker === undefined ? {} : { backupId: marker.backupId, startedAt: marker.startedAt, ...(marker.finishedAt === undefined ? {} : { finishedAt: marker.finishedAt }) }),
    files: 0,
    bytes: 0,
    bytesHashed: 0,
    seconds,
    problems: [],
    notes: [],
  };
}

function errorFields(error: CommandError): NonNullable<VerifyVerdict['error']> {
  return { code: error.code, codeName: error.codeName, errmsg: error.message, extra: error.extra };
}

/**
 * `hotbackup verify`'s exit code for a verdict (docs/backups.md):
 * 0 complete, every checksum matches; 1 damaged; 3 incomplete (running, aborted,
 * failed, interrupted); 4 not a hotbackup backup (absent, not ours, another version);
 * 5 could not be checked (an I/O error). 2 is a usage error, decided before any verdict.
 */
export function exitCodeOf(state: VerdictState): number {
  switch (state) {
    case 'complete':
      return 0;
    case 'damaged':
      return 1;
    case 'running':
    case 'aborted':
    case 'failed':
    case 'interrupted':
    case 'incomplete':
      return 3;
    case 'notABackup':
    case 'absent':
    case 'unsupported':
      return 4;
    case 'unreadable':
      return 5;
  }
}

/** The verdict as JSON-ready data: the list capped at MAX_PROBLEMS_LISTED, with how many were left out. */
export function verdictDocument(verdict: VerifyVerdict): Record<string, unknown> {
  const { error, problems, ...rest } = verdict;
  const doc: Record<string, unknown> = { ...rest, problems: problems.slice(0, MAX_PROBLEMS_LISTED) };
  if (problems.length > MAX_PROBLEMS_LISTED) doc['problemsNotListed'] = problems.length - MAX_PROBLEMS_LISTED;
  if (error !== undefined) Object.assign(doc, { errmsg: error.errmsg, code: error.code, codeName: error.codeName, ...error.extra });
  return doc;
}
