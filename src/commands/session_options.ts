/**
 * The session and transaction fields of a command (`lsid`, `txnNumber`, `autocommit`,
 * `startTransaction`), checked the way mongod checks them before it runs any command.
 * None of our commands may run in a transaction or as a retryable write, so a request
 * that carries a transaction gets the refusal the upstream mongod would give it.
 *
 * mongod's order, per command (src/mongo/db/service_entry_point_common.cpp,
 * ExecCommandDatabase): the admin-only check (before parsing, BackupCommands does it),
 * then `initializeOperationSessionInfo`
 * (src/mongo/db/session/initialize_operation_session_info.cpp), then
 * `validateSessionOptions` (src/mongo/db/transaction/transaction_validation.cpp), then
 * authorization. The texts below are mongod's.
 */
import type { Document } from '../wire/command_message.js';
import { ErrorCodes, CommandError } from '../errors.js';

/** What mongod's own checks depend on: whether it is a replica-set member (or a mongos). */
export interface UpstreamRole {
  /** True when the upstream accepts transaction numbers at all. */
  acceptsTransactionNumbers(): Promise<boolean>;
}

/** BSON type names as mongod's IDL parser prints them. */
function bsonTypeName(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return 'string';
  if (typeof value === 'boolean') return 'bool';
  if (typeof value === 'number') return 'double';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'object') {
    const bsontype = (value as { _bsontype?: unknown })._bsontype;
    if (bsontype === undefined) return 'object';
    const names: Record<string, string> = { Int32: 'int', Long: 'long', Double: 'double', Decimal128: 'decimal', ObjectId: 'objectId', Binary: 'binData', Timestamp: 'timestamp' };
    return names[String(bsontype)] ?? String(bsontype).toLowerCase();
  }
  return typeof value;
}

function typeMismatch(field: string, value: unknown, expected: string): CommandError {
  // The IDL parser's text; mongod parses these fields as "OperationSessionInfo".
  return new CommandError(
    ErrorCodes.TypeMismatch,
    `BSON field 'OperationSessionInfo.${field}' is the wrong type '${bsonTypeName(value)}', expected type '${expected}'`,
  );
}

function invalidOptions(message: string): CommandError {
  return new CommandError(ErrorCodes.InvalidOptions, message);
}

interface SessionFields {
  hasSessionId: boolean;
  txnNumber: bigint | undefined;
  autocommit: boolean | undefined;
  startTransaction: boolean | undefined;
}

/** OperationSessionInfoFromClient::parse: each field optional, each of one exact BSON type. */
function parseSessionFields(cmd: Document): SessionFields {
  const lsid = cmd['lsid'];
  if (lsid !== undefined && bsonTypeName(lsid) !== 'object') throw typeMismatch('lsid', lsid, 'object');
  const txn = cmd['txnNumber'];
  if (txn !== undefined && bsonTypeName(txn) !== 'long') throw typeMismatch('txnNumber', txn, 'long');
  const autocommit = cmd['autocommit'];
  if (autocommit !== undefined && typeof autocommit !== 'boolean') throw typeMismatch('autocommit', autocommit, 'bool');
  const start = cmd['startTransaction'];
  if (start !== undefined && typeof start !== 'boolean') throw typeMismatch('startTransaction', start, 'bool');
  return {
    hasSessionId: lsid !== undefined,
    txnNumber: txn === undefined ? undefined : BigInt(String(txn)),
    autocommit,
    startTransaction: start,
  };
}

/**
 * Throws mongod's refusal when `cmd` carries a transaction number, or any of the fields
 * that go with one; a command without them (the usual case: only `lsid`) passes. The
 * upstream's role is asked only when a transaction number is present.
 */
export async function checkNoTransaction(commandName: string, cmd: Document, upstream: UpstreamRole): Promise<void> {
  const osi = parseSessionFields(cmd);

  // initializeOperationSessionInfo.
  if (osi.txnNumber !== undefined) {
    if (!osi.hasSessionId) throw invalidOptions('Transaction number requires a session ID to also be specified');
    if (!(await upstream.acceptsTransactionNumbers())) {
      throw new CommandError(ErrorCodes.IllegalOperation, 'Transaction numbers are only allowed on a replica set member or mongos');
    }
    if (osi.txnNumber < 0n) throw invalidOptions('Transaction number cannot be negative');
  } else if (osi.autocommit !== undefined) {
    throw invalidOptions("'autocommit' field requires a transaction number to also be specified");
  }
  if (osi.autocommit !== undefined) {
    if (osi.autocommit) throw invalidOptions('Specifying autocommit=true is not allowed.');
  } else if (osi.startTransaction !== undefined) {
    throw invalidOptions("'startTransaction' field requires 'autocommit' field to also be specified");
  }
  if (osi.startTransaction === false) throw invalidOptions('Specifying startTransaction=false is not allowed.');

  // validateSessionOptions: CommandHelpers::canUseTransactions, then the retryable-write rule.
  if (osi.autocommit !== undefined) {
    throw new CommandError(
      ErrorCodes.OperationNotSupportedInTransaction,
      `Cannot run '${commandName}' in a multi-document transaction.`,
    );
  }
  if (osi.txnNumber !== undefined) {
    throw new CommandError(
      ErrorCodes.NotARetryableWriteCommand,
      `txnNumber may only be provided for multi-document transactions and retryable write commands. autocommit:false was not provided, and ${commandName} is not a retryable write command.`,
    );
  }
}

/** The upstream's role from its `hello`, asked once; a failed ask is retried next time. */
export class HelloUpstreamRole implements UpstreamRole {
  #answer: Promise<boolean> | undefined;

  constructor(private readonly hello: () => Promise<Document>) {}

  acceptsTransactionNumbers(): Promise<boolean> {
    if (this.#answer === undefined) {
      const asked = this.hello().then((reply) => typeof reply['setName'] === 'string' || reply['msg'] === 'isdbgrid');
      asked.catch(() => {
        if (this.#answer === asked) this.#answer = undefined;
      });
      this.#answer = asked;
    }
    return this.#answer;
  }
}
