/**
 * Where the proxy's own connection to mongod (for $backupCursor, fsyncLock, buildInfo)
 * gets its credentials, without a password ever on the command line, where `ps` shows
 * it to every user of the machine:
 *
 * - the URI itself, from `HOTBACKUP_UPSTREAM_URI` (the environment is readable only by
 *   the process's owner and root, /proc/<pid>/environ is mode 0400) or from `--upstream`
 *   (then without a password, or a warning says it is visible);
 * - the password alone, for a URI that names the user (`mongodb://hotbackup@host/`):
 *   from `HOTBACKUP_UPSTREAM_PASSWORD`, or from the file `--upstream-password-file`
 *   names (its content, one trailing newline removed).
 *
 * `redactUri` is how a URI may appear in logs and errors: never with its password.
 */
import fs from 'node:fs';
import { ConnectionString } from 'mongodb-connection-string-url';

export const UPSTREAM_URI_ENV = 'HOTBACKUP_UPSTREAM_URI';
export const UPSTREAM_PASSWORD_ENV = 'HOTBACKUP_UPSTREAM_PASSWORD';

export interface UpstreamSource {
  /** `--upstream`, if given. */
  flag: string | undefined;
  /** `--upstream-password-file`, if given. */
  passwordFile: string | undefined;
  env: NodeJS.ProcessEnv;
}

export interface ResolvedUpstream {
  uri: string;
  /** Set when the password came on the command line: the caller warns (without it). */
  passwordOnCommandLine: boolean;
}

/** The URI with its password replaced by `****`, for logs and errors. */
export function redactUri(uri: string): string {
  try {
    const parsed = new ConnectionString(uri);
    if (parsed.password !== '') parsed.password = '****';
    return parsed.toString();
  } catch {
    // Not a URI we can parse: show nothing that could be a secret.
    return uri.replace(/\/\/[^@/]*@/, '//****@');
  }
}

export function resolveUpstreamUri(source: UpstreamSource): ResolvedUpstream | undefined {
  const fromEnv = source.env[UPSTREAM_URI_ENV];
  const raw = source.flag ?? (fromEnv === '' ? undefined : fromEnv);
  if (raw === undefined) return undefined;
  const parsed = new ConnectionString(raw);
  const passwordOnCommandLine = source.flag !== undefined && parsed.password !== '';
  const password = passwordFrom(source);
  if (password !== undefined) {
    if (parsed.username === '') {
      throw new Error(`a password was given (${source.passwordFile === undefined ? UPSTREAM_PASSWORD_ENV : '--upstream-password-file'}) but the upstream URI names no user: ${redactUri(raw)}`);
    }
    if (parsed.password !== '') throw new Error('the upstream URI has a password already: give it in one place only');
    parsed.password = password;
  }
  return { uri: parsed.toString(), passwordOnCommandLine };
}

function passwordFrom(source: UpstreamSource): string | undefined {
  if (source.passwordFile !== undefined) {
    let text: string;
    try {
      text = fs.readFileSync(source.passwordFile, 'utf8');
    } catch (err) {
      throw new Error(`cannot read --upstream-password-file ${source.passwordFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    const password = text.replace(/\r?\n$/, '');
    if (password === '') throw new Error(`--upstream-password-file ${source.passwordFile} is empty`);
    return password;
  }
  const fromEnv = source.env[UPSTREAM_PASSWORD_ENV];
  return fromEnv === undefined || fromEnv === '' ? undefined : fromEnv;
}
