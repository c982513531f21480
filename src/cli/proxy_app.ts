/**
 * The whole proxy, built in one place for `hotbackup serve` and `hotbackup start` (and
 * the tests that run it in-process): the one MongoClient to mongod, and over it the
 * engine's seams (UpstreamAdmin, the `auto` snapshot source and its strategies), the
 * engine, the verifier (backupVerify), the backup commands with mongod's role, and the ProxyServer. Nothing else
 * wires these together. Never imports src/devserver: `start` brings its own upstream.
 */
import os from 'node:os';
import type { CopyIoClass, CopyWrites } from '../backup/copy_messages.js';
import fs from 'node:fs/promises';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { ConnectionString } from 'mongodb-connection-string-url';
import { redactUri } from './upstream_credentials.js';
import { DriverAuthEnforcement } from './auth_enforcement.js';
import { ProxyServer } from '../proxy/proxy_server.js';
import { BackupEngine } from '../backup/backup_engine.js';
import { DriverUpstreamAdmin } from '../backup/upstream_admin.js';
import { AutoSnapshotSource } from '../backup/strategies/select.js';
import { BackupCursorStrategy } from '../backup/strategies/backup_cursor_strategy.js';
import { FsyncLockStrategy } from '../backup/strategies/fsync_lock_strategy.js';
import { ReflinkStrategy } from '../backup/strategies/reflink_strategy.js';
import type { StrategyChoice } from '../backup/strategies/snapshot.js';
import { RunStateFile } from '../backup/run_state_file.js';
import { Recovery } from '../backup/recovery.js';
import { checkWorkDirs, workDirs } from '../backup/work_dirs.js';
import { claimStateDir, type StateDirClaim } from '../backup/state_dir_claim.js';
import { BackupVerifier } from '../backup/verifier.js';
import { BackupCommands } from '../commands/backup_commands.js';
import { BackupJob } from '../backup/backup_job.js';
import { parseSchedule, type Schedule } from '../backup/schedule_spec.js';
import { pathsOverlap } from '../backup/destination.js';
import { BackupRoot } from '../backup/backup_root.js';
import { proxyUid } from '../backup/trusted_dir.js';
import type { JobFlags } from './proxy_flags.js';
import { streamingJob } from './job_oplog.js';
import { OplogStreamingJob } from '../oplog/job_oplog_stream.js';
import { HelloUpstreamRole, type UpstreamRole } from '../commands/session_options.js';
import type { Logger } from '../log.js';
import { loadServerTls, type ServerTlsFiles } from '../tls/server_tls.js';
import { describeS3Endpoint, s3SettingsFromEnvironment, type S3Settings } from '../s3/s3_client.js';
import { isS3Url, parseS3Url } from '../s3/s3_location.js';
import { S3Recovery } from '../s3/s3_recovery.js';
import { S3CleanupRecords } from '../s3/s3_cleanup_records.js';
import { markInterrupted } from '../backup/backup_marker.js';
import { backupTargets } from './backup_targets.js';
import { cleanupBackoffFromEnvironment, type Backoff } from '../s3/s3_retry.js';
import { upstreamTlsOptions } from '../tls/upstream_tls.js';

