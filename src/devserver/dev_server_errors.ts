/**
 * The dev server's error codes: what mongod answers where the dev server refuses the
 * same thing. Product and wire codes (src/errors.ts) are included, so one table
 * serves the whole dev server.
 *
 * Named codes come from mongod's src/mongo/base/error_codes.yml; the others are
 * mongod's `uassert(NNNNN, ...)` location codes, reported as `Location<code>`, under a
 * name of ours. The file next to each group says where mongod raises it.
 */
import { CommandError, ErrorCodes, LocationCodes, codeNamer, type CommandErrorOptions } from '../errors.js';

/** Named in error_codes.yml, raised only by the dev server here. */
const DEV_SERVER_NAMED = Object.freeze({
  NoSuchKey: 4,
  UserNotFound: 11,
  AuthenticationFailed: 18,
  RoleNotFound: 31,
  MechanismUnavailable: 334,
  NamespaceNotFound: 26,
  IndexNotFound: 27,
  PathNotViable: 28,
  ConflictingUpdateOperators: 40,
  NamespaceExists: 48,
  DollarPrefixedFieldName: 52,
  InvalidIdField: 53,
  NotSingleValueField: 54,
  EmptyFieldName: 56,
  CannotBackfillArray: 57,
  ImmutableField: 66,
  CannotCreateIndex: 67,
  InvalidNamespace: 73,
  IndexOptionsConflict: 85,
  IndexKeySpecsConflict: 86,
  DBPathInUse: 98,
  InvalidPipelineOperator: 168,
  NotYetInitialized: 94,
  NotImplemented: 238,
  DuplicateKey: 11000,
} as const);

/** uassert codes the dev server raises, reported as `Location<code>`. */
const DEV_SERVER_LOCATION = Object.freeze({
  // $group (accumulation_statement.cpp, document_source_group.cpp)
  GroupSpecNotObject: 15947,
  UnknownGroupOperator: 15952,
  GroupWithoutId: 15955,
  GroupFieldNotAccumulator: 40234,
  GroupFieldContainsDot: 40235,
  GroupFieldIsOperator: 40236,
  AccumulatorNotUnary: 40237,
  GroupFieldMultipleAccumulators: 40238,
  // pipeline stages (document_source_*.cpp, pipeline.cpp)
  LimitNotPositive: 15958,
  MatchNotObject: 15959,
  ProjectNotObject: 15969,
  SortSpecNotObject: 15973,
  SortOrderNotNumber: 15974,
  SortOrderNotOneOrMinusOne: 15975,
  SortWithoutKeys: 15976,
  UnsetSpecType: 31002,
  UnsetSpecEmpty: 31119,
  UnsetSpecNotStrings: 31120,
  CountFieldNotString: 40156,
  CountFieldEmpty: 40157,
  CountFieldDollarPrefixed: 40158,
  CountFieldNullByte: 40159,
  CountFieldContainsDot: 40160,
  StageSpecNotObject: 40272,
  StageSpecNotOneField: 40323,
  SkipArgumentInvalid: 5107200,
  LimitArgumentInvalid: 5107201,
  // field paths and variables (field_path.cpp, expression.cpp, variables.cpp)
  FieldPathEmptyName: 15998,
  FieldPathDollarPrefixed: 16410,
  FieldPathContainsDot: 16412,
  FieldPathDollarAlone: 16872,
  UndefinedVariable: 17276,
  FieldPathEmpty: 40352,
  FieldPathTrailingDot: 40353,
  // projections (projection_parser.cpp, projection_ast_path_tracking_visitor.h)
  PathCollisionWithPrefix: 31249,
  PathCollision: 31250,
  InclusionInExclusionProjection: 31253,
  ExclusionInInclusionProjection: 31254,
  ExpressionInExclusionProjection: 31310,
  EmptySubProjection: 51270,
  EmptyProjection: 51272,
  // IDL parsing (idl_parser.cpp)
  IdlMissingField: 40414,
  // killOp (kill_op_cmd_base.cpp, parseOpId)
  OpIdNotInt32: 26823,
  // backups and fsyncLock (PSMDB and Enterprise backup_cursor_*.cpp, fsync.cpp)
  FsyncLockWhileBackupCursorOpen: 50884,
  BackupCursorWhileFsyncLocked: 50887,
  BackupCursorExtendNotReplSet: 29144,
  BackupCursorExtendWrongId: 29094,
  BackupCursorNoOplogRecords: 50912,
  BackupCursorOplogRolledOver: 50917,
  // user management (user_management_commands.cpp, CmdCreateUser)
  UserAlreadyExists: 51003,
} as const);

export const DevServerCodes = Object.freeze({ ...ErrorCodes, ...LocationCodes, ...DEV_SERVER_NAMED, ...DEV_SERVER_LOCATION });

const devServerCodeName = codeNamer({ ...ErrorCodes, ...DEV_SERVER_NAMED });

/** A CommandError whose codeName is mongod's for the dev server's codes too. */
export class DevServerError extends CommandError {
  constructor(code: number, message: string, options: CommandErrorOptions = {}) {
    super(code, message, { ...options, codeName: options.codeName ?? devServerCodeName(code) });
  }
}
