/**
 * `hotbackup verify <dir> [--rate RATE] [--json]`: is this backup what its manifest says?
 * Wiring only (restic's cmd_check.go): flags, a throttle, a progress line on a terminal,
 * src/backup/checker.ts, and the verdict printed with its exit code.
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

const HELP = `Usage: hotbackup verify <dir> [--rate RATE] [--json]

Checks the backup in <dir> against its manifest (hotbackup-manifest.json): every file
listed must be there, at its size, with its checksum (recomputed from every byte), and
nothing else may be. A directory without a manifest is said to be a backup still
running, aborted, failed or interrupted, or no backup at all.

The verdict on a backup's files, good or damaged, is recorded beside its manifest in
hotbackup-verified.json, which \`hotbackup list\` shows (VERIFIED).

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
  5    could not be checked: an I/O error while reading the directory
  130  interrupted (Ctrl-C)
`;

export async function runVerify(args: string[]): Promise<number> {
  const parsed = parseSubcommandFlags('verify', args, parseFlags, HELP);
  if ('exit' in parsed) return parsed.exit;
  const { directory, rate, concurrency, json } = parsed.flags;
  const controller = new AbortController();
  const stopListening = abortOnSignal(controller);
  const counters = new ProgressCounters();
  const progress = json ? { stop: () => undefined } : startProgressLine('verifying', counters);
  let verdict: VerifyVerdict;
  try {
    verdict = await verifyAndRecord(directory, { limiter: new TokenBucket(rate), concurrency, progress: counters, signal: controller.signal }, 'hotbackup verify');
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

function parseFlags(args: string[]): 'help' | { directory: string; rate: number; concurrency: number; json: boolean } {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: { ...JOB_FLAG_OPTIONS, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } },
  });
  if (values.help === true) return 'help';
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'name the backup directory: hotbackup verify <dir>' : `one directory at a time; got ${positionals.join(' ')}`);
  return { directory: positionals[0] as string, rate: parseRate(values.rate), concurrency: parseConcurrency(values.concurrency), json: values.json === true };
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
