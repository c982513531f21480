/**
 * backupVerify inside the proxy: one verify at a time, its hashing on the copy threads
 * (checker.ts, hash_files.ts), never on the forwarding loop. Its reads draw from the
 * proxy's one throttle (backupThrottle), as a backup's do, unless the request names a
 * rate of its own. close() stops a running verify and waits for its threads to exit.
 *
 * A backup on S3 (`s3://bucket/prefix`) is verified too (src/s3/s3_verification.ts), with
 * the proxy's AWS environment: its objects are downloaded as streams on this thread, and
 * each chunk is fed to XXH3 here, a few microseconds per 64 KiB, between the forwarding
 * loop's other work; a thread would buy nothing but a copy of every chunk. `--backup-root`
 * confines what is verified (its record is written beside the manifest): a local root
 * refuses every s3:// URL, an s3:// root every URL not below it.
 */
import path from 'node:path';
import { TokenBucket } from './throttle.js';
import { verifyAndRecord } from './verification.js';
import { isBelow, isS3Url, parseS3Url, s3Url, type S3Location } from '../s3/s3_location.js';
import { s3SettingsFromEnvironment, type S3Settings } from '../s3/s3_client.js';
import { verifyS3AndRecord } from '../s3/s3_verification.js';
import type { VerifyVerdict } from './verify_verdict.js';
import { CommandError, ErrorCodes } from '../errors.js';
import type { Limiter } from './copy_pool.js';
import type { Logger } from '../log.js';
import type { BackupRoot } from './backup_root.js';

export interface VerifierOptions {
  /** The proxy's throttle: a verify without a rate of its own shares it with backups. */
  throttle: Limiter;
  /** Hash threads. Default: the copier's. */
  concurrency?: number;
  /** `serve --backup-root`: the directories verified must lie in it (backup_root.ts). Default: any absolute path. */
  root?: BackupRoot | undefined;
  /** An `s3://` --backup-root: the S3 backups verified must lie below it. Default (and with a local root: none allowed): any. */
  s3Root?: S3Location | undefined;
  /** Why a local directory is refused, when it is (an `s3://` --backup-root: backups are on S3 only). */
  localRefusal?: string | undefined;
  log: Logger;
}

export interface VerifyRequest {
  /** The backup directory: absolute, as the proxy's working directory means nothing to a client; or an s3:// URL. */
  directory: unknown;
  /** Bytes per second for this verify alone (0 = unlimited); default: the proxy's throttle. */
  rate?: number;
}

export class BackupVerifier {
  private running: { directory: string } | undefined;
  private readonly abort = new AbortController();
  private slot: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: VerifierOptions) {}

  /** Resolves with the verdict, good or bad; rejects only when the request itself is refused. */
  async verify(request: VerifyRequest): Promise<VerifyVerdict> {
    const { directory } = request;
    if (typeof directory !== 'string' || directory === '') throw new CommandError(ErrorCodes.BadValue, 'backupVerify must name the backup directory, e.g. {backupVerify: "/backups/2026-11-21"}');
    let s3: { location: S3Location; settings: S3Settings } | undefined;
    let resolved: string;
    if (isS3Url(directory)) {
      const location = parseS3Url(directory, 'backupVerify path');
      resolved = s3Url(location);
      // A verify writes its record beside the manifest: under a root, only below it.
      const { root, s3Root } = this.options;
      if (root !== undefined) throw new CommandError(ErrorCodes.BadValue, `backupVerify ${resolved} is refused: this proxy's --backup-root is the directory ${root.given}, and every backupVerify path must lie in it`);
      if (s3Root !== undefined && !isBelow(location, s3Root)) {
        throw new CommandError(ErrorCodes.BadValue, `backupVerify ${resolved} is refused: it is not below this proxy's --backup-root ${s3Url(s3Root)}`);
      }
      s3 = { location, settings: this.s3Settings() };
    } else {
      if (!path.isAbsolute(directory)) throw new CommandError(ErrorCodes.BadValue, `backupVerify path must be absolute: '${directory}'`);
      if (this.options.localRefusal !== undefined) throw new CommandError(ErrorCodes.BadValue, `backupVerify ${directory} is refused: ${this.options.localRefusal}`);
      // A verify reads the directory and writes its record there: under a root, only inside it.
      resolved = this.options.root === undefined ? path.resolve(directory) : await this.options.root.existingDirectory(directory, 'backupVerify path');
    }
    // After that await: the slot is checked and claimed in one synchronous step.
    if (this.abort.signal.aborted) throw new CommandError(ErrorCodes.ShutdownInProgress, 'the proxy is shutting down');
    if (this.running !== undefined) {
      throw new CommandError(ErrorCodes.ConflictingOperationInProgress, `A backupVerify is already running (of ${this.running.directory}): wait for it to finish.`);
    }
    const run = { directory: resolved };
    this.running = run;
    const done = this.run(run.directory, request.rate, s3);
    this.slot = done.catch(() => undefined);
    try {
      return await done;
    } finally {
      this.running = undefined;
    }
  }

  /** Stops a running verify and resolves once its threads have exited. */
  async close(): Promise<void> {
    this.abort.abort(new CommandError(ErrorCodes.InterruptedAtShutdown, 'backupVerify interrupted: the proxy is shutting down'));
    await this.slot;
  }

  /** The AWS environment's S3 settings, read at each request: a bad one refuses the request, not the proxy. */
  private s3Settings(): S3Settings {
    try {
      return s3SettingsFromEnvironment();
    } catch (err) {
      throw new CommandError(ErrorCodes.BadValue, `backupVerify of an S3 backup: ${(err as Error).message}`);
    }
  }

  private async run(directory: string, rate: number | undefined, s3: { location: S3Location; settings: S3Settings } | undefined): Promise<VerifyVerdict> {
    const { log } = this.options;
    const limiter = rate === undefined ? this.options.throttle : new TokenBucket(rate);
    log.info({ directory, throttleBytesPerSec: rate ?? 'proxy' }, 'backup verify started');
    // Rejects only when aborted (close()): with the signal's reason.
    const verdict =
      s3 === undefined
        ? await verifyAndRecord(
            directory,
            {
              limiter,
              signal: this.abort.signal,
              ...(this.options.concurrency === undefined ? {} : { concurrency: this.options.concurrency }),
            },
            'backupVerify',
          )
        : await verifyS3AndRecord(s3.location, s3.settings, { limiter, signal: this.abort.signal }, 'backupVerify');
    const summary = { directory, state: verdict.state, files: verdict.files, bytesHashed: verdict.bytesHashed, seconds: verdict.seconds, problems: verdict.problems.length, notes: verdict.notes };
    if (verdict.ok) log.info(summary, 'backup verify finished: the backup is complete');
    else log.warn({ ...summary, errmsg: verdict.error?.errmsg }, 'backup verify finished: the backup is not good');
    return verdict;
  }
}
