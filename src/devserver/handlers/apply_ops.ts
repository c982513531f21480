/**
 * applyOps: oplog entries applied one at a time, as mongod 7.0 applies them
 * (src/mongo/db/commands/apply_ops_cmd.cpp, src/mongo/db/repl/apply_ops.cpp _applyOps,
 * src/mongo/db/commands/oplog_application_checks.cpp checkOperation):
 *   - `op: 'n'` entries are skipped: neither applied nor in `results`;
 *   - a CRUD entry whose `ui` names no collection, or another one than `ns`, fails
 *     (3318200); one on a missing collection throws NamespaceNotFound, except a delete,
 *     which succeeds;
 *   - a failed entry (a status) records `false` and the next one runs; the reply is then
 *     UnknownError, "applyOps had one or more errors applying ops", with `applied` and
 *     `results`;
 *   - an entry that throws stops applyOps: the reply has the error, and `applied` and
 *     `results` up to and including that entry;
 *   - success: `{applied, results: [true, …], ok: 1}`.
 * What each entry does is in replication/apply_crud.ts and apply_command.ts. Entries are
 * not applied atomically (mongod's applyOps has not been atomic since 5.0): a failure
 * leaves the entries before it applied.
 */
import type { Document } from '../bson.js';
import type { Command, CommandContext } from './handler.js';
import { finishWrite } from './write.js';
import { applyCrudEntry } from '../replication/apply_crud.js';
import { applyCommandEntry, uuidHex } from '../replication/apply_command.js';
import { isPlainDocument } from '../replication/diff_apply.js';
import { CommandError } from '../../errors.js';
import { DevServerError, DevServerCodes } from '../dev_server_errors.js';

/** OplogApplication::parseMode: the modes a client may name (src/mongo/db/repl/oplog.cpp). */
const MODES = new Set(['InitialSync', 'Recovering', 'Secondary', 'ApplyOps']);

/** checkOperation: each entry's `op` and `ns`, before anything is applied. */
function checkEntries(value: unknown): Document[] {
  if (!Array.isArray(value)) {
    throw new DevServerError(DevServerCodes.TypeMismatch, `wrong type for field (applyOps) ${value === null ? 'null' : typeof value} != array`);
  }
  return value.map((entry: unknown, index) => {
    const illegal = (message: string) => new DevServerError(DevServerCodes.IllegalOperation, message);
    if (!isPlainDocument(entry)) throw new DevServerError(DevServerCodes.FailedToParse, `op not an object: ${index}`);
    const op = entry['op'];
    if (op === undefined) throw illegal(`op does not contain required "op" field: ${index}`);
    if (typeof op !== 'string') throw illegal(`"op" field is not a string: ${index}`);
    if (op === '') throw illegal(`"op" field value cannot be empty: ${index}`);
    const ns = entry['ns'];
    if (ns === undefined) throw illegal(`op does not contain required "ns" field: ${index}`);
    if (typeof ns !== 'string') throw illegal(`"ns" field is not a string: ${index}`);
    if (ns.includes('\0')) throw illegal('namespaces cannot have embedded null characters');
    if (op !== 'n' && ns === '') throw illegal(`"ns" field value cannot be empty when op type is not 'n': ${index}`);
    return entry;
  });
}

/**
 * `alwaysUpsert`: an update of a missing document inserts it. mongod 7.0's default is
 * true (src/mongo/db/repl/apply_ops.idl, `default: true`; jstests/noPassthrough/
 * apply_ops_mode.js, "Test default succeeds"); later versions drop the option.
 */
function alwaysUpsertOf(cmd: Document): boolean {
  const value = cmd['alwaysUpsert'];
  if (value === undefined) return true;
  if (typeof value !== 'boolean') {
    // The IDL's bool field (idl/idl_parser.cpp, checkAndAssertType).
    throw new DevServerError(DevServerCodes.TypeMismatch, `BSON field 'applyOps.alwaysUpsert' is the wrong type '${value === null ? 'null' : typeof value}', expected type 'bool'`);
  }
  return value;
}

