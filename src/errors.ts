/**
 * The error codes the product (proxy, commands, backup engine) and the shared wire
 * codec raise, and the one error class they throw. The dev server's own codes live in
 * src/devserver/dev_server_errors.ts.
 *
 * Numbers and names come from mongod's src/mongo/base/error_codes.yml. Codes that
 * mongod raises through a bare `uassert(NNNNN, ...)` have no name there: mongod
 * reports them as `Location<code>`, and so do we. They sit in LocationCodes, under a
 * name of ours that says what they mean.
 */

/** Codes named in error_codes.yml: reported with that name as codeName. */
export const ErrorCodes = Object.freeze({
  InternalError: 1,
  BadValue: 2,
  /** A server we depend on (an S3 endpoint) could not be reached at all. */
  HostUnreachable: 6,
  FailedToParse: 9,
  /** Not a format this build reads: e.g. a directory that is no hotbackup backup. */
  UnsupportedFormat: 12,
  Unauthorized: 13,
  TypeMismatch: 14,
  ProtocolError: 17,
  AuthenticationFailed: 18,
  IllegalOperation: 20,
  InvalidBSON: 22,
  NonExistentPath: 29,
  CursorNotFound: 43,
  MaxTimeMSExpired: 50,
  CommandNotFound: 59,
  InvalidOptions: 72,
  /** A backup that never finished: it has no manifest, and its marker says why. */
  OperationIncomplete: 77,
  ShutdownInProgress: 91,
  OperationFailed: 96,
  ConflictingOperationInProgress: 117,
  QueryPlanKilled: 175,
  IllegalOpMsgFlag: 223,
  CursorKilled: 237,
  /** A command that may not run inside a multi-document transaction. */
  OperationNotSupportedInTransaction: 263,
  CannotBackup: 268,
  ChecksumMismatch: 288,
  /** A backup whose files do not match its manifest (missing, extra, resized, corrupted). */
  DataCorruptionDetected: 301,
  UnsupportedOpQueryCommand: 352,
  BSONObjectTooLarge: 10334,
  InterruptedAtShutdown: 11600,
  /** An operation killed by killOp or killCursors while it ran (and a backup aborted: backupAbort, killOp). */
  Interrupted: 11601,
  /**
   * A field an IDL-parsed command does not know: `BSON field '<cmd>.<field>' is an unknown
   * field.` (src/mongo/idl/idl_parser.cpp, IDLParserContext::throwUnknownField; named in
   * error_codes.yml since 6.0, Location40415 before).
   */
  IDLUnknownField: 40415,
  /** `txnNumber` without `autocommit: false` on a command that is not a retryable write. */
  NotARetryableWriteCommand: 50768,
} as const);

/** uassert codes, reported as `Location<code>`. */
export const LocationCodes = Object.freeze({
  /** OP_MSG with two body (kind 0) sections (op_msg.cpp). */
  MultipleBodySections: 40430,
  /** OP_MSG with two document sequences of one name (op_msg.cpp). */
  DuplicateDocumentSequence: 40431,
  /** OP_MSG section kind other than 0 and 1 (op_msg.cpp). */
  UnknownSectionKind: 40432,
  /** OP_MSG without a body section (op_msg.cpp). */
  OpMsgWithoutBody: 40587,
  /** OP_MSG whose checksum flag leaves no room for the checksum (op_msg.cpp). */
  OpMsgChecksumTooShort: 51251,
  /** Unrecognized aggregation stage: how a mongod without `$backupCursor` answers it. */
  UnrecognizedPipelineStage: 40324,
  /** getMore in a session on a cursor opened outside sessions (getmore_cmd.cpp validateLSID). */
  GetMoreInSessionOnSessionlessCursor: 50736,
  /** getMore without an lsid on a cursor opened in a session (getmore_cmd.cpp validateLSID). */
  GetMoreWithoutCursorSession: 50737,
  /** getMore from a session other than the cursor's (getmore_cmd.cpp validateLSID). */
  GetMoreFromOtherSession: 50738,
  /** `$backupCursor` while another backup cursor is open. */
  BackupCursorAlreadyOpen: 50886,
  /**
   * An OP_QUERY that is not a command (not on `<db>.$cmd`): mongod 5.1+ answers it with
   * makeErrorResponseToUnsupportedOpQuery("OP_QUERY is no longer supported")
   * (service_entry_point_common.cpp, HandleRequest::handleRequest).
   */
  OpQueryRemoved: 5739101,
} as const);

/** A code's name for each named code of `named`; every other code reads `Location<code>`. */
export function codeNamer(named: Readonly<Record<string, number>>): (code: number) => string {
  const names = new Map(Object.entries(named).map(([name, code]) => [code, name] as const));
  return (code) => names.get(code) ?? `Location${code}`;
}

const productCodeName = codeNamer(ErrorCodes);

export interface CommandErrorOptions {
  /** Additional reply fields, for example `errno` and `strerror`. */
  extra?: Record<string, unknown>;
  cause?: unknown;
  /** Default: the name error_codes.yml gives the code, else `Location<code>`. */
  codeName?: string;
}

/** An error that becomes a mongod-style `{ok: 0, errmsg, code, codeName}` reply. */
export class CommandError extends Error {
  readonly code: number;
  readonly codeName: string;
  readonly extra: Readonly<Record<string, unknown>>;

  constructor(code: number, message: string, options: CommandErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CommandError';
    this.code = code;
    this.codeName = options.codeName ?? productCodeName(code);
    this.extra = options.extra ?? {};
  }

  /** The reply document mongod would send for this error. */
  toReply(): Record<string, unknown> {
    return { ok: 0, errmsg: this.message, code: this.code, codeName: this.codeName, ...this.extra };
  }
}

/** Turns anything thrown into a reply document, without leaking stack traces to clients. */
export function errorReply(err: unknown): Record<string, unknown> {
  if (err instanceof CommandError) return err.toReply();
  const message = err instanceof Error ? err.message : String(err);
  return new CommandError(ErrorCodes.InternalError, message).toReply();
}
