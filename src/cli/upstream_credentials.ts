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
 *   names (its content, one trailing newline removed; refused when group or others
 *   have any access to it, as mongod refuses such a keyFile).
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
    // Not a URI we can parse (an unescaped '/', '@', '?' or '#' in the password, say):
    // show nothing that could be a secret, up to the last '@' (a host or an option may
    // go with it: better hidden than a password shown).
    return uri.replace(/\/\/.*@/s, '//****@');
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

/**
 * The password file's content, refused when group or others may read or write it, as
 * mongod refuses such a keyFile ("permissions on <file> are too open",
 * src/mongo/db/auth/security_file.cpp, readSecurityFile: st_mode & (S_IRWXG|S_IRWXO)).
 * The mode is read from the open file, so it is the file that is read that is checked.
 */
function readPasswordFile(file: string): string {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    throw new Error(`cannot read --upstream-password-file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  try {
    // Windows has no such bits to check (mongod skips the check there too).
    if (process.platform !== 'win32' && (fs.fstatSync(fd).mode & 0o077) !== 0) {
      throw new Error(`permissions on --upstream-password-file ${file} are too open: group and others must have no access (chmod 600)`);
    }
    return fs.readFileSync(fd, 'utf8');
  } finally {
    fs.closeSync(fd);
  }
}

function passwordFrom(source: UpstreamSource): string | undefined {
  if (source.passwordFile !== undefined) {
    const text = readPasswordFile(source.passwordFile);
    const password = text.replace(/\r?\n$/, '');
    if (password === '') throw new Error(`--upstream-password-file ${source.passwordFile} is empty`);
    return password;
  }
  const fromEnv = source.env[UPSTREAM_PASSWORD_ENV];
  return fromEnv === undefined || fromEnv === '' ? undefined : fromEnv;
}
