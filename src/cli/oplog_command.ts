/**
 * `hotbackup oplog --upstream URI --out DIR [--from <secs,inc>] [--rotate-size SIZE]`:
 * mongobackup's `--backup --stream -s <secs>,<inc>`. Wiring only (restic's cmd_*.go):
 * flags, the upstream's credentials (as `serve` takes them), the driver's oplog source,
 * src/oplog/oplog_streamer.ts, progress, and on SIGINT/SIGTERM mongobackup's two lines:
 * how far the files reach, and the --from that resumes from there.
 */
import { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { createLogger, type LogFormat, type Logger } from '../log.js';
import { parseThrottle } from '../backup/units.js';
import { DriverOplogSource, driverErrorJudge } from '../oplog/driver_oplog_source.js';
import { OplogDirError } from '../oplog/oplog_files.js';
import { streamOplog, type StreamResult } from '../oplog/oplog_streamer.js';
import { formatOplogTs, formatMongobackup, parseOplogTs, type OplogTs } from '../oplog/oplog_ts.js';
import { NoOplog, OplogGap, StreamRefusal } from '../oplog/stream_errors.js';
import { StreamProgress } from '../oplog/stream_progress.js';
import { abortOnSignal, UsageError } from './job_flags.js';
import { startStreamReporter } from './oplog_progress.js';
import { redactUri, resolveUpstreamUri, UPSTREAM_PASSWORD_ENV, UPSTREAM_URI_ENV } from './upstream_credentials.js';
import { failureReporter, parseSubcommandFlags } from './subcommand_flags.js';

const DEFAULT_ROTATE = '64MB';

const HELP = `Usage: hotbackup oplog --upstream URI --out DIR [--from <secs>,<inc>] [--rotate-size SIZE]

Streams the oplog of a replica-set member (local.oplog.rs) into DIR, as numbered
BSON files (oplog000000.bson, oplog000001.bson, …: bsondump reads them), each
entry exactly as the server sent it, until stopped with Ctrl-C or SIGTERM. It then
prints how far DIR reaches and how to resume from there, as mongobackup does:

  Backed up to ts: Timestamp 1466234959000|1
  Use --from 1466234959,1 to resume.

Every batch is fsynced before it counts; a run killed outright (kill -9, a crash)
leaves at most a torn last entry, which the next run cuts off. A run never
rewrites a file an earlier run completed: it continues in the next file.

Where it starts:
  DIR holds entries        after the last of them (--from, if given, must be it)
  --from <secs>,<inc>      at that entry, into an empty DIR: it is written first,
                           so DIR shows where it starts (a backup's last oplog
                           entry, say: replay from it finds it there)
  neither                  at the newest entry in the oplog now, that one included
The entry it starts from or resumes after must still be in the oplog: that proves
no entry in between was lost. If the oplog has rolled over past it, it stops (exit 4): a new
full backup is needed. After a dropped connection or a failover it reconnects and
resumes from the last durable entry, with the same check.

Options:
  --upstream URI   the replica-set member (or the set), e.g.
                   mongodb://127.0.0.1:27018/?replicaSet=rs0; its user needs read
                   on local (the backup role has it)  [required, or ${UPSTREAM_URI_ENV}]
  --upstream-password-file FILE
                   the password of the URI's user (mode 0600), or
                   ${UPSTREAM_PASSWORD_ENV}: as \`serve\` takes them, never on
                   a command line that ps shows
  --out DIR        the directory of oplog files: created (one level, mode 0700)
                   when absent                                          [required]
  --from S,I       the entry with ts Timestamp(S, I): what an earlier run
                   printed (DIR ends there: resume after it), or a backup's
                   last oplog entry (an empty DIR: start at it)
  --rotate-size SIZE
                   start a new file before one would pass SIZE: a number of bytes,
                   or with a unit (binary: 64MB = 64 MiB)              [${DEFAULT_ROTATE}]
  --log-format json|pretty|auto
                   logs go to stderr: pretty on a terminal (with a progress
                   line), JSON lines elsewhere, progress every 10 s     [auto]
  -h, --help       this text

Exit codes:
  0    stopped by SIGINT or SIGTERM: every entry up to the printed ts is in DIR
  1    failed: the upstream unreachable at start, refused the user, or an I/O
       error in DIR (the two lines are printed if anything was backed up)
  2    usage error
  3    refused by DIR: --from is not its last entry, a file of it is missing or
       damaged, or another hotbackup oplog streams into it; nothing was written
  4    entries missing: the oplog no longer holds the entry to resume after (it
       has rolled over past it); a new full backup is needed
  5    the upstream has no oplog: a standalone, or a replica set not initiated
`;

interface Flags {
  upstream: string | undefined;
  passwordFile: string | undefined;
  out: string;
  from: OplogTs | undefined;
  rotateBytes: number;
  logFormat: LogFormat;
}

export async function runOplog(args: string[]): Promise<number> {
  const fail = failureReporter('oplog');
  const parsed = parseSubcommandFlags('oplog', args, parseFlags, HELP);
  if ('exit' in parsed) return parsed.exit;
  const { flags } = parsed;
  let uri: string;
  try {
    const upstream = resolveUpstreamUri({ flag: flags.upstream, passwordFile: flags.passwordFile, env: process.env });
    if (upstream === undefined) return fail(`--upstream is required (e.g. --upstream 'mongodb://127.0.0.1:27018/?replicaSet=rs0'), or ${UPSTREAM_URI_ENV}`, 2);
    uri = upstream.uri;
    if (upstream.passwordOnCommandLine) process.stderr.write(`hotbackup oplog: warning: the password in --upstream is visible to every user of this machine (ps); use --upstream-password-file or ${UPSTREAM_PASSWORD_ENV}\n`);
  } catch (err) {
    return fail((err as Error).message, 2);
  }

  const terminal = process.stderr.isTTY === true;
  const log = streamLogger(flags.logFormat, terminal);
  const controller = new AbortController();
  const stopListening = abortOnSignal(controller);
  const progress = new StreamProgress();
  let source: DriverOplogSource;
  try {
    source = await DriverOplogSource.connect(uri, { maxAwaitTimeMS: 1000, serverSelectionTimeoutMS: 10_000 });
  } catch (err) {
    stopListening();
    return fail(`cannot reach the upstream ${redactUri(uri)}: ${(err as Error).message}`, 1);
  }
  const reporter = startStreamReporter({ progress, log, stream: process.stderr, intervalMs: 10_000 });
  let result: StreamResult | undefined;
  try {
    result = await streamOplog({ source, judge: driverErrorJudge, dir: flags.out, rotateBytes: flags.rotateBytes, from: flags.from, signal: controller.signal, log, progress });
  } catch (err) {
    reporter.stop();
    const backedUpTo = progress.snapshot().newestTs;
    if (err instanceof StreamRefusal || err instanceof OplogDirError) return fail(err.message, 3);
    if (err instanceof OplogGap) return fail(err.message, 4);
    if (err instanceof NoOplog) return fail(err.message, 5);
    if (backedUpTo !== undefined) printResume(backedUpTo);
    return fail((err as Error).message, 1);
  } finally {
    reporter.stop();
    stopListening();
    await source.close().catch(() => undefined);
  }
  if (result.backedUpTo === undefined) return fail('stopped before the first entry was written: nothing was backed up', 0);
  printResume(result.backedUpTo);
  return 0;
}

/** mongobackup's two lines, with our flag: `Use -s …` there, `Use --from …` here. */
function printResume(ts: OplogTs): void {
  process.stdout.write(`Backed up to ts: ${formatMongobackup(ts)}\nUse --from ${formatOplogTs(ts)} to resume.\n`);
}

/** Logs to stderr (stdout holds only the two lines, for scripts); on a terminal each line first erases the progress line. */
function streamLogger(format: LogFormat, terminal: boolean): Logger {
  if (!terminal) return createLogger({ name: 'hotbackup-oplog', format: format === 'pretty' ? 'pretty' : 'json', destination: process.stderr });
  const overLine = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      process.stderr.write(Buffer.concat([Buffer.from('\r\x1b[K'), chunk]), () => callback());
    },
  });
  return createLogger({ name: 'hotbackup-oplog', format: format === 'json' ? 'json' : 'pretty', destination: overLine });
}

function parseFlags(args: string[]): Flags | 'help' {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      upstream: { type: 'string' },
      'upstream-password-file': { type: 'string' },
      out: { type: 'string' },
      from: { type: 'string' },
      'rotate-size': { type: 'string', default: DEFAULT_ROTATE },
      'log-format': { type: 'string', default: 'auto' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help === true) return 'help';
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}': the directory goes with --out`);
  if (values.out === undefined || values.out === '') throw new UsageError('--out DIR is required: the directory of oplog files');
  const from = values.from === undefined ? undefined : parseOplogTs(values.from, '--from');
  const logFormat = values['log-format'];
  if (logFormat !== 'json' && logFormat !== 'pretty' && logFormat !== 'auto') throw new UsageError('--log-format must be json, pretty or auto');
  return { upstream: values.upstream, passwordFile: values['upstream-password-file'], out: values.out, from, rotateBytes: parseSize(values['rotate-size']), logFormat };
}

function parseSize(value: string): number {
  let bytes: number;
  try {
    bytes = parseThrottle(value);
  } catch {
    bytes = 0;
  }
  if (bytes < 1) throw new UsageError(`--rotate-size must be a positive number of bytes, or one with a unit such as 64MB; got '${value}'`);
  return bytes;
}
