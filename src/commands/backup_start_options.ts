/**
 * What a backupStart request may say, read strictly: a field it does not know is refused,
 * as mongod's IDL parser refuses one for its own commands, so that a misspelt option
 * (`allowWriteBlock`, `incrementalbase`) never silently changes what the backup does.
 * Percona's clients send `{backupStart: dir}` alone, so nothing legitimate breaks.
 *
 * To add an option: name it in BACKUP_START_OPTIONS (and take it out of RESERVED_OPTIONS
 * if it is there), then read it in parseBackupStart.
 */
import type { Document } from '../wire/command_message.js';
import type { StartRequest } from '../backup/backup_engine.js';
import { STRATEGY_CHOICES, type StrategyChoice } from '../backup/strategies/snapshot.js';
import { isGenericArgument } from '../wire/generic_arguments.js';
import { CommandError, ErrorCodes } from '../errors.js';
import type { Timestamp } from 'bson';
import type { OplogTimestamp } from '../backup/oplog_bounds.js';

/** backupStart's own fields, besides the command's name and the generic ones. */
export const BACKUP_START_OPTIONS: ReadonlySet<string> = new Set(['async', 'allowWriteBlocking', 'strategy', 'incrementalBase', 'checksum', 'extendTo']);

/** Names kept for options to come: a request with one is refused, saying so. None today. */
export const RESERVED_OPTIONS: ReadonlySet<string> = new Set<string>();

export interface BackupStartRequest extends StartRequest {
  /** Reply at once with the backupId, rather than when the backup ends. */
  async: boolean;
}

/**
 * mongod's refusal of a field its IDL does not know (idl_parser.cpp,
 * IDLParserContext::throwUnknownField: uasserted(40415, "BSON field '<path>' is an
 * unknown field.")), with `why` after it when there is more to say.
 */
export function unknownField(command: string, field: string, why?: string): CommandError {
  return new CommandError(ErrorCodes.IDLUnknownField, `BSON field '${command}.${field}' is an unknown field.${why === undefined ? '' : ` ${why}`}`);
}

/** Refuses the first field of `cmd` that is neither its name, nor generic, nor one of `own`. */
export function checkKnownFields(cmd: Document, own: ReadonlySet<string>, reserved: ReadonlySet<string> = new Set()): void {
  let name: string | undefined;
  for (const field of Object.keys(cmd)) {
    if (name === undefined) {
      name = field;
      continue;
    }
    if (own.has(field) || isGenericArgument(field)) continue;
    if (reserved.has(field)) {
      throw unknownField(name, field, 'This option is not available in this version of the proxy, so the request is refused rather than run without it.');
    }
    throw unknownField(name, field);
  }
}

function optionalBoolean(cmd: Document, field: string): boolean | undefined {
  const value = cmd[field];
  if (value === undefined || typeof value === 'boolean') return value;
  throw new CommandError(ErrorCodes.TypeMismatch, `backupStart option '${field}' must be a boolean`);
}

function isStrategyChoice(value: string): value is StrategyChoice {
  return (STRATEGY_CHOICES as readonly string[]).includes(value);
}

/** The request in `cmd`, or the error mongod-style for its first unknown or ill-typed field. */
export function parseBackupStart(cmd: Document): BackupStartRequest {
  checkKnownFields(cmd, BACKUP_START_OPTIONS, RESERVED_OPTIONS);
  const allowWriteBlocking = optionalBoolean(cmd, 'allowWriteBlocking');
  const async = optionalBoolean(cmd, 'async');
  const strategy = cmd['strategy'];
  if (strategy !== undefined && typeof strategy !== 'string') {
    throw new CommandError(ErrorCodes.TypeMismatch, "backupStart option 'strategy' must be a string");
  }
  if (strategy !== undefined && !isStrategyChoice(strategy)) {
    throw new CommandError(ErrorCodes.BadValue, `backupStart option 'strategy' must be one of ${STRATEGY_CHOICES.join(', ')}; got '${strategy}'`);
  }
  const incrementalBase = cmd['incrementalBase'];
  if (incrementalBase !== undefined && typeof incrementalBase !== 'string') {
    throw new CommandError(ErrorCodes.TypeMismatch, "backupStart option 'incrementalBase' must be a string: the directory of an earlier backup");
  }
  const extendTo = parseExtendTo(cmd['extendTo'], strategy);
  const checksum = optionalBoolean(cmd, 'checksum');
  if (checksum === true && incrementalBase === undefined) {
    throw new CommandError(ErrorCodes.BadValue, "backupStart option 'checksum: true' compares files with an incrementalBase, and none was given");
  }
  return {
    destination: cmd['backupStart'],
    allowWriteBlocking: allowWriteBlocking === true,
    async: async === true,
    ...(strategy === undefined ? {} : { strategy }),
    ...(incrementalBase === undefined ? {} : { incrementalBase, checksum: checksum === true }),
    ...(extendTo === undefined ? {} : { extendTo }),
  };
}

/**
 * `extendTo`: a BSON Timestamp (a cluster time, as a write's `operationTime` gives it),
 * for the backupCursor strategy only: the others block writes for their copy and have no
 * `$backupCursorExtend`. Types first, as mongod's IDL checks them (TypeMismatch 14), then
 * the combination (InvalidOptions 72, PSMDB's code for a `$backupCursorExtend` option it
 * cannot take: document_source_backup_cursor_extend.cpp). A strategy chosen at run time
 * (`auto`, `serve --strategy`) is checked once the snapshot is open, with the same code.
 */
function parseExtendTo(value: unknown, strategy: unknown): OplogTimestamp | undefined {
  if (value === undefined) return undefined;
  if ((value as { _bsontype?: unknown } | null)?._bsontype !== 'Timestamp') {
    throw new CommandError(ErrorCodes.TypeMismatch, "backupStart option 'extendTo' must be a Timestamp, e.g. the operationTime of a write's reply");
  }
  if (strategy === 'fsyncLock' || strategy === 'reflink') {
    throw new CommandError(ErrorCodes.InvalidOptions, `backupStart option 'extendTo' needs the backupCursor strategy ($backupCursorExtend), not ${strategy}`);
  }
  const ts = value as Timestamp;
  return { t: ts.high >>> 0, i: ts.low >>> 0 };
}
