/**
 * `hotbackup restore <dir> --to <dbpath> [--force [--no-precheck]] [--rate RATE]`: a backup back into a
 * dbpath, every checksum checked as it is copied (with `--root R --to-time T`: the backup
 * src/backup/point_in_time_choice.ts picks, then R/oplog replayed up to T). Wiring only (restic's
 * cmd_restore.go): flags, a throttle, a progress line on a terminal,
 * src/backup/restorer.ts, and one line for the outcome with its exit code.
 */
import { parseArgs } from 'node:util';
import { BackupRefusal } from '../backup/backup_dir.js';
import { ProgressCounters } from '../backup/progress.js';
import { describeRestore, restoreBackup, RestoreStopped } from '../backup/restorer.js';
import { TargetRefusal } from '../backup/restore_target.js';
import { TokenBucket } from '../backup/throttle.js';
import { abortOnSignal, EXIT_INTERRUPTED, JOB_FLAG_OPTIONS, JOB_FLAGS_HELP, parseConcurrency, parseRate, UsageError } from './job_flags.js';
import { startProgressLine } from './progress_line.js';
import { formatOplogTs, parseOplogTs, parsePointInTime, type OplogTs } from '../oplog/oplog_ts.js';
import { choosePointInTimeBackup, PointInTimeRefusal } from '../backup/point_in_time_choice.js';
import { replayOntoRestore } from './restore_oplog.js';
import { failureReporter, parseSubcommandFlags } from './subcommand_flags.js';
import { isS3Url, parseS3Url } from '../s3/s3_location.js';
import { s3SettingsFromEnvironment } from '../s3/s3_client.js';
import { s3BackupReader } from '../s3/s3_reader.js';
import type { BackupReader } from '../backup/backup_reader.js';

const HELP = `Usage: hotbackup restore <dir | s3://bucket/prefix> --to <dbpath> [--force [--no-precheck]]
                         [--rate RATE] [--oplog <oplog dir> --until <secs,inc> [--mongod PATH]]
       hotbackup restore --root <root> --to-time <secs,inc | ISO time> --to <dbpath>
                         [--force [--no-precheck]] [--mongod PATH] [--rate RATE]

Copies the backup in <dir> into <dbpath>, checking every file's checksum against the
backup's manifest as it is copied; the first mismatch stops the restore. Start mongod
on <dbpath> afterwards. The backup itself is only read, never opened.

A backup on S3 (s3://bucket/prefix, as backupStart wrote it) is restored the same way:
its objects are listed and compared with the manifest first, then downloaded (several
at once, never whole in memory), each hashed on its way into <dbpath>. The S3 server and
credentials come from the AWS environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY
(or AWS_PROFILE and a shared credentials file), AWS_REGION, and AWS_ENDPOINT_URL_S3 for
an S3-compatible server. --root takes a local backup root only.

Until the restore has finished, <dbpath> is marked incomplete: it holds
hotbackup-restore-incomplete.json, and its WiredTiger.turtle, WiredTiger.wt and
storage.bson are placeholders that mongod and WiredTiger refuse, so mongod does not
start on a restore that stopped half-way.

Options:
  --to DBPATH       the directory to restore into: empty, or absent under an
                    existing parent                                        [required]
  --force           restore into a non-empty DBPATH: DELETES everything in it
                    (never while a mongod runs there), once the backup has been
                    read and every checksum checked (from S3: downloaded twice,
                    once to check, once to restore)
  --no-precheck     with --force, do not check the backup first: it is then read
                    once instead of twice, but a damaged backup stops the restore
                    with DBPATH's contents already deleted
  --oplog DIR       then bring the restore up to --until: start a server on DBPATH
                    as a standalone, replay the oplog files in DIR (what
                    \`hotbackup oplog\` writes) from the backup's own last oplog
                    entry up to --until, and stop the server cleanly
                    (\`hotbackup replay --help\` says what is checked)
  --until SECS,INC  with --oplog: the last oplog entry to apply (inclusive)
  --root ROOT       instead of <dir>: a point-in-time restore over a backup root
                    (what \`hotbackup list ROOT\` reads) whose ROOT/oplog holds the
                    streamed oplog (\`hotbackup oplog --out ROOT/oplog\`, or serve
                    --stream-oplog). Picks the newest complete backup (manifest
                    present, verified or not) whose copy ends at or before
                    --to-time (its manifest's oplog end, or extendedTo when it was
                    extended), prints which and why, then does exactly
                    \`restore <that backup> --to DBPATH --oplog ROOT/oplog --until T\`.
                    Refused (exit 4, nothing written) when ROOT has no oplog/, holds
                    the backups of several dbpaths or mongods, or has no such backup
  --to-time T       with --root: the point to restore to: <secs,inc> (as --until),
                    or an ISO-8601 UTC time to the second, 2026-11-30T14:06:59Z,
                    meaning every entry of that second and before
  --mongod PATH     with --oplog or --root: replay through this mongod, the version that wrote
                    the backup (a real mongod's backup: mongod 7.0 writes WiredTiger
                    11.x). It is started twice on 127.0.0.1 and a free port: first
                    with recoverFromOplogAsStandalone and
                    takeUnstableCheckpointOnShutdown (the backup's own oplog past its
                    checkpoint), then as a plain standalone for the replay; stopped
                    with {shutdown: 1} each time. Its output goes to
                    <DBPATH>.restore-mongod.log, beside DBPATH. Without --mongod the
                    dev server replays, and only onto files its own WiredTiger (3.2)
                    wrote: anything else is refused before it starts (exit 5)
  --mongod-timeout SECS
                    with --mongod: how long mongod may take to answer after it
                    starts, its startup recovery included                  [3600]
${JOB_FLAGS_HELP}
  -h, --help        this text

Exit codes:
  0    restored: every file copied, and every checksum matched
  1    stopped part-way (a checksum mismatch, an I/O error): DBPATH is marked incomplete
  2    usage error
  3    refused by DBPATH: not empty (without --force), a mongod running on it, not a
       directory, or inside the backup; nothing was written
  4    with --root: no backup to restore to --to-time (see --root); nothing was written
       refused by the backup: no manifest (incomplete, or not a backup), files
       missing or resized, or (the check before --force deletes) corrupted or
       unreadable, or S3 refused or could not be reached (S3's code is named);
       nothing was written or deleted
  5    with --oplog: the files are restored, but the replay was refused (a gap, a
       torn file, files ending before --until, a backup without oplog or already
       past --until, files the dev server's WiredTiger did not write, without
       --mongod), or stopped part-way, or the server would not start or stop cleanly;
       the message says how to finish it
  130  interrupted (Ctrl-C): DBPATH is marked incomplete; with --oplog, once the files
       are restored: the server is stopped, and the message says how to finish the job
`;