export interface ProxyAppOptions {
  /** The mongod to front; a sidecar fronts one, the URI's first host. */
  upstreamUri: string;
  port: number;
  bind: string;
  /** mongod's dbpath as seen from this host. Default: asked of mongod (getCmdLineOpts). */
  dbpath?: string | undefined;
  allowWriteBlocking: boolean;
  /** The strategy of a backupStart that names none. Default 'auto'. */
  strategy?: StrategyChoice | undefined;
  /** Where reflink clones are staged. Default: work_dirs.ts, beside the dbpath. */
  stagingDir?: string | undefined;
  concurrency: number;
  /** How copy threads write, and their I/O class (copier.ts). Defaults 'direct' and 'best-effort'. */
  copyWrites?: CopyWrites | undefined;
  copyIoClass?: CopyIoClass | undefined;
  /** Milliseconds between the backup cursor's keepalives. Default 30 s. */
  backupCursorKeepaliveMs?: number;
  /** How long a client may send nothing in the middle of a message; 0: forever. Default 60 s. */
  partialMessageTimeoutMS?: number;
  /** Where the state file of a running backup lives (work_dirs.ts). Default: next to the dbpath. */
  stateDir?: string | undefined;
  /** How long the start waits for the cleanup after a dead proxy before it listens anyway. Default 15 s. */
  recoveryWaitSecs?: number;
  /**
   * Whether mongod takes transaction numbers (a replica-set member or mongos). Default:
   * its `hello`, asked once when first needed. Tests stand in a replica-set member.
   */
  upstreamRole?: UpstreamRole;
  /**
   * `--backup-root`: every destination, incrementalBase and backupVerify path must lie in
   * it (backup_root.ts). Default: the job's root when there is a job, else none (any
   * absolute path the proxy can write, said at start in a warning).
   */
  backupRoot?: string | undefined;
  /** A scheduled backup job (`--schedule`); its state lives in the state dir (job.json). */
  job?: JobFlags | undefined;
  /** TLS towards clients (`--tls-*`); absent: plain only. TLS towards mongod comes from the URI. */
  tls?: ServerTlsFiles | undefined;
  /** `--advertise host:port`: named in mongod's handshake replies instead of the member (src/proxy/advertised_hello.ts). */
  advertise?: string | undefined;
  /** `--source-name`: what manifests record as the machine (source.hostname); default os.hostname(). */
  sourceName?: string | undefined;
  /** Where `s3://` destinations go, and with what credentials. Default: the AWS environment (s3_client.ts), read at start. */
  s3?: S3Settings | undefined;
  /** Between background cleanup attempts of a failed S3 backup (s3_retry.ts). Default 1 s doubling to 60 s. */
  s3CleanupBackoff?: Backoff | undefined;
  log: Logger;
}

export interface ProxyApp {
  readonly proxy: ProxyServer;
  readonly engine: BackupEngine;
  /** The scheduled job, when there is one. */
  readonly job: BackupJob | undefined;
  /** The engine first (a running backup releases its cursor or fsync lock), then the proxy, then the client. */
  close(): Promise<void>;
  /** What is still running, for the log of a shutdown that ran out of time. */
  describeLeft(): Record<string, unknown>;
}

function splitHostPort(hostPort: string): { host: string; port: number } {
  const match = /^\[([^\]]+)\](?::(\d+))?$/.exec(hostPort) ?? /^([^:]+)(?::(\d+))?$/.exec(hostPort);
  if (match === null) throw new Error(`cannot read host and port from '${hostPort}'`);
  return { host: match[1] ?? '127.0.0.1', port: Number(match[2] ?? '27017') };
}

/**
 * mongod knows its dbpath; a relative one cannot be resolved from here, so it must be
 * given. Asked on a short-lived client of its own, so an unreachable mongod fails the
 * start in 10 s rather than the driver's default 30 s.
 */
async function discoverDbpath(upstreamUri: string): Promise<string> {
  const client = new MongoClient(upstreamUri, { directConnection: true, serverSelectionTimeoutMS: 10_000 });
  try {
    const opts = await client.db('admin').command({ getCmdLineOpts: 1 });
    const dbpath = (opts['parsed'] as { storage?: { dbPath?: unknown } } | undefined)?.storage?.dbPath;
    if (typeof dbpath !== 'string' || !path.isAbsolute(dbpath)) {
      throw new Error(`mongod reports dbPath ${JSON.stringify(dbpath)}; pass the absolute path with --dbpath`);
    }
    return dbpath;
  } finally {
    await client.close();
  }
}

/**
 * The backup root: an existing directory, outside the dbpath, the state dir and the
 * staging root, and not holding them (a backup of the dbpath must not hold its own
 * backups, and the others are the proxy's), by the path as given and by its real path.
 */
