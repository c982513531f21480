/**
 * `hotbackup replay <dir> --to <uri> --from <secs,inc> --until <secs,inc>`: oplog files
 * replayed onto a server with applyOps (src/oplog/oplog_replay.ts). Wiring only: flags,
 * the driver, progress, one line for the outcome with its exit code. `restore --oplog`
 * runs the same replay through replayToServer.
 */
import { parseArgs } from 'node:util';
import { MongoClient, MongoError } from 'mongodb';
import { createLogger } from '../log.js';
import { DriverReplayTarget } from '../oplog/driver_replay_target.js';
import { OplogDirError } from '../oplog/oplog_files.js';
import { replayOplog, ReplayFailed, type ReplayResult } from '../oplog/oplog_replay.js';
import { compareOplogTs, formatOplogTs, parseOplogTs, type OplogTs } from '../oplog/oplog_ts.js';
import { abortOnSignal, EXIT_INTERRUPTED, UsageError } from './job_flags.js';
import { startReplayProgress } from './replay_progress.js';
import { redactUri, resolveUpstreamUri, UPSTREAM_PASSWORD_ENV } from './upstream_credentials.js';
import { failureReporter, parseSubcommandFlags } from './subcommand_flags.js';

const HELP = `Usage: hotbackup replay <dir> --to <uri> --from <secs,inc> --until <secs,inc>

Applies the oplog entries in <dir> (the oplog000000.bson, oplog000001.bson, … files
that \`hotbackup oplog\` writes) with a timestamp after --from and up to --until, in
order, to the server at <uri> with applyOps: mongobackup's --recovery -s … -t …. The
server may be the dev server or mongod; it is typically a standalone started on a
restored backup (\`hotbackup restore --oplog\` does all of it).

--from is exclusive: the target already holds everything up to it, as a backup holds
its last oplog entry. --until is inclusive. Before applying anything, the files are
read through once: a gap before --from, a torn or damaged file, entries out of order,
or files that end before --until refuse the replay and leave the target untouched.

Running it twice over the same range gives the same data.

Options:
  --to URI          the server to apply to                                [required]
  --password-file FILE
                    the password of the user --to names (mongodb://user@host/),
                    read from FILE (mode 600); or from HOTBACKUP_UPSTREAM_PASSWORD.
                    A password in --to works, but \`ps\` shows it to every user
  --from SECS,INC   the last entry the target already holds (exclusive)  [required]
  --until SECS,INC  the last entry to apply (inclusive)                  [required]
  -h, --help        this text

Exit codes:
  0    replayed: every entry of the range applied (or already there)
  1    stopped part-way (an entry the server refused): the entries before it are
       applied; fix the cause and run it again, which is safe
  2    usage error
  3    the server could not be reached or refused us before anything was applied
  4    refused by the oplog files (a gap, a torn or damaged file, entries out of
       order, files ending before --until): nothing was applied
  130  interrupted (Ctrl-C): the entries before it are applied; running it again is safe
`;

export const EXIT_REPLAY_STOPPED = 1;
export const EXIT_REPLAY_UNREACHABLE = 3;
export const EXIT_REPLAY_FILES_REFUSED = 4;

export interface ReplayRequest {
  dir: string;
  uri: string;
  from: OplogTs;
  until: OplogTs;
  /** Prefix of error lines: the subcommand that runs the replay. */
  command: string;
  /** The caller's own abort on SIGINT/SIGTERM (restore's); without it, the replay listens itself. */
  signal?: AbortSignal;
}

function summary(result: ReplayResult, request: ReplayRequest): string {
  const extras = [result.skipped > 0 ? `${result.skipped} already superseded by later entries` : '', result.ignored > 0 ? `${result.ignored} no-ops` : '']
    .filter((s) => s !== '')
    .join(', ');
  return `Replayed ${result.entries} oplog entries (${result.bytes} bytes) after ts ${formatOplogTs(request.from)} up to ${formatOplogTs(request.until)} onto ${redactUri(request.uri)}: ${result.applied} applied${extras === '' ? '' : `, ${extras}`}.\n`;
}