interface Flags {
  /** undefined with --root, until the backup is chosen. */
  backup: string | undefined;
  /** How to read a backup on S3 (s3://); undefined for a directory. */
  reader: BackupReader | undefined;
  root: string | undefined;
  oplog: { dir: string; until: OplogTs; mongod: string | undefined; mongodStartTimeoutMs: number } | undefined;
  target: string;
  force: boolean;
  precheck: boolean;
  rate: number;
  concurrency: number | undefined;
}

export async function runRestore(args: string[]): Promise<number> {
  const fail = failureReporter('restore');
  const parsed = parseSubcommandFlags('restore', args, parseFlags, HELP);
  if ('exit' in parsed) return parsed.exit;
  const { flags } = parsed;
  if (flags.root !== undefined && flags.oplog !== undefined) {
    try {
      const choice = await choosePointInTimeBackup(flags.root, flags.oplog.until);
      process.stdout.write(`${choice.reason}\n`);
      flags.backup = choice.backup.path;
      flags.oplog.dir = choice.oplogDir;
    } catch (err) {
      if (err instanceof PointInTimeRefusal) return fail(`cannot restore to ${formatOplogTs(flags.oplog.until)}: ${err.message}; nothing was written`, 4);
      throw err;
    }
  }
  const backup = flags.backup as string;
  const controller = new AbortController();
  const stopListening = abortOnSignal(controller);
  const counters = new ProgressCounters();
  let progress = startProgressLine('restoring', counters);
  // One throttle for both passes (the check --force makes first, then the copy).
  const limiter = new TokenBucket(flags.rate);
  try {
    const result = await restoreBackup({
      backup,
      reader: flags.reader,
      target: flags.target,
      force: flags.force,
      precheck: flags.precheck,
      onPhase: (phase) => {
        progress.stop();
        progress = startProgressLine(phase, counters);
      },
      limiter,
      concurrency: flags.concurrency,
      progress: counters,
      signal: controller.signal,
    });
    progress.stop();
    if (result.removed.length > 0) process.stdout.write(`--force: deleted ${result.removed.length} entries that ${result.target} held.\n`);
    for (const note of result.notes) process.stdout.write(`note: ${note}\n`);
    if (flags.oplog === undefined) {
      process.stdout.write(`Restored ${describeRestore(result)} into ${result.target}; every checksum matched (${result.seconds.toFixed(1)} s). Start mongod with --dbpath ${result.target}.\n`);
      return 0;
    }
    process.stdout.write(`Restored ${describeRestore(result)} into ${result.target}; every checksum matched (${result.seconds.toFixed(1)} s).\n`);
    // The same signal handler through the replay: a signal while the server starts, replays
    // or stops must stop the server too (Node emits no 'exit' when a signal kills it).
    const code = await replayOntoRestore({ backup, dbpath: result.target, ...flags.oplog, oplogDir: flags.oplog.dir, signal: controller.signal });
    if (code === 0) process.stdout.write(`${result.target} holds the backup and the oplog up to ${formatOplogTs(flags.oplog.until)}. Start mongod with --dbpath ${result.target}.\n`);
    return code;
  } catch (err) {
    progress.stop();
    if (controller.signal.aborted && !(err instanceof RestoreStopped)) return fail(`${(controller.signal.reason as Error).message}: nothing was restored`, EXIT_INTERRUPTED);
    if (err instanceof TargetRefusal) return fail(err.message, 3);
    if (err instanceof BackupRefusal) return fail(`cannot restore: ${err.message}`, 4);
    if (err instanceof RestoreStopped) return fail(err.message, controller.signal.aborted ? EXIT_INTERRUPTED : 1);
    throw err;
  } finally {
    stopListening();
    flags.reader?.close?.();
  }
}

