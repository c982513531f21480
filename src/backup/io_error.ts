/**
 * I/O failures reach the client as Percona reported them: the message plus
 * `errno` (a positive int, as C's errno) and `strerror` (C's wording).
 */
import { getSystemErrorMap } from 'node:util';
import { CommandError, ErrorCodes } from '../errors.js';

interface NodeSystemError {
  errno?: number;
  code?: string;
  syscall?: string;
  path?: string;
  message: string;
}

function isSystemError(err: unknown): err is NodeSystemError {
  return err instanceof Error && typeof (err as NodeSystemError).errno === 'number';
}

/** C's strerror text, e.g. "No such file or directory", from libuv's table. */
export function strerror(errno: number): string {
  const entry = getSystemErrorMap().get(-Math.abs(errno));
  const text = entry?.[1] ?? `Unknown error ${errno}`;
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** A CommandError for `err`; system errors gain errno/strerror and say what we were doing. */
export function toCommandError(err: unknown, doing: string): CommandError {
  if (err instanceof CommandError) return err;
  if (isSystemError(err)) {
    const errno = Math.abs(err.errno ?? 0);
    const where = err.path === undefined ? '' : ` ${err.path}`;
    return new CommandError(ErrorCodes.OperationFailed, `${doing} failed: ${err.syscall ?? 'I/O'}${where}: ${strerror(errno)}`, {
      extra: { errno, strerror: strerror(errno) },
      cause: err,
    });
  }
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  if (typeof code === 'number') {
    // A mongod error relayed by the driver keeps its code.
    return new CommandError(code, message, { cause: err });
  }
  return new CommandError(ErrorCodes.InternalError, `${doing} failed: ${message}`, { cause: err });
}
