/**
 * The proxy's flags, parsed in one place for `hotbackup serve` and `hotbackup start`.
 * Each subcommand adds only its own few (serve's --upstream, the dbpath) and its usage
 * line; what the proxy does with them is src/cli/proxy_app.ts's business.
 */
import type { CopyIoClass, CopyWrites } from '../backup/copy_messages.js';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { LogFormat } from '../log.js';
import { DEFAULT_CONCURRENCY } from '../backup/copier.js';
import { DEFAULT_SHUTDOWN_TIMEOUT_SECS } from './shutdown.js';
import { DEFAULT_PARTIAL_MESSAGE_TIMEOUT_MS } from '../proxy/proxy_server.js';
import { STRATEGY_CHOICES, type StrategyChoice } from '../backup/strategies/snapshot.js';
import { isS3Url, parseS3Url, s3Url } from '../s3/s3_location.js';
import { DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS, TLS_MODES, type ServerTlsFiles, type TlsMode } from '../tls/server_tls.js';

export interface ProxyFlags {
  port: number;
  bind: string;
  allowWriteBlocking: boolean;
  /** The strategy of a backupStart that names none. */
  strategy: StrategyChoice;
  /** Where reflink clones are staged; default: work_dirs.ts. */
  stagingDir: string | undefined;
  concurrency: number;
  copyWrites: CopyWrites;
  copyIoClass: CopyIoClass;
  backupCursorKeepaliveMs: number;
  /** How long a client may send nothing in the middle of a message; 0: forever (partial_message_timeout.ts). */
  partialMessageTimeoutMS: number;
  shutdownTimeoutSecs: number;
  logFormat: LogFormat;
  /** Where the state file of a running backup lives; default: next to the dbpath (work_dirs.ts). */
  stateDir: string | undefined;
  /** How long the start waits for the cleanup after a dead proxy before it listens anyway (recovery.ts). */
  recoveryWaitSecs: number;
  /**
   * `--backup-root`, absolute: the tree every destination, incrementalBase and
   * backupVerify path must lie in, and where a scheduled job puts its backups; or an
   * `s3://` URL every destination and incrementalBase must lie below (local ones are
   * then refused); undefined: any absolute path the proxy can write, or any s3:// prefix.
   */
  backupRoot: string | undefined;
  /** The scheduled backup job (--schedule and its flags); undefined: none. */
  job: JobFlags | undefined;
  /** TLS towards clients, as given; read and checked by src/tls/server_tls.ts at start. */
  tls: ServerTlsFiles;
  /** `--advertise host:port`: the address mongod's handshake replies name instead of the member's (src/proxy/advertised_hello.ts). */
  advertise: string | undefined;
  /** `--source-name`: the name manifests record as `source.hostname`; undefined: os.hostname(). */
  sourceName: string | undefined;
}

export interface JobFlags {
  /** As given; parsed by src/backup/schedule_spec.ts when the proxy starts. */
  schedule: string;
  /** Absolute. */
  backupRoot: string;
  keep: number;
  fullEvery: number | undefined;
  /** While the job is Active, stream the upstream's oplog into <backupRoot>/oplog/ (src/oplog/job_oplog_stream.ts). */
  streamOplog: boolean;
}