async function openBackupRoot(root: string, dbpath: string, dirs: { stateDir: string; stagingRoot: string }, log: Logger): Promise<BackupRoot> {
  const stats = await fs.stat(root).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`--backup-root ${root} cannot be used (${err.code ?? err.message}): give an existing directory; the proxy creates only each backup's own directory in it`, { cause: err });
  });
  if (!stats.isDirectory()) throw new Error(`--backup-root ${root} is not a directory`);
  const opened = await BackupRoot.open(root);
  for (const [name, dir] of [['the dbpath', dbpath], ['the state dir', dirs.stateDir], ['the staging dir', dirs.stagingRoot]] as const) {
    const real = await fs.realpath(dir).catch(() => dir);
    if (pathsOverlap(root, dir) || pathsOverlap(opened.real, real)) throw new Error(`--backup-root ${root} must be outside ${name} ${dir}, and must not contain it`);
  }
  // Only a local user who may write below the root can swap a link in after a check (backup_root.ts).
  if ((stats.mode & 0o022) !== 0) {
    log.warn({ backupRoot: opened.real, mode: (stats.mode & 0o7777).toString(8) }, '--backup-root is writable by other users: any of them can redirect a backup by replacing a directory in it with a symbolic link; make it writable by the proxy\'s user alone (chmod go-w)');
  }
  const euid = proxyUid();
  if (euid !== undefined && stats.uid !== euid) {
    log.warn({ backupRoot: opened.real, owner: stats.uid, proxyUid: euid }, '--backup-root is owned by another user than the proxy\'s: its owner can redirect a backup by replacing a directory in it with a symbolic link, and the directories the proxy walks below it must be the proxy\'s user\'s; chown it to the proxy\'s user');
  }
  return opened;
}