/** Aborts `controller` when `signal` does; call the result to stop forwarding. */
function forwardAbort(signal: AbortSignal, controller: AbortController): () => void {
  const onAbort = () => controller.abort(signal.reason);
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  return () => signal.removeEventListener('abort', onAbort);
}

/** Runs one replay with progress and prints its outcome; returns the exit code. */
export async function replayToServer(request: ReplayRequest): Promise<number> {
  const fail = failureReporter(request.command);
  const log = createLogger({ name: `hotbackup-${request.command}`, destination: process.stderr });
  const controller = new AbortController();
  const stopListening = request.signal === undefined ? abortOnSignal(controller) : forwardAbort(request.signal, controller);
  const progress = startReplayProgress(log);
  const client = new MongoClient(request.uri, { serverSelectionTimeoutMS: 10_000 });
  try {
    await client.connect();
    const result = await replayOplog({
      dir: request.dir,
      from: request.from,
      until: request.until,
      target: new DriverReplayTarget(client),
      progress,
      signal: controller.signal,
    });
    progress.stop();
    process.stdout.write(summary(result, request));
    return 0;
  } catch (err) {
    progress.stop();
    if (err instanceof OplogDirError) return fail(`cannot replay: ${err.message}; nothing was applied`, EXIT_REPLAY_FILES_REFUSED);
    const upTo = (ts: OplogTs | undefined) => (ts === undefined ? 'nothing was applied' : `entries up to ts ${formatOplogTs(ts)} are applied`);
    if (err instanceof ReplayFailed) return fail(`${err.message}; ${upTo(err.lastApplied)}, and running it again is safe`, EXIT_REPLAY_STOPPED);
    if (controller.signal.aborted) return fail(`${(controller.signal.reason as Error).message}; running it again is safe`, EXIT_INTERRUPTED);
    if (err instanceof MongoError) return fail(`${redactUri(request.uri)}: ${err.message}`, EXIT_REPLAY_UNREACHABLE);
    throw err;
  } finally {
    stopListening();
    await client.close();
  }
}

export async function runReplay(args: string[]): Promise<number> {
  const parsed = parseSubcommandFlags('replay', args, parseFlags, HELP);
  return 'exit' in parsed ? parsed.exit : replayToServer(parsed.flags);
}

function parseFlags(args: string[]): ReplayRequest | 'help' {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      to: { type: 'string' },
      from: { type: 'string' },
      until: { type: 'string' },
      'password-file': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help === true) return 'help';
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'name the oplog directory: hotbackup replay <dir> --to <uri> --from <secs,inc> --until <secs,inc>' : `one oplog directory at a time; got ${positionals.join(' ')}`);
  if (values.to === undefined || values.to === '') throw new UsageError('--to <uri> is required: the server to apply the entries to');
  if (values.from === undefined) throw new UsageError('--from <secs,inc> is required: the last entry the target already holds (a backup\'s last oplog entry)');
  if (values.until === undefined) throw new UsageError('--until <secs,inc> is required: the last entry to apply');
  const from = parseOplogTs(values.from, '--from');
  const until = parseOplogTs(values.until, '--until');
  if (compareOplogTs(until, from) < 0) throw new UsageError(`--until ${values.until} is before --from ${values.from}`);
  const resolved = resolveUpstreamUri({
    flag: values.to,
    passwordFile: values['password-file'],
    env: { [UPSTREAM_PASSWORD_ENV]: process.env[UPSTREAM_PASSWORD_ENV] },
  }) as { uri: string; passwordOnCommandLine: boolean };
  if (resolved.passwordOnCommandLine) process.stderr.write('hotbackup replay: warning: the password in --to is visible to every user of this machine (ps); use --password-file or HOTBACKUP_UPSTREAM_PASSWORD\n');
  return { dir: positionals[0] as string, uri: resolved.uri, from, until, command: 'replay' };
}
