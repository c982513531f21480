/**
 * currentOp and killOp through the proxy, so that a running backup is found and stopped
 * the way Percona's users found and stopped a running backupStart: `db.currentOp()`, then
 * `db.killOp(opid)`.
 *
 * - `{currentOp: 1, ...filter}`, and `{aggregate: 1, pipeline: [{$currentOp: {...}},
 *   {$match: ...}...]}`, which is what mongosh's db.currentOp() sends (@mongosh/shell-api
 *   src/database.ts, _getCurrentOperations, in mongosh 2.x): mongod answers on the client's
 *   own connection, so it judges the request as it would any other of the client's (its
 *   user, its privileges, its own errors); then the backup's entry (backup_operation.ts)
 *   is added to mongod's `inprog` (or the cursor's first batch), if it passes the filter
 *   (op_filter.ts) and the reply still fits, and only for a client that may see other
 *   users' operations: one that asked for everyone's (currentOp without `$ownOps`,
 *   `$currentOp: {allUsers: true}`), which mongod answers only to a holder of `inprog`
 *   (current_op.cpp, document_source_current_op.h), or one that holds `inprog` (asked
 *   through Authorization before the request goes on). Any user may list its own
 *   operations; the backup is not among them. Otherwise mongod's reply passes as it came:
 *   a filter the proxy cannot judge as mongod would (a PCRE-only pattern, $expr), a reply
 *   with no room left, a backup that ended meanwhile. A pipeline with any stage other
 *   than $match after $currentOp goes on untouched too: adding an entry after a $group or
 *   a $project would change what mongod computed.
 * - `{killOp: 1, op: <the backup's opid>}` aborts the backup, and is answered as mongod
 *   answers a killOp (kill_op.cpp: `{info: "attempting to kill op", ok: 1}`, at once:
 *   the kill is asked for, not awaited). Every other killOp goes on to mongod untouched.
 *
 * Only these names are claimed, `aggregate` only when its first value is a number (a
 * collectionless aggregate: $currentOp must run as `{aggregate: 1}` on admin), and only
 * while a backup runs, so an application's aggregates on collections, and all of these
 * while no backup runs, stream through unread.
 */
import { calculateObjectSize, Double, Int32, Long } from 'bson';
import type { CommandRequest, Document } from '../wire/command_message.js';
import { FORWARD, type ClientInfo, type InterceptorResult, type Upstream, type UpstreamReply } from '../proxy/interceptor.js';
import { MAX_BSON_INTERNAL_SIZE, OpMsgFlag } from '../wire/constants.js';
import type { BackupService } from './backup_service.js';
import type { BackupOperations, RunningOperation } from './backup_operation.js';
import { isGenericArgument } from '../wire/generic_arguments.js';
import { trueValue } from '../wire/true_value.js';
import { matchesFilter, UnsupportedFilter } from './op_filter.js';
import { Authorization } from './authorization.js';
import type { Logger } from '../log.js';

/** BSON numeric type bytes: double, int32, int64, decimal128. */
const NUMERIC_TYPES: ReadonlySet<number> = new Set([0x01, 0x10, 0x12, 0x13]);

/** The currentOp command's own parameters (current_op_common.cpp, kCurOpCmdParams); the rest is the filter. */
const CURRENT_OP_PARAMETERS: ReadonlySet<string> = new Set(['$all', '$ownOps', '$truncateOps']);

export class CurrentOpCommands {
  constructor(
    private readonly backups: BackupService,
    private readonly operations: BackupOperations,
    private readonly log: Logger | undefined,
    private readonly authorization: Authorization = new Authorization(),
  ) {}

  /**
   * Whether a command of this name, whose first value has this BSON type, is one of these,
   * and a backup is running or starting: otherwise there is nothing to list or kill, and
   * the message streams through unread, as any other (no pipelining lost, no large
   * `$documents` pipeline decoded on the forwarding loop). Asked for every command
   * message, from its first bytes: the name first, then one field of the engine.
   */
  claims(commandName: string, argumentType: number): boolean {
    const ours = commandName === 'aggregate' ? NUMERIC_TYPES.has(argumentType) : commandName === 'currentOp' || commandName === 'killOp';
    return ours && this.backups.busy();
  }

  async run(request: CommandRequest, client: ClientInfo, upstream: Upstream): Promise<InterceptorResult> {
    // mongod answers none: nothing to add to, and a kill sent so is still a kill.
    const noReply = (request.flags & OpMsgFlag.MoreToCome) !== 0;
    const running = this.operations.running(this.backups.status());
    if (running === undefined) return FORWARD;
    const cmd = request.command;
    switch (request.name) {
      case 'killOp':
        return this.killOp(request, client, upstream, running);
      case 'currentOp': {
        if (noReply) return FORWARD;
        // Without $ownOps mongod answers only a holder of inprog (current_op.cpp).
        if (trueValue(cmd['$ownOps']) && !(await this.authorization.holds(client, upstream, 'inprog'))) return FORWARD;
        return this.amend(await upstream.forward(), currentOpFilters(cmd), (reply) => reply['inprog']);
      }
      default: {
        const stage = currentOpStage(cmd);
        if (stage === undefined || noReply) return FORWARD;
        // allUsers (default false) is what needs inprog (document_source_current_op.h).
        if (!trueValue(stage.options['allUsers']) && !(await this.authorization.holds(client, upstream, 'inprog'))) return FORWARD;
        return this.amend(await upstream.forward(), stage.filters, (reply) => (reply['cursor'] as Document | undefined)?.['firstBatch']);
      }
    }
  }