function parseFlags(args: string[]): Flags | 'help' {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      ...JOB_FLAG_OPTIONS,
      to: { type: 'string' },
      oplog: { type: 'string' },
      until: { type: 'string' },
      root: { type: 'string' },
      'to-time': { type: 'string' },
      mongod: { type: 'string' },
      'mongod-timeout': { type: 'string' },
      force: { type: 'boolean', default: false },
      'no-precheck': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help === true) return 'help';
  const root = values.root !== undefined || values['to-time'] !== undefined;
  if (root) {
    if (values.root === undefined || values.root === '' || values['to-time'] === undefined) throw new UsageError('--root <backup root> and --to-time <secs,inc | ISO time> go together: the backups, and the point to restore to');
    if (positionals.length > 0) throw new UsageError(`--root picks the backup itself: give no backup directory (got ${positionals.join(' ')})`);
    if (values.oplog !== undefined || values.until !== undefined) throw new UsageError('--root replays <root>/oplog, and --to-time is its --until: drop --oplog and --until');
  } else if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'name the backup directory: hotbackup restore <dir> --to <dbpath>' : `one backup at a time; got ${positionals.join(' ')}`);
  if (values.to === undefined || values.to === '') throw new UsageError('--to <dbpath> is required: the directory to restore into');
  if (values['no-precheck'] === true && values.force !== true) throw new UsageError('--no-precheck goes with --force: only a restore into a non-empty target checks the backup first');
  if ((values.oplog === undefined) !== (values.until === undefined)) throw new UsageError('--oplog <dir> and --until <secs,inc> go together: the oplog files to replay, and the last entry to apply');
  if (values.oplog === undefined && !root && (values.mongod !== undefined || values['mongod-timeout'] !== undefined)) throw new UsageError('--mongod and --mongod-timeout go with --oplog: the mongod replays the oplog onto the restore');
  if (values.mongod === '') throw new UsageError('--mongod needs the path of the mongod binary');
  if (values['mongod-timeout'] !== undefined && values.mongod === undefined) throw new UsageError('--mongod-timeout goes with --mongod');
  if (root && isS3Url(values.root)) throw new UsageError('--root takes a local backup root; for a backup on S3, pick it with `hotbackup list s3://…` and restore it with --oplog and --until');
  if (isS3Url(values.oplog)) throw new UsageError('--oplog takes a local directory of oplog files (what `hotbackup oplog` writes), not an S3 location');
  const s3 = !root && isS3Url(positionals[0]) ? parseS3Url(positionals[0], 'The backup') : undefined;
  const timeoutSecs = Number(values['mongod-timeout'] ?? '3600');
  if (!Number.isFinite(timeoutSecs) || timeoutSecs <= 0) throw new UsageError(`--mongod-timeout must be a positive number of seconds; got ${values['mongod-timeout']}`);
  return {
    backup: root ? undefined : (positionals[0] as string),
    reader: s3 === undefined ? undefined : s3BackupReader(s3, { settings: s3SettingsFromEnvironment() }),
    root: root ? values.root : undefined,
    // With --root the oplog directory is <root>/oplog, filled in once the root is read.
    oplog: root
      ? { dir: '', until: parsePointInTime(values['to-time'] as string, '--to-time'), mongod: values.mongod, mongodStartTimeoutMs: timeoutSecs * 1000 }
      : values.oplog === undefined
        ? undefined
        : { dir: values.oplog, until: parseOplogTs(values.until as string, '--until'), mongod: values.mongod, mongodStartTimeoutMs: timeoutSecs * 1000 },
    target: values.to,
    force: values.force === true,
    precheck: values['no-precheck'] !== true,
    rate: parseRate(values.rate),
    concurrency: parseConcurrency(values.concurrency),
  };
}