/** Builds and starts the proxy; the caller owns shutdown (ProxyApp.close). */
export async function startProxyApp(options: ProxyAppOptions): Promise<ProxyApp> {
  const { log } = options;
  const [first] = new ConnectionString(options.upstreamUri).hosts;
  if (first === undefined) throw new Error(`--upstream has no host: ${redactUri(options.upstreamUri)}`);
  const upstreamAddress = splitHostPort(first);
  // Before anything connects: a schedule that does not parse is a usage error.
  const schedule: Schedule | undefined = options.job === undefined ? undefined : parseSchedule(options.job.schedule);
  // Likewise a certificate, key or CA file that cannot be used, on either side.
  const serverTls = options.tls === undefined ? undefined : await loadServerTls(options.tls);
  // And an AWS_* value that is not valid (an endpoint that is no URL, say): s3:// backups need no flag, so they are checked always.
  const s3Settings = options.s3 ?? s3SettingsFromEnvironment(process.env);
  const s3CleanupBackoff = options.s3CleanupBackoff ?? cleanupBackoffFromEnvironment(process.env);
  const client = new MongoClient(options.upstreamUri, { directConnection: true, maxPoolSize: 4 });
  // Every TLS option the driver connection takes from the URI, for the forwarding sockets too.
  const upstreamTls = await upstreamTlsOptions(client);
  const authEnforcement = new DriverAuthEnforcement(options.upstreamUri);
  let claim: StateDirClaim | undefined;
  let stopJob: (() => Promise<void>) | undefined;
  try {
    const dbpath = options.dbpath ?? (await discoverDbpath(options.upstreamUri));
    const backupLog = log.child({ component: 'backup' });
    const dirs = workDirs(dbpath, { stateDir: options.stateDir, stagingRoot: options.stagingDir });
    const { stagingRoot } = dirs;
    await checkWorkDirs(dbpath, dirs);
    const rootDir = options.backupRoot ?? options.job?.backupRoot;
    if (options.job !== undefined && rootDir !== options.job.backupRoot) {
      throw new Error(`--backup-root is ${rootDir}, and the scheduled job's root is ${options.job.backupRoot}: give one root`);
    }
    const s3Root = rootDir !== undefined && isS3Url(rootDir) ? parseS3Url(rootDir, '--backup-root') : undefined;
    const backupRoot = rootDir === undefined || s3Root !== undefined ? undefined : await openBackupRoot(rootDir, dbpath, dirs, log);
    if (backupRoot === undefined && s3Root === undefined) {
      log.warn({ dbpath }, 'no --backup-root: a client may name any absolute path the proxy can write as a backupStart destination (outside the dbpath); start with --backup-root DIR to keep backups in one tree');
    }
    // Only the proxy's user reads what a backup holds (destinations, session ids).
    await fs.mkdir(dirs.stateDir, { recursive: true, mode: 0o700 }).catch((err: unknown) => {
      throw new Error(`cannot create the state dir ${dirs.stateDir} (${(err as Error).message}): pass --state-dir with a directory the proxy may write`, { cause: err });
    });
    // Held until close(): a second proxy on this state dir fails to start (state_dir_claim.ts).
    claim = await claimStateDir(dirs.stateDir);
    const journal = new RunStateFile(dirs.stateDir, backupLog);
    // Its own connection of one (and a watchdog): lock, watch and unlock must share it.
    const fsyncLock = () => new FsyncLockStrategy(options.upstreamUri, dbpath, backupLog);
    // No backup can start before the proxy listens, so a failure below leaves only the client and the claim to close.
    // Local directories by these rules, s3:// prefixes to S3; --backup-root says which kind (backup_targets.ts).
    // What S3 cleanups are owed, kept until done: a restart does not forget one (s3_cleanup_records.ts).
    const s3CleanupRecords = new S3CleanupRecords(dirs.stateDir);
    const targets = backupTargets({
      dbpath,
      policy: {
        root: backupRoot,
        protectedDirs: [
          { name: "the proxy's state dir", dir: dirs.stateDir },
          { name: 'the staging dir', dir: stagingRoot },
        ],
      },
      localRoot: backupRoot === undefined ? undefined : rootDir,
      s3Root,
      s3: s3Settings,
      s3CleanupBackoff,
      s3CleanupRecords,
      copyWrites: options.copyWrites,
      copyIoClass: options.copyIoClass,
      log: backupLog,
    });
    const engine = new BackupEngine({
      dbpath,
      ...(options.sourceName === undefined ? {} : { sourceName: options.sourceName }),
      upstream: new DriverUpstreamAdmin(client),
      snapshots: new AutoSnapshotSource({
        backupCursor: () => new BackupCursorStrategy(client, backupLog, { dbpath, keepaliveMs: options.backupCursorKeepaliveMs }),
        reflink: () =>
          new ReflinkStrategy({
            dbpath,
            stagingRoot,
            // The lock that covers the cloning: the state file names the backup reflink.
            fsyncLock: (list) => new FsyncLockStrategy(options.upstreamUri, dbpath, backupLog, { recordAs: 'reflink', list, releaseWithKnownCount: true }),
            flush: async () => void (await client.db('admin').command({ fsync: 1 })),
            log: backupLog,
          }),
        fsyncLock,
      }),
      allowWriteBlocking: options.allowWriteBlocking,
      strategy: options.strategy ?? 'auto',
      concurrency: options.concurrency,
      journal,
      targets: targets.targets,
      log: backupLog,
    });
    const s3Recovery = new S3Recovery({ settings: s3Settings, backoff: s3CleanupBackoff, records: s3CleanupRecords, log: backupLog });
    // Before the proxy listens: a dead proxy's lock, cursor and staging are released first (recovery.ts).
    const recovery = await Recovery.start({
      stateFile: journal.stateFile,
      stagingRoot: dirs.stagingRoot,
      upstreamUri: options.upstreamUri,
      engine,
      // A backup to S3 leaves multipart uploads and its marker there (s3_recovery.ts).
      markInterrupted: (destination, backupId, failure) => (isS3Url(destination) ? s3Recovery.markInterrupted(destination, backupId, failure) : markInterrupted(destination, backupId, failure)),
      log: backupLog,
      ...(options.recoveryWaitSecs === undefined ? {} : { firstAttemptMs: options.recoveryWaitSecs * 1000 }),
    });
    // Then the S3 cleanups owed by backups that ended before this start (a restart while S3 was down).
    await s3Recovery.resume();
    const role = options.upstreamRole ?? new HelloUpstreamRole(() => client.db('admin').command({ hello: 1 }));
    // Its reads share the engine's throttle: backupThrottle is the proxy's one limit.
    const verifier = new BackupVerifier({
      throttle: engine.throttle,
      concurrency: options.concurrency,
      root: backupRoot,
      ...(s3Root === undefined ? {} : { s3Root, localRefusal: `this proxy's --backup-root is ${rootDir}, so its backups are on S3: verify them by their s3:// URL` }),
      log: backupLog,
    });
    const gated = recovery.gate(engine);
    // Scheduled backups go through the same gate as a client's: none while a dead proxy's backup is cleaned up after.
    const job =
      options.job === undefined || schedule === undefined
        ? undefined
        : await BackupJob.open({
            schedule,
            root: options.job.backupRoot,
            keep: options.job.keep,
            fullEvery: options.job.fullEvery,
            stateDir: dirs.stateDir,
            backups: gated,
            source: { dbpath, host: new DriverUpstreamAdmin(client).host, hostname: options.sourceName ?? os.hostname() },
            log: log.child({ component: 'job' }),
          });
    const jobService = job === undefined || options.job?.streamOplog !== true ? job : streamingJob(job, options.upstreamUri, options.job.backupRoot, log);
    // Its first run may come before the proxy listens: a start that fails stops it and the engine.
    stopJob = async () => {
      const closing = job?.close();
      const streamStopped = jobService instanceof OplogStreamingJob ? jobService.close() : undefined;
      await recovery.stop();
      await engine.close();
      await s3Recovery.close();
      targets.close();
      await closing;
      await streamStopped;
    };
    const proxy = await ProxyServer.start({
      upstream: upstreamAddress,
      upstreamTls,
      tls: serverTls,
      port: options.port,
      bind: options.bind,
      advertise: options.advertise,
      interceptor: new BackupCommands(gated, role, { verifier, job: jobService, authEnforcement, log: log.child({ component: 'commands' }) }),
      partialMessageTimeoutMS: options.partialMessageTimeoutMS,
      log: log.child({ component: 'proxy' }),
    });
    log.info(
      { dbpath, backupRoot: backupRoot?.real ?? rootDir ?? null, s3Endpoint: describeS3Endpoint(s3Settings), job: job === undefined ? undefined : { state: job.status().state, schedule: schedule?.spec, root: options.job?.backupRoot }, strategy: options.strategy ?? 'auto', stateDir: dirs.stateDir, stagingRoot, allowWriteBlocking: options.allowWriteBlocking, concurrency: options.concurrency, copyWrites: options.copyWrites, copyIoClass: options.copyIoClass },
      'backup commands ready',
    );
    return {
      proxy,
      engine,
      job,
      async close() {
        // The job takes no new run, the engine interrupts the one running, and the job records it;
        // its oplog stream, if any, stops after its current write.
        const jobClosed = job?.close();
        const streamStopped = jobService instanceof OplogStreamingJob ? jobService.close() : undefined;
        await recovery.stop();
        await engine.close();
        await s3Recovery.close();
        targets.close();
        await jobClosed;
        await streamStopped;
        await verifier.close();
        await journal.settle().catch((err: unknown) => backupLog.error({ err: String(err) }, 'could not tidy the state file'));
        await proxy.close();
        await client.close();
        await authEnforcement.close();
        await claim?.release();
      },
      describeLeft() {
        const running = engine.status().running;
        return {
          backup: running === undefined ? null : { backupId: running.backupId, strategy: running.strategy, phase: running.phase },
        };
      },
    };
  } catch (err) {
    await stopJob?.().catch((stopErr: unknown) => log.error({ err: String(stopErr) }, 'stopping the scheduled job failed'));
    await client.close();
    await authEnforcement.close();
    await claim?.release();
    throw err;
  }
}
