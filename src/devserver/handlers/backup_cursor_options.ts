/**
 * The options of `$backupCursor` and `$backupCursorExtend`, checked in Percona Server's
 * order and wording (src/mongo/db/pipeline/document_source_backup_cursor.cpp and
 * document_source_backup_cursor_extend.cpp, createFromBson): the stage's type first
 * (FailedToParse 9), then each field's type in the order given (TypeMismatch 14; an
 * unknown field is FailedToParse 9), then the combinations (InvalidOptions 72).
 */
import { Binary, Long, Timestamp, UUID } from 'bson';
import type { Document } from '../bson.js';
import { DevServerError, DevServerCodes } from '../dev_server_errors.js';
import { bsonTypeOf, typeName } from '../query/bsontype.js';

export interface BackupCursorOptions {
  disableIncrementalBackup: boolean;
  incrementalBackup: boolean;
  /** MB; StorageEngine::BackupOptions' default is 16. */
  blockSize: number;
  thisBackupName?: string;
  srcBackupName?: string;
}

const CURSOR = '$backupCursor';
const EXTEND = '$backupCursorExtend';

function requireObject(stage: string, spec: unknown): Document {
  if (bsonTypeOf(spec) !== 'object') {
    throw new DevServerError(DevServerCodes.FailedToParse, `${stage} parameters must be specified in an object, but found: ${typeName(spec)}`);
  }
  return spec as Document;
}

function wrongType(stage: string, field: string, expected: string, value: unknown): DevServerError {
  return new DevServerError(
    DevServerCodes.TypeMismatch,
    `The '${field}' parameter of the ${stage} stage must be ${expected} value, but found: ${typeName(value)}`,
  );
}

function unrecognized(stage: string, field: string): DevServerError {
  return new DevServerError(DevServerCodes.FailedToParse, `Unrecognized option '${field}' in ${stage} stage`);
}

export function parseBackupCursorOptions(spec: unknown): BackupCursorOptions {
  const fields = requireObject(CURSOR, spec);
  const options: BackupCursorOptions = { disableIncrementalBackup: false, incrementalBackup: false, blockSize: 16 };
  for (const [field, value] of Object.entries(fields)) {
    switch (field) {
      case 'disableIncrementalBackup':
      case 'incrementalBackup':
        if (typeof value !== 'boolean') throw wrongType(CURSOR, field, 'a boolean', value);
        options[field] = value;
        break;
      case 'blockSize':
        // BSONType::numberInt only: a double or a long is refused, as PSMDB does.
        if (!isInt32(value)) throw wrongType(CURSOR, field, 'an integer', value);
        options.blockSize = Number(value);
        break;
      case 'thisBackupName':
      case 'srcBackupName':
        if (typeof value !== 'string') throw wrongType(CURSOR, field, 'a string', value);
        options[field] = value;
        break;
      default:
        throw unrecognized(CURSOR, field);
    }
  }
  if (options.incrementalBackup && options.disableIncrementalBackup) {
    throw new DevServerError(
      DevServerCodes.InvalidOptions,
      "'incrementalBackup' and 'disableIncrementalBackup' parameters are mutually exclusive. Cannot enable both",
    );
  }
  if (!options.incrementalBackup && (options.thisBackupName !== undefined || options.srcBackupName !== undefined)) {
    throw new DevServerError(
      DevServerCodes.InvalidOptions,
      "'thisBackupName' and 'srcBackupName' parameters are only allowed when 'incrementalBackup' is true",
    );
  }
  if (options.incrementalBackup) checkIncrementalNames(options);
  // PSMDB hands a non-positive blockSize to WiredTiger (`granularity=<n>MB`), which refuses
  // it; Enterprise's IDL bounds it. Either way it is refused before anything is opened.
  if (options.blockSize < 1) {
    throw new DevServerError(DevServerCodes.InvalidOptions, `'blockSize' must be a positive integer, but found: ${options.blockSize}`);
  }
  return options;
}

/**
 * What an incremental backup needs besides the flag. PSMDB leaves these to WiredTiger
 * (`this_id` is required, ids are non-empty); MongoDB Enterprise checks them in its
 * createFromBson (src/mongo/db/modules/enterprise/src/hot_backups/
 * document_source_backup_cursor.cpp), with these messages, as InvalidOptions.
 */
function checkIncrementalNames(options: BackupCursorOptions): void {
  if (options.thisBackupName === undefined) {
    throw new DevServerError(DevServerCodes.InvalidOptions, "'thisBackupName' needs to exist when incrementalBackup=true");
  }
  if (options.thisBackupName === '') {
    throw new DevServerError(DevServerCodes.InvalidOptions, "'thisBackupName' needs to be a non-empty string");
  }
  if (options.srcBackupName === '') {
    throw new DevServerError(DevServerCodes.InvalidOptions, "'srcBackupName' needs to be a non-empty string");
  }
}

function isInt32(v: unknown): boolean {
  return bsonTypeOf(v) === 'int';
}

export interface BackupCursorExtendOptions {
  backupId: UUID;
  timestamp: Timestamp;
}

export function parseBackupCursorExtendOptions(spec: unknown): BackupCursorExtendOptions {
  const fields = requireObject(EXTEND, spec);
  let backupId: UUID | undefined;
  let timestamp: Timestamp | undefined;
  for (const [field, value] of Object.entries(fields)) {
    if (field === 'backupId') {
      backupId = asUuid(value);
      if (backupId === undefined) throw wrongType(EXTEND, field, 'a UUID', value);
    } else if (field === 'timestamp') {
      // PSMDB takes a date too, read by BSONElement::timestamp() as its 64 bits.
      const type = bsonTypeOf(value);
      if (type === 'timestamp') timestamp = value as Timestamp;
      else if (type === 'date') timestamp = new Timestamp(Long.fromNumber((value as Date).getTime()));
      else throw wrongType(EXTEND, field, 'a Timestamp', value);
    } else {
      throw unrecognized(EXTEND, field);
    }
  }
  if (backupId === undefined) throw new DevServerError(DevServerCodes.InvalidOptions, 'Required parameter missing: backupId');
  if (timestamp === undefined) throw new DevServerError(DevServerCodes.InvalidOptions, 'Required parameter missing: timestamp');
  return { backupId, timestamp };
}

function asUuid(value: unknown): UUID | undefined {
  if (bsonTypeOf(value) !== 'binData') return undefined;
  const bin = value as Binary;
  return bin.sub_type === Binary.SUBTYPE_UUID && bin.buffer.length === 16 ? new UUID(bin.buffer) : undefined;
}