/** The help lines of the flags parsed here, for each subcommand's usage text. */
export const PROXY_FLAGS_HELP = `  --port N                  port to listen on                                   [27017]
  --bind ADDR               address to listen on                                [127.0.0.1]
  --advertise HOST:PORT     the proxy's address as clients reach it: replica-set
                            members' hello replies name it instead of mongod's
                            own (me, hosts, primary), so a driver given
                            replicaSet= stays on the proxy          [none: untouched]
  --source-name NAME        the machine this proxy's backups are of, as manifests
                            record it: retention (--keep) counts each source apart,
                            and an incremental refuses another's base. In a
                            container set a stable name (the StatefulSet pod's, the
                            mongod member's): the default changes with each new
                            container, which then starts a new source  [the hostname]
  --allow-write-blocking    allow fsyncLock for the whole copy where mongod has no $backupCursor
  --strategy auto|backupCursor|reflink|fsyncLock
                            snapshot strategy of a backupStart that names none  [auto]
  --staging-dir DIR         where reflink clones wait to be copied, on the dbpath's
                            filesystem  [.<dbpath's name>.hotbackup/staging beside it]
  --concurrency N           copy threads (each ~12 MiB; more copy faster, and
                            cost the application more; docs/performance.md)     [${DEFAULT_CONCURRENCY}]
  --copy-writes direct|buffered   direct: O_DIRECT where the destination allows it,
                            so the disk is kept busy and mongod's flushes don't
                            queue behind the copy's dirty pages                 [direct]
  --copy-io-class best-effort|idle  the copy threads' I/O class; idle (ionice -c3)
                            yields the disk to mongod under mq-deadline and bfq,
                            at the risk of a slow copy on a busy disk     [best-effort]
  --backup-cursor-keepalive-ms N  ms between keepalive getMores on $backupCursor [30000]
  --partial-message-timeout-ms N  drop a client that sends nothing for N ms in the
                            middle of a message (half a header, a stalled body);
                            idle between messages is never timed out; 0: never  [60000]
  --state-dir DIR           where a running backup's state file lives, for the
                            cleanup after a crash      [<dbpath's parent>/.<dbpath's name>.hotbackup]
  --recovery-wait SECS      at start, how long to wait for that cleanup before
                            listening anyway (backupStart waits for it)         [15]
  --schedule SPEC           take a backup on a schedule: a cron expression
                            ('0 2 * * *', local time) or an interval ('every 6h',
                            'every 30m'); needs --backup-root and --keep
  --backup-root DIR|s3://BUCKET/PREFIX
                            backupStart destinations (and incrementalBase,
                            backupVerify paths) must lie in this tree, reached
                            through no '..' and no symbolic link; scheduled
                            backups go in <DIR>/<UTC time>; an existing directory.
                            An s3:// root: destinations must be s3:// prefixes
                            below it, local ones are refused (and with a local
                            root, s3:// ones are). S3 credentials, region and
                            endpoint come from the AWS environment:
                            AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (or
                            AWS_PROFILE), AWS_REGION, AWS_ENDPOINT_URL_S3
                            [none: any absolute path the proxy can write, or any s3:// prefix]
  --keep N                  the scheduled job's backups to keep, newest first;
                            older ones are deleted after each success
  --full-every K            every K-th scheduled backup is full, the others
                            incremental against the newest good one  [none: all incremental]
  --stream-oplog            while the job is Active, stream the upstream's oplog
                            into <backup root>/oplog/, as hotbackup oplog does
                            (a replica-set member only)
  --tls-mode disabled|allow|require
                            TLS towards clients, as mongod's net.tls.mode: allow
                            takes TLS and plain clients on the one port, require
                            refuses plain ones    [require with --tls-cert, else disabled]
                            (mongod instead refuses to start with a certificate
                            and no mode: docs/security.md, "TLS")
  --tls-cert FILE           the proxy's certificate (PEM; may hold the key too)
  --tls-key FILE            its private key (PEM)             [in --tls-cert's file]
  --tls-ca FILE             CA certificate(s) (PEM) that client certificates must
                            chain to; clients must then present one (mongod's
                            default with --tlsCAFile)
  --tls-allow-connections-without-certificates
                            with --tls-ca, let a client without a certificate in;
                            one with an invalid certificate is still refused
  --tls-handshake-timeout-ms N  with TLS, a new connection gets N ms to send its
                            first 16 bytes (TLS or plain?), then N ms more for a
                            TLS handshake; else it is closed                   [${DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS}]
  --shutdown-timeout SECS   on SIGTERM/SIGINT, how long the cleanup may take    [20]
                            (a second signal exits at once)
  --log-format json|pretty|auto                                                 [auto]
  -h, --help                this text
`;

export interface ProxyFlagsSpec {
  /** The subcommand's own string flags, each with its default (undefined: none). */
  own: Readonly<Record<string, string | undefined>>;
  /** --port's default, when not 27017 (`start` reads HOTBACKUP_PORT). */
  defaultPort?: string;
}

export type ParsedProxyFlags =
  | { help: true }
  | { help: false; proxy: ProxyFlags; own: Readonly<Record<string, string | undefined>> };

const LOG_FORMATS: readonly string[] = ['json', 'pretty', 'auto'];

function parseShutdownTimeout(value: string | undefined): number {
  const secs = Number(value ?? DEFAULT_SHUTDOWN_TIMEOUT_SECS);
  if (!Number.isFinite(secs) || secs < 0) throw new Error(`--shutdown-timeout must be a non-negative number of seconds, got '${value}'`);
  return secs;
}

/** A whole number of at least 1, as --keep and --full-every take it. */
function positiveCount(flag: string, value: string, meaning: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) throw new Error(`${flag} must be a whole number of at least 1 (${meaning}), got '${value}'`);
  return n;
}

/** A directory, made absolute; or an `s3://bucket/prefix` URL, checked and kept as its canonical form. */
function parseBackupRoot(root: string | undefined): string | undefined {
  if (root === '') throw new Error('--backup-root must name a directory or an s3:// URL');
  if (root === undefined) return undefined;
  if (!isS3Url(root)) return path.resolve(root);
  try {
    return s3Url(parseS3Url(root, '--backup-root'));
  } catch (err) {
    throw new Error(err instanceof Error ? err.message : String(err));
  }
}

