/**
 * `hotbackup serve --upstream <mongodb-uri> [--dbpath DIR] [proxy flags]`: the proxy in
 * front of one mongod, answering backupStart/backupStatus/backupThrottle/backupVerify itself.
 */
import path from 'node:path';
import { createLogger } from '../log.js';
import { parseProxyFlags, PROXY_FLAGS_HELP } from './proxy_flags.js';
import { startProxyApp } from './proxy_app.js';
import { shutDownAndExit, untilSignal } from './shutdown.js';
import { redactUri, resolveUpstreamUri, UPSTREAM_PASSWORD_ENV, UPSTREAM_URI_ENV } from './upstream_credentials.js';

const HELP = `Usage: hotbackup serve --upstream <mongodb-uri> [options]

A MongoDB wire-protocol proxy that forwards everything to mongod and answers
backupStart, backupStatus, backupThrottle and backupVerify itself (see
docs/commands.md and docs/backups.md). With --schedule it also takes backups on a
schedule, a job that {backupJob: 'stop' | 'start' | 'deactivate'} controls.

{backupStart: "s3://bucket/prefix"} uploads the backup to S3 (or radosgw, MinIO) with
the AWS environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE),
AWS_REGION, AWS_ENDPOINT_URL_S3 for an S3-compatible server; read at start.

Options:
  --upstream URI            mongod to front, e.g. mongodb://127.0.0.1:27018; or the
                            environment variable ${UPSTREAM_URI_ENV}    [required]
  --upstream-password-file FILE
                            the password of the user the upstream URI names (the file's
                            content); or ${UPSTREAM_PASSWORD_ENV}. Never put
                            a password in --upstream: ps shows it to every user
  --dbpath DIR              mongod's dbpath; default: asked of mongod (getCmdLineOpts)
${PROXY_FLAGS_HELP}`;

export async function runServe(args: string[]): Promise<number> {
  const parsed = parseProxyFlags(args, { own: { upstream: undefined, 'upstream-password-file': undefined, dbpath: undefined } });
  if (parsed.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const { proxy: flags, own } = parsed;
  const upstream = resolveUpstreamUri({ flag: own['upstream'], passwordFile: own['upstream-password-file'], env: process.env });
  if (upstream === undefined) throw new Error(`--upstream is required (e.g. --upstream mongodb://127.0.0.1:27018), or ${UPSTREAM_URI_ENV}`);
  const upstreamUri = upstream.uri;
  const dbpath = own['dbpath'];
  const log = createLogger({ name: 'hotbackup', format: flags.logFormat });
  if (upstream.passwordOnCommandLine) {
    log.warn({ upstream: redactUri(upstreamUri) }, `the upstream password is on the command line, where ps shows it: use ${UPSTREAM_URI_ENV}, ${UPSTREAM_PASSWORD_ENV} or --upstream-password-file`);
  }
  const app = await startProxyApp({ ...flags, upstreamUri, dbpath: dbpath === undefined ? undefined : path.resolve(dbpath), log });
  await untilSignal(log);
  return shutDownAndExit({ cleanup: () => app.close(), timeoutSecs: flags.shutdownTimeoutSecs, describeLeft: () => app.describeLeft(), log });
}
