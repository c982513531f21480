/**
 * I/O failures reach the client as Percona reported them: the message plus
 * `errno` (a positive int, as C's errno) and `strerror` (C's wording).
 */
import { constants } from 'node:os';
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

/**
 * glibc's strerror texts for the errors a backup can meet. Node has no strerror: its
 * getSystemErrorMap holds libuv's own wording ("i/o error", "file already exists") and
 * nothing at all for EDQUOT, where Percona's mongod printed glibc's.
 */
const GLIBC_STRERROR: Readonly<Partial<Record<keyof typeof constants.errno, string>>> = {
  EPERM: 'Operation not permitted',
  ENOENT: 'No such file or directory',
  EINTR: 'Interrupted system call',
  EIO: 'Input/output error',
  ENXIO: 'No such device or address',
  EBADF: 'Bad file descriptor',
  EAGAIN: 'Resource temporarily unavailable',
  ENOMEM: 'Cannot allocate memory',
  EACCES: 'Permission denied',
  EBUSY: 'Device or resource busy',
  EEXIST: 'File exists',
  EXDEV: 'Invalid cross-device link',
  ENODEV: 'No such device',
  ENOTDIR: 'Not a directory',
  EISDIR: 'Is a directory',
  EINVAL: 'Invalid argument',
  ENFILE: 'Too many open files in system',
  EMFILE: 'Too many open files',
  ETXTBSY: 'Text file busy',
  EFBIG: 'File too large',
  ENOSPC: 'No space left on device',
  ESPIPE: 'Illegal seek',
  EROFS: 'Read-only file system',
  EMLINK: 'Too many links',
  ENAMETOOLONG: 'File name too long',
  ENOLCK: 'No locks available',
  ENOSYS: 'Function not implemented',
  ENOTEMPTY: 'Directory not empty',
  ELOOP: 'Too many levels of symbolic links',
  EOVERFLOW: 'Value too large for defined data type',
  EOPNOTSUPP: 'Operation not supported',
  ESTALE: 'Stale file handle',
  EDQUOT: 'Disk quota exceeded',
  ETIMEDOUT: 'Connection timed out',
  ECANCELED: 'Operation canceled',
  ENODATA: 'No data available',
  EFAULT: 'Bad address',
  EPIPE: 'Broken pipe',
  ERANGE: 'Numerical result out of range',
  EBADMSG: 'Bad message',
  ENOTCONN: 'Transport endpoint is not connected',
};

/** Linux errnos a backup can meet that Node has no name for (asm-generic/errno.h). */
const LINUX_ONLY_STRERROR: ReadonlyMap<number, string> = new Map([
  [112, 'Host is down'], // EHOSTDOWN: an NFS or FUSE server gone
  [117, 'Structure needs cleaning'], // EUCLEAN: ext4/XFS found corruption
  [121, 'Remote I/O error'], // EREMOTEIO
]);

const STRERROR_BY_ERRNO: ReadonlyMap<number, string> = new Map([
  ...LINUX_ONLY_STRERROR,
  ...Object.entries(GLIBC_STRERROR).map(([name, text]) => [constants.errno[name as keyof typeof constants.errno], text as string] as const),
]);

/** C's strerror text for a (positive or libuv-negative) errno, e.g. "No such file or directory". */
export function strerror(errno: number): string {
  const code = Math.abs(errno);
  const glibc = STRERROR_BY_ERRNO.get(code);
  if (glibc !== undefined) return glibc;
  // Better libuv's words than none; glibc's own fallback otherwise.
  const libuv = getSystemErrorMap().get(-code)?.[1];
  return libuv === undefined ? `Unknown error ${code}` : libuv.charAt(0).toUpperCase() + libuv.slice(1);
}

/** Node's error code of a failed system call ('ENOENT', 'EEXIST', ...), if `err` has one. */
export function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
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
    // A mongod error relayed by the driver keeps its code, and mongod's own name for it.
    const codeName = (err as { codeName?: unknown }).codeName;
    return new CommandError(code, message, { cause: err, codeName: typeof codeName === 'string' ? codeName : undefined });
  }
  return new CommandError(ErrorCodes.InternalError, `${doing} failed: ${message}`, { cause: err });
}
