/**
 * currentOp, the `$currentOp` stage and killOp, as far as the dev server has operations:
 * the command that asks (mongod always lists the currentOp itself), and the writers held
 * back by an fsync lock, with the `fsyncLock` flag a backup tool polls. The dev server
 * runs one command at a time, so killOp has nothing to kill; it checks `op` as mongod
 * does (kill_op_cmd_base.cpp, parseOpId) and answers as mongod does (kill_op.cpp).
 */
import { Int32, Long } from 'bson';
import type { Document } from '../bson.js';
import type { Command, CommandContext } from './handler.js';
import { ArraySource } from '../cursors.js';
import { bsonSize, cursorBatchSize, isCollectionless } from './common.js';
import { firstBatchReply } from './read.js';
import { runPipeline } from '../query/aggregate.js';
import { isDocumentValue, typeName } from '../query/bsontype.js';
import { isNumeric, toNumber } from '../query/values.js';
import { compileFilter } from '../query/filter.js';
import { isGenericArgument } from '../../wire/generic_arguments.js';
import { DevServerError, DevServerCodes } from '../dev_server_errors.js';

/** mongod's opids are 32-bit (operation_id.h), reported as int32 (curop.cpp). */
let nextOpId = 1;

/** The $currentOp options of mongod 7.0 (document_source_current_op.idl). */
const CURRENT_OP_OPTIONS = new Set(['allUsers', 'idleConnections', 'idleCursors', 'idleSessions', 'localOps', 'truncateOps', 'backtrace', 'targetAllNodes']);

/** The operations running now: the asking command, and the writers an fsync lock holds. */
function operations(cmd: Document, ns: string, ctx: CommandContext): Document[] {
  const { connection, state } = ctx;
  const opid = nextOpId;
  nextOpId = nextOpId >= 2 ** 31 - 1 ? 1 : nextOpId + 1;
  const self: Document = {
    type: 'op',
    desc: `conn${connection.id}`,
    connectionId: new Int32(connection.id),
    client: connection.remoteAddress,
    ...(connection.clientMetadata === undefined ? {} : { clientMetadata: connection.clientMetadata }),
    active: true,
    currentOpTime: new Date().toISOString(),
    opid: new Int32(opid),
    secs_running: Long.fromNumber(0),
    microsecs_running: Long.fromNumber(0),
    op: 'command',
    ns,
    command: cmd,
    numYields: new Int32(0),
    locks: {},
    waitingForLock: false,
  };
  const ops = [self];
  if (state.fsyncLock.blockedWriters > 0) {
    ops.push({ type: 'op', active: true, desc: 'blocked writers', waitingForLock: true, numWaiting: state.fsyncLock.blockedWriters });
  }
  return ops;
}

/** The currentOp command's own parameters (current_op_common.cpp, kCurOpCmdParams); the rest is the filter. */
const CURRENT_OP_PARAMETERS = new Set(['$all', '$ownOps', '$truncateOps']);

function currentOp(cmd: Document, ctx: CommandContext): Document {
  const { state } = ctx;
  // mongod runs the command as {$currentOp}, then {$match: <every other field>} (current_op_common.cpp).
  const filter: Document = {};
  for (const [index, [field, value]] of Object.entries(cmd).entries()) {
    if (index > 0 && !CURRENT_OP_PARAMETERS.has(field) && !isGenericArgument(field)) filter[field] = value;
  }
  const reply: Document = { inprog: operations(cmd, 'admin.$cmd', ctx).filter(compileFilter(filter)) };
  if (state.fsyncLock.locked) {
    reply['fsyncLock'] = true;
    reply['info'] = 'use db.fsyncUnlock() to terminate the fsync write/snapshot lock';
  }
  reply['ok'] = 1;
  return reply;
}

/** `{aggregate: 1, pipeline: [{$currentOp: {...}}, ...]}` on admin; the caller checks the first stage. */
export function runCurrentOpStage(stage: Document, cmd: Document, ctx: CommandContext): Document {
  if (ctx.db !== 'admin' || !isCollectionless(cmd)) {
    throw new DevServerError(DevServerCodes.InvalidNamespace, "$currentOp must be run against the 'admin' database with {aggregate: 1}");
  }
  const options = stage['$currentOp'];
  if (!isDocumentValue(options)) {
    throw new DevServerError(DevServerCodes.FailedToParse, `$currentOp options must be specified in an object, but found: ${typeName(options)}`);
  }
  for (const [key, value] of Object.entries(options)) {
    if (!CURRENT_OP_OPTIONS.has(key)) throw new DevServerError(DevServerCodes.IDLUnknownField, `BSON field '$currentOp.${key}' is an unknown field.`);
    if (typeof value !== 'boolean') {
      throw new DevServerError(DevServerCodes.TypeMismatch, `BSON field '$currentOp.${key}' is the wrong type '${typeName(value)}', expected type 'bool'`);
    }
  }
  const pipeline = cmd['pipeline'] as Document[];
  const results = runPipeline(operations(cmd, 'admin.$cmd.aggregate', ctx), pipeline.slice(1));
  return firstBatchReply(ctx, { ns: 'admin.$cmd.aggregate', source: new ArraySource(results, bsonSize), batchSize: cursorBatchSize(cmd) });
}

/** killOp's `op`, read as mongod reads it (bsonExtractIntegerField, then the 32-bit check). */
function killOp(cmd: Document): Document {
  const op = cmd['op'];
  if (op === undefined) throw new DevServerError(DevServerCodes.NoSuchKey, 'Missing expected field "op"');
  if (!isNumeric(op)) throw new DevServerError(DevServerCodes.TypeMismatch, `Expected field "op" to have numeric type, but found ${typeName(op)}`);
  const n = toNumber(op);
  if (!Number.isInteger(n)) {
    throw new DevServerError(DevServerCodes.BadValue, `Expected field "op" to have a value exactly representable as a 64-bit integer, but found op: ${n}`);
  }
  if (n < -(2 ** 31) || n > 2 ** 31 - 1) {
    throw new DevServerError(DevServerCodes.OpIdNotInt32, `invalid op : ${n}. Op ID cannot be represented with 32 bits`);
  }
  // killOp always reports success once past its checks (kill_op.cpp).
  return { info: 'attempting to kill op', ok: 1 };
}

export const currentOpCommands: Command[] = [
  { names: ['currentOp'], adminOnly: true, run: currentOp },
  { names: ['killOp'], adminOnly: true, run: killOp },
];