/** --schedule with --backup-root and --keep (and --full-every), or none of them. */
function parseJobFlags(str: (name: string) => string | undefined, streamOplog: boolean): JobFlags | undefined {
  const schedule = str('schedule');
  const root = str('backup-root');
  const keep = str('keep');
  const fullEvery = str('full-every');
  if (schedule === undefined) {
    const stray = [keep === undefined ? '' : '--keep', fullEvery === undefined ? '' : '--full-every', streamOplog ? '--stream-oplog' : ''].filter((f) => f !== '');
    if (stray.length > 0) throw new Error(`${stray.join(', ')} ${stray.length === 1 ? 'belongs' : 'belong'} to a scheduled job: add --schedule (e.g. --schedule 'every 6h')`);
    return undefined;
  }
  if (root === undefined || root === '') throw new Error('--schedule needs --backup-root DIR: the directory the scheduled backups go into');
  // The job's catalog, retention and oplog stream work on a directory (backup_job.ts).
  if (isS3Url(root)) throw new Error(`--schedule needs a local --backup-root directory: scheduled backups to S3 (${root}) are not supported yet`);
  if (keep === undefined) throw new Error('--schedule needs --keep N: how many of its backups the job keeps (older ones are deleted after each success)');
  return {
    schedule,
    backupRoot: path.resolve(root),
    keep: positiveCount('--keep', keep, 'the newest backups to keep'),
    fullEvery: fullEvery === undefined ? undefined : positiveCount('--full-every', fullEvery, 'every K-th scheduled backup is full'),
    streamOplog,
  };
}

/** `--source-name`: any non-empty name without control characters (it is printed in list and purge). */
function parseSourceName(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (value.trim() === '' || /[\u0000-\u001f\u007f]/.test(value)) throw new Error(`--source-name must be a non-empty name without control characters, got '${value}'`);
  return value;
}

/**
 * `--advertise`: a host and port as a replica-set config names a member (`host:port`, an
 * IPv6 address in brackets), which is what drivers compare with the address they dialled.
 * Anything that could not be such a name is refused at start rather than handed to
 * drivers.
 */
export function parseAdvertise(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const match = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/.exec(value);
  const port = Number(match?.[2]);
  if (match === null || port < 1 || port > 65535) {
    throw new Error(`--advertise must be HOST:PORT as clients reach the proxy (e.g. backup-proxy.example:27018, [::1]:27018), got '${value}'`);
  }
  return value;
}

/** The client-side TLS flags; the files are read (and checked) when the proxy starts. */
function parseTlsFlags(str: (name: string) => string | undefined, allowConnectionsWithoutCertificates: boolean): ServerTlsFiles {
  const timeout = str('tls-handshake-timeout-ms') ?? String(DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS);
  const handshakeTimeoutMS = Number(timeout);
  if (!/^\d+$/.test(timeout) || !Number.isSafeInteger(handshakeTimeoutMS) || handshakeTimeoutMS < 1) {
    throw new Error(`--tls-handshake-timeout-ms must be a whole number of milliseconds, at least 1, got '${timeout}'`);
  }
  const certFile = str('tls-cert');
  const keyFile = str('tls-key');
  const caFile = str('tls-ca');
  const mode = str('tls-mode') ?? (certFile === undefined ? 'disabled' : 'require');
  if (!(TLS_MODES as readonly string[]).includes(mode)) throw new Error(`--tls-mode must be ${TLS_MODES.join(', ')}, got '${mode}'`);
  return {
    mode: mode as TlsMode,
    ...(certFile === undefined ? {} : { certFile: path.resolve(certFile) }),
    ...(keyFile === undefined ? {} : { keyFile: path.resolve(keyFile) }),
    ...(caFile === undefined ? {} : { caFile: path.resolve(caFile) }),
    allowConnectionsWithoutCertificates,
    handshakeTimeoutMS,
    flags: { cert: '--tls-cert', key: '--tls-key', ca: '--tls-ca', mode: '--tls-mode' },
  };
}

