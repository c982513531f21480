/**
 * mongod's error codes, and the one error class every layer throws.
 *
 * Names and numbers come from mongod's src/mongo/base/error_codes.yml. Codes that
 * mongod raises through a bare `uassert(NNNNN, ...)` have no name there; mongod
 * reports them as `Location<code>`, and so do we.
 */

export const ErrorCodes = Object.freeze({
  InternalError: 1,
  BadValue: 2,
  UnknownError: 8,
  FailedToParse: 9,
  UnsupportedFormat: 12,
  Unauthorized: 13,
  TypeMismatch: 14,
  Overflow: 15,
  InvalidLength: 16,
  ProtocolError: 17,
  IllegalOperation: 20,
  InvalidBSON: 22,
  NamespaceNotFound: 26,
  IndexNotFound: 27,
  PathNotViable: 28,
  ConflictingUpdateOperators: 40,
  CursorNotFound: 43,
  NamespaceExists: 48,
  MaxTimeMSExpired: 50,
  DollarPrefixedFieldName: 52,
  InvalidIdField: 53,
  EmptyFieldName: 56,
  CommandNotFound: 59,
  ImmutableField: 66,
  CannotCreateIndex: 67,
  IndexAlreadyExists: 68,
  InvalidOptions: 72,
  InvalidNamespace: 73,
  IndexOptionsConflict: 85,
  IndexKeySpecsConflict: 86,
  ShutdownInProgress: 91,
  OperationFailed: 96,
  DBPathInUse: 98,
  CommandNotSupported: 115,
  ConflictingOperationInProgress: 117,
  ZLibError: 147,
  InvalidPipelineOperator: 168,
  IllegalOpMsgFlag: 223,
  QueryPlanKilled: 175,
  CursorKilled: 237,
  NotImplemented: 238,
  /** A command that may not run inside a multi-document transaction. */
  OperationNotSupportedInTransaction: 263,
  CannotBackup: 268,
  ChecksumMismatch: 288,
  UnsupportedOpQueryCommand: 352,
  /**
   * An OP_QUERY that is not a command (not on `<db>.$cmd`): mongod 5.1+ answers it with
   * makeErrorResponseToUnsupportedOpQuery("OP_QUERY is no longer supported")
   * (service_entry_point_common.cpp, HandleRequest::handleRequest).
   */
  OpQueryRemoved: 5739101,
  BSONObjectTooLarge: 10334,
  DuplicateKey: 11000,
  InterruptedAtShutdown: 11600,
  /** `$backupCursor` while another backup cursor is open. */
  BackupCursorAlreadyOpen: 50886,
  /** `$backupCursor` while the node is fsync-locked. */
  BackupCursorWhileFsyncLocked: 50887,
  /** `fsyncLock` while a backup cursor is open. */
  FsyncLockWhileBackupCursorOpen: 50884,
  /** A checkpoint raced the opening of a backup cursor; retriable. */
  BackupCursorCheckpointRace: 50915,
  /** `$backupCursorExtend` on a node that is not a replica-set member. */
  BackupCursorExtendNotReplSet: 29144,
  /** Percona createBackup while fsync-locked. */
  CreateBackupWhileFsyncLocked: 29101,
  /** Percona createBackup while a backup cursor is open. */
  CreateBackupWhileBackupCursorOpen: 29102,
  /** Unrecognized aggregation pipeline stage name. */
  UnrecognizedPipelineStage: 40324,
  /** An unknown field in a command (IDL parse error). */
  UnknownCommandField: 40415,
  /** `txnNumber` without `autocommit: false` on a command that is not a retryable write. */
  NotARetryableWriteCommand: 50768,
} as const);

export type ErrorCodeName = keyof typeof ErrorCodes;

/** The codeName mongod reports for a code. Unnamed uassert codes become `Location<code>`. */
const NAMED_IN_ERROR_CODES_YML = new Set<number>([10334, 11000, 11600, 50768]);
const CODE_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(ErrorCodes)
    .filter(([, code]) => code < 10000 || NAMED_IN_ERROR_CODES_YML.has(code))
    .map(([name, code]) => [code, name] as const),
);

export function codeNameFor(code: number): string {
  const named = CODE_NAMES.get(code);
  if (named !== undefined) return named;
  return `Location${code}`;
}

/**
 * An error that becomes a mongod-style `{ok: 0, errmsg, code, codeName}` reply.
 * `extra` holds additional reply fields (for example `errno` and `strerror`).
 */
export class CommandError extends Error {
  readonly code: number;
  readonly codeName: string;
  readonly extra: Readonly<Record<string, unknown>>;

  constructor(
    code: number,
    message: string,
    options: { extra?: Record<string, unknown>; cause?: unknown; codeName?: string } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CommandError';
    this.code = code;
    this.codeName = options.codeName ?? codeNameFor(code);
    this.extra = options.extra ?? {};
  }

  /** The reply document mongod would send for this error. */
  toReply(): Record<string, unknown> {
    return { ok: 0, errmsg: this.message, code: this.code, codeName: this.codeName, ...this.extra };
  }
}

/** Shorthand for throwing by code name: `throw serverError('BadValue', 'x must be positive')`. */
export function serverError(
  name: ErrorCodeName,
  message: string,
  extra?: Record<string, unknown>,
): CommandError {
  return new CommandError(ErrorCodes[name], message, extra === undefined ? {} : { extra });
}

/** Turns anything thrown into a reply document, without leaking stack traces to clients. */
export function errorReply(err: unknown): Record<string, unknown> {
  if (err instanceof CommandError) return err.toReply();
  const message = err instanceof Error ? err.message : String(err);
  return new CommandError(ErrorCodes.InternalError, message).toReply();
}
