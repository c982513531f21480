/**
 * `hotbackup verify <dir | s3://bucket/prefix> [--rate RATE] [--json]`: is this backup what
 * its manifest says? Wiring only (restic's cmd_check.go): flags, a throttle, a progress
 * line on a terminal, src/backup/checker.ts (through src/s3/s3_verification.ts for a
 * backup on S3), and the verdict printed with its exit code.
 */
import { parseArgs } from 'node:util';
import { ProgressCounters } from '../backup/progress.js';
import { TokenBucket } from '../backup/throttle.js';
import { formatBytes } from '../backup/units.js';
import { exitCodeOf, verdictDocument, type VerifyVerdict } from '../backup/verify_verdict.js';
import { verifyAndRecord } from '../backup/verification.js';
import { abortOnSignal, EXIT_INTERRUPTED, JOB_FLAG_OPTIONS, JOB_FLAGS_HELP, parseConcurrency, parseRate, UsageError } from './job_flags.js';
import { startProgressLine } from './progress_line.js';
import { parseSubcommandFlags } from './subcommand_flags.js';
import { isS3Url, parseS3Url, type S3Location } from '../s3/s3_location.js';
import { s3SettingsFromEnvironment, type S3Settings } from '../s3/s3_client.js';
import { verifyS3AndRecord } from '../s3/s3_verification.js';

const HELP = `Usage: hotbackup verify <dir> [--rate RATE] [--json]
       hotbackup verify s3://bucket/prefix [--rate RATE] [--json]

Checks the backup in <dir> against its manifest (hotbackup-manifest.json): every file
listed must be there, at its size, with its checksum (recomputed from every byte), and
nothing else may be. A directory without a manifest is said to be a backup still
running, aborted, failed or interrupted, or no backup at all.

A backup on S3 is checked the same way: its objects are listed, then each is
downloaded (several at once, never whole in memory) and hashed. The S3 server and
credentials come from the AWS environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY
(or AWS_PROFILE and a shared credentials file), AWS_REGION, and AWS_ENDPOINT_URL_S3 for
an S3-compatible server.

The verdict on a backup's files, good or damaged, is recorded beside its manifest in
hotbackup-verified.json (an object beside the manifest's on S3), which \`hotbackup list\`
shows (VERIFIED).

Options:
${JOB_FLAGS_HELP}
  --json            print the result as one JSON document on stdout
  -h, --help        this text

Exit codes:
  0    complete: every file is there, at its size, and every checksum matches
  1    damaged: files missing, extra, resized, corrupted or unreadable (each listed)
  2    usage error
  3    incomplete: no manifest; still running, or aborted, failed or interrupted
  4    not a hotbackup backup: nothing there, not ours, or a manifest of another version
  5    could not be checked: an I/O error while reading the directory, or S3 refused
       (credentials, access) or could not be reached, for the listing or an object
       (after resuming it); S3's error code is named, and no record is changed
  130  interrupted (Ctrl-C)
`;

export async function runVerify(args: string[]): Promise<number> {
  const parsed = parseSubcommandFlags('verify', args, parseFlags, HELP);
  if ('exit' in parsed) return parsed.exit;
  const { directory, s3, rate, concurrency, json } = parsed.flags;
  const controller = new AbortController();
  const stopListening = abortOnSignal(controller);
  const counters = new ProgressCounters();
  const progress = json ? { stop: () => undefined } : startProgressLine('verifying', counters);
  let verdict: VerifyVerdict;
  try {
    const options = { limiter: new TokenBucket(rate), concurrency, progress: counters, signal: controller.signal };
    verdict = s3 === undefined ? await verifyAndRecord(directory, options, 'hotbackup verify') : await verifyS3AndRecord(s3.location, s3.settings, options, 'hotbackup verify');
  } catch (err) {
    if (!controller.signal.aborted) throw err;
    progress.stop();
    process.stderr.write(`hotbackup verify: ${(controller.signal.reason as Error).message}; nothing was decided about ${directory}\n`);
    return EXIT_INTERRUPTED;
  } finally {
    progress.stop();
    stopListening();
  }
  if (json) process.stdout.write(`${JSON.stringify(verdictDocument(verdict), null, 2)}\n`);
  else printVerdict(verdict);
  if (verdict.error !== undefined) process.stderr.write(`hotbackup verify: ${verdict.error.errmsg}\n`);
  return exitCodeOf(verdict.state);
}

interface Flags {
  directory: string;
  /** A backup on S3: where, and the environment's settings. */
  s3: { location: S3Location; settings: S3Settings } | undefined;
  rate: number;
  concurrency: number | undefined;
  json: boolean;
}

function parseFlags(args: string[]): 'help' | Flags {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: { ...JOB_FLAG_OPTIONS, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } },
  });
  if (values.help === true) return 'help';
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'name the backup directory: hotbackup verify <dir>' : `one directory at a time; got ${positionals.join(' ')}`);
  const directory = positionals[0] as string;
  const s3 = isS3Url(directory) ? { location: parseS3Url(directory, 'The backup'), settings: s3SettingsFromEnvironment() } : undefined;
  return { directory, s3, rate: parseRate(values.rate), concurrency: parseConcurrency(values.concurrency), json: values.json === true };
}

/** The report for people: one line per problem, then the verdict (errors also go to stderr, as one line). */
function printVerdict(verdict: VerifyVerdict): void {
  const out = (line: string) => process.stdout.write(`${line}\n`);
  for (const problem of verdict.problems) out(`${problem.problem.padEnd(10)} ${problem.file}: ${problem.detail}`);
  for (const note of verdict.notes) out(`note: ${note}`);
  if (verdict.ok) {
    out(
      `${verdict.directory}: complete. Backup ${verdict.backupId} (${verdict.strategy}, finished ${verdict.finishedAt}): ` +
        `${verdict.files} files, ${formatBytes(verdict.bytes)}, every checksum matches (checked in ${verdict.seconds.toFixed(1)} s).`,
    );
  }
}