function checkOptions(cmd: Document, entries: Document[]): void {
  if (cmd['prepare'] !== undefined) throw new DevServerError(DevServerCodes.BadValue, "applyOps command can't have 'prepare' field");
  alwaysUpsertOf(cmd);
  const mode = cmd['oplogApplicationMode'];
  if (mode !== undefined && (typeof mode !== 'string' || !MODES.has(mode))) {
    throw new DevServerError(DevServerCodes.FailedToParse, `Could not parse oplogApplicationMode :: caused by :: Invalid oplog application mode provided: ${String(mode)}`);
  }
  const dropsDatabase = entries.some((e) => e['op'] === 'c' && isPlainDocument(e['o']) && Object.keys(e['o'])[0] === 'dropDatabase');
  if (dropsDatabase && entries.length !== 1) {
    throw new DevServerError(DevServerCodes.ApplyOpsDropDatabaseNotAlone, 'dropDatabase in an applyOps must be the only entry');
  }
}

/** NamespaceString::isValid for a collection: `<db>.<coll>`, both non-empty. */
function isValidCollectionNs(ns: string): boolean {
  const dot = ns.indexOf('.');
  return dot > 0 && dot < ns.length - 1;
}

/**
 * Which collection each UUID names, read once per run of CRUD entries instead of once per
 * entry (a batch holds up to thousands); a command entry may change it, so it is read again after one.
 */
class UuidNames {
  private names: Map<string, string> | undefined;

  constructor(private readonly state: CommandContext['state']) {}

  nsOf(hex: string): string | undefined {
    this.names ??= new Map(this.state.engine.listCollections().map((meta) => [Buffer.from(meta.uuid.buffer).toString('hex'), meta.ns]));
    return this.names.get(hex);
  }

  forget(): void {
    this.names = undefined;
  }
}

/** One CRUD entry: its `ui` checked against `ns`, then applied; a failed status or undefined. */
function applyCrud(ctx: CommandContext, op: Document, uuids: UuidNames, alwaysUpsert: boolean): DevServerError | undefined {
  const { state } = ctx;
  const ns = op['ns'] as string;
  if (op['ui'] !== undefined) {
    const hex = uuidHex(op['ui']);
    const named = hex === undefined ? undefined : uuids.nsOf(hex);
    if (named !== ns) {
      return new DevServerError(DevServerCodes.ApplyOpsUuidMismatch, `Namespace '${ns}' and UUID '${hex ?? String(op['ui'])}' point to different collections`);
    }
  }
  if (state.engine.getCollection(ns) === undefined) {
    // "For idempotency reasons, return success on delete operations."
    if (op['op'] === 'd') return undefined;
    throw new DevServerError(DevServerCodes.NamespaceNotFound, `cannot apply insert or update operation on a non-existent namespace ${ns}`);
  }
  return applyCrudEntry(state, ns, op, alwaysUpsert);
}

function applyOps(cmd: Document, ctx: CommandContext): Document {
  const entries = checkEntries(cmd['applyOps']);
  checkOptions(cmd, entries);
  const alwaysUpsert = alwaysUpsertOf(cmd);
  const results: boolean[] = [];
  const uuids = new UuidNames(ctx.state);
  let errors = 0;
  try {
    for (const op of entries) {
      if (op['op'] === 'n') continue;
      if (op['op'] !== 'c' && !isValidCollectionNs(op['ns'] as string)) {
        throw new DevServerError(DevServerCodes.InvalidNamespace, `invalid ns: ${String(op['ns'])}`);
      }
      let status: DevServerError | undefined;
      try {
        if (op['op'] === 'c') {
          uuids.forget();
          applyCommandEntry(ctx.state, op);
        } else {
          status = applyCrud(ctx, op, uuids, alwaysUpsert);
        }
      } catch (err) {
        results.push(false);
        if (err instanceof CommandError) {
          throw new DevServerError(err.code, err.message, { codeName: err.codeName, extra: { applied: results.length, results } });
        }
        throw err;
      }
      results.push(status === undefined);
      if (status !== undefined) {
        ctx.state.log.info({ error: status.message }, 'applyOps error applying');
        errors += 1;
      }
    }
  } finally {
    // What was applied stays applied, so j: true covers it whatever the outcome.
    finishWrite(ctx.state, cmd);
  }
  if (errors > 0) {
    throw new DevServerError(DevServerCodes.UnknownError, 'applyOps had one or more errors applying ops', { extra: { applied: results.length, results } });
  }
  return { applied: results.length, results, ok: 1 };
}

export const applyOpsCommands: Command[] = [{ names: ['applyOps'], isWrite: true, run: applyOps }];