  private async killOp(request: CommandRequest, client: ClientInfo, upstream: Upstream, running: RunningOperation): Promise<InterceptorResult> {
    const cmd = request.command;
    // mongod's own answer wherever it would refuse the kill: not on admin, in a transaction.
    if (request.db !== 'admin' || 'txnNumber' in cmd || 'autocommit' in cmd) return FORWARD;
    if (opNumber(cmd['op']) !== running.opid) return FORWARD;
    await this.authorization.authorize(client, upstream, 'killop', 'killOp', cmd);
    this.backups.abort(`killOp (op ${running.opid}) from ${client.remoteAddress}`);
    return { info: 'attempting to kill op', ok: 1 };
  }

  /**
   * mongod's reply with the backup's entry added to its list of operations, if the entry
   * passes the filters; mongod's reply untouched otherwise, or when it is an error.
   */
  private amend(reply: UpstreamReply, filters: Document[], list: (reply: Document) => unknown): InterceptorResult {
    let doc: Document;
    try {
      doc = reply.document();
    } catch (err) {
      this.log?.warn({ err: String(err) }, 'currentOp: cannot decode mongod\'s reply; passing it on as it came');
      return reply;
    }
    const ops = list(doc);
    if (Number(doc['ok']) !== 1 || !Array.isArray(ops)) return reply;
    // Read now, after mongod answered: the entry is as fresh as mongod's own.
    const running = this.operations.running(this.backups.status());
    if (running === undefined) return reply;
    try {
      if (!filters.every((filter) => matchesFilter(running.document, filter))) return reply;
    } catch (err) {
      if (!(err instanceof UnsupportedFilter)) throw err;
      this.log?.info({ unsupported: err.message }, 'currentOp: the filter uses what the proxy cannot judge; the backup is not listed');
      return reply;
    }
    ops.push(running.document);
    // mongod's reply may be close to the limit already (a 16 MiB currentOp): a reply we
    // could not send would cost the client mongod's answer, for the sake of one entry.
    if (calculateObjectSize(doc, { ignoreUndefined: false }) > MAX_BSON_INTERNAL_SIZE) {
      ops.pop();
      this.log?.info({ limit: MAX_BSON_INTERNAL_SIZE }, "currentOp: mongod's reply has no room for the backup's entry; the backup is not listed");
      return reply;
    }
    return doc;
  }
}

/** The currentOp command's filter: every field but its name, its parameters and the generic ones. */
function currentOpFilters(cmd: Document): Document[] {
  const filter: Document = {};
  for (const [index, [field, value]] of Object.entries(cmd).entries()) {
    if (index === 0 || CURRENT_OP_PARAMETERS.has(field) || isGenericArgument(field)) continue;
    filter[field] = value;
  }
  return [filter];
}

/**
 * The $currentOp options and the filters of `[{$currentOp: {...}}, {$match: ...}...]`:
 * undefined when the aggregate is anything else (another first stage, another later
 * stage, an explain).
 */
function currentOpStage(cmd: Document): { options: Document; filters: Document[] } | undefined {
  const pipeline = cmd['pipeline'];
  if (!Array.isArray(pipeline) || cmd['explain'] !== undefined) return undefined;
  const [first, ...rest] = pipeline as unknown[];
  const head = stage(first);
  if (head?.name !== '$currentOp') return undefined;
  const options = head.value !== null && typeof head.value === 'object' ? (head.value as Document) : {};
  const filters: Document[] = [];
  for (const later of rest) {
    const spec = stage(later);
    if (spec?.name !== '$match' || spec.value === null || typeof spec.value !== 'object') return undefined;
    filters.push(spec.value as Document);
  }
  return { options, filters };
}

function stage(value: unknown): { name: string; value: unknown } | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const entries = Object.entries(value as Document);
  const only = entries[0];
  return entries.length === 1 && only !== undefined ? { name: only[0], value: only[1] } : undefined;
}

/** killOp's `op` as an integer, from any numeric BSON type (bsonExtractIntegerField); else undefined. */
function opNumber(value: unknown): number | undefined {
  let n: number | undefined;
  if (typeof value === 'number') n = value;
  else if (value instanceof Int32 || value instanceof Double) n = value.valueOf();
  else if (value instanceof Long) n = value.toNumber();
  return n !== undefined && Number.isSafeInteger(n) ? n : undefined;
}