export function parseProxyFlags(args: string[], spec: ProxyFlagsSpec): ParsedProxyFlags {
  const own = Object.fromEntries(
    Object.entries(spec.own).map(([name, fallback]) => [name, fallback === undefined ? { type: 'string' as const } : { type: 'string' as const, default: fallback }]),
  );
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      ...own,
      port: { type: 'string', default: spec.defaultPort ?? '27017' },
      bind: { type: 'string', default: '127.0.0.1' },
      advertise: { type: 'string' },
      'source-name': { type: 'string' },
      'allow-write-blocking': { type: 'boolean', default: false },
      'stream-oplog': { type: 'boolean', default: false },
      strategy: { type: 'string', default: 'auto' },
      'staging-dir': { type: 'string' },
      concurrency: { type: 'string', default: String(DEFAULT_CONCURRENCY) },
      'copy-writes': { type: 'string', default: 'direct' },
      'copy-io-class': { type: 'string', default: 'best-effort' },
      'backup-cursor-keepalive-ms': { type: 'string', default: '30000' },
      'partial-message-timeout-ms': { type: 'string', default: String(DEFAULT_PARTIAL_MESSAGE_TIMEOUT_MS) },
      'shutdown-timeout': { type: 'string', default: String(DEFAULT_SHUTDOWN_TIMEOUT_SECS) },
      'state-dir': { type: 'string' },
      'recovery-wait': { type: 'string', default: '15' },
      'log-format': { type: 'string', default: 'auto' },
      schedule: { type: 'string' },
      'backup-root': { type: 'string' },
      keep: { type: 'string' },
      'full-every': { type: 'string' },
      'tls-mode': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'tls-ca': { type: 'string' },
      'tls-allow-connections-without-certificates': { type: 'boolean', default: false },
      'tls-handshake-timeout-ms': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help === true) return { help: true };
  const str = (name: string): string | undefined => {
    const value = (values as Record<string, string | boolean | undefined>)[name];
    return typeof value === 'string' ? value : undefined;
  };
  const port = Number(str('port'));
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be 0-65535, got '${str('port')}'`);
  const concurrency = Number(str('concurrency'));
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) throw new Error('--concurrency must be 1-64');
  const copyWrites = str('copy-writes');
  if (copyWrites !== 'direct' && copyWrites !== 'buffered') throw new Error(`--copy-writes must be direct or buffered, got '${copyWrites}'`);
  const copyIoClass = str('copy-io-class');
  if (copyIoClass !== 'idle' && copyIoClass !== 'best-effort') throw new Error(`--copy-io-class must be idle or best-effort, got '${copyIoClass}'`);
  const keepaliveMs = Number(str('backup-cursor-keepalive-ms'));
  if (!Number.isInteger(keepaliveMs) || keepaliveMs < 1) throw new Error('--backup-cursor-keepalive-ms must be a positive integer');
  const partialMessageTimeoutMS = Number(str('partial-message-timeout-ms'));
  if (!/^\d+$/.test(str('partial-message-timeout-ms') ?? '') || !Number.isSafeInteger(partialMessageTimeoutMS)) {
    throw new Error(`--partial-message-timeout-ms must be a whole number of milliseconds (0: never), got '${str('partial-message-timeout-ms')}'`);
  }
  const strategy = str('strategy') ?? 'auto';
  if (!(STRATEGY_CHOICES as readonly string[]).includes(strategy)) throw new Error(`--strategy must be one of ${STRATEGY_CHOICES.join(', ')}`);
  const stagingDir = str('staging-dir');
  if (stagingDir === '') throw new Error('--staging-dir must name a directory');
  const recoveryWaitSecs = Number(str('recovery-wait'));
  if (!Number.isFinite(recoveryWaitSecs) || recoveryWaitSecs < 0) throw new Error(`--recovery-wait must be a non-negative number of seconds, got '${str('recovery-wait')}'`);
  const logFormat = str('log-format') ?? 'auto';
  if (!LOG_FORMATS.includes(logFormat)) throw new Error('--log-format must be json, pretty or auto');
  return {
    help: false,
    proxy: {
      port,
      bind: str('bind') ?? '127.0.0.1',
      allowWriteBlocking: values['allow-write-blocking'] === true,
      strategy: strategy as StrategyChoice,
      stagingDir,
      concurrency,
      copyWrites,
      copyIoClass,
      backupCursorKeepaliveMs: keepaliveMs,
      partialMessageTimeoutMS,
      shutdownTimeoutSecs: parseShutdownTimeout(str('shutdown-timeout')),
      logFormat: logFormat as LogFormat,
      stateDir: str('state-dir') === undefined ? undefined : path.resolve(str('state-dir') as string),
      recoveryWaitSecs,
      backupRoot: parseBackupRoot(str('backup-root')),
      job: parseJobFlags(str, values['stream-oplog'] === true),
      tls: parseTlsFlags(str, values['tls-allow-connections-without-certificates'] === true),
      advertise: parseAdvertise(str('advertise')),
      sourceName: parseSourceName(str('source-name')),
    },
    own: Object.fromEntries(Object.keys(spec.own).map((name) => [name, str(name)])),
  };
}
