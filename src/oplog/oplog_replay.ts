/**
 * Replays oplog files onto a server with `applyOps`: the entries with from < ts <= until,
 * in order, in batches (mongobackup's `--recovery -s <start> -t <end>`). `--from` is the
 * last entry the target already holds (a backup's last oplog entry), `--until` the last
 * one to apply.
 *
 * How the entries are sent, as mongorestore's --oplogReplay sends them
 * (mongo-tools mongorestore/oplog.go, HandleNonTxnOp):
 *   - inserts, updates and deletes go in batches, bounded by bytes and count, well under
 *     the 16 MiB a command may be;
 *   - a command entry goes alone (mongod wants dropDatabase alone, and a create alone
 *     for any user short of every privilege: apply_ops_cmd.cpp);
 *   - createIndexes and commitIndexBuild entries become createIndexes commands, since
 *     mongod's applyOps refuses them; startIndexBuild and abortIndexBuild are skipped;
 *   - no-ops are skipped; a nested applyOps entry is unpacked; a transaction's prepared
 *     or partial entries are refused.
 *
 * Running it twice gives the same data. mongod's applyOps makes re-applied inserts
 * upserts, and re-applied commands succeed; what remains is what mongod's own initial
 * sync ignores when it applies entries onto newer data
 * (src/mongo/db/repl/oplog_applier_utils.cpp, applyOplogBatchCommon): an update whose
 * document is gone ("there must be a delete operation for the document later in the
 * oplog"), and a write to a collection that a later entry of the range drops. Both are
 * counted as skipped. Anything else that fails stops the replay, naming the entry.
 */
import { decodeOplogEntry, readOplogEntries } from './oplog_files.js';
import { compareOplogTs, formatOplogTs, type OplogTs } from './oplog_ts.js';
import { databaseOf, droppedAfter, scanOplog, uuidHexOf, type Drops } from './replay_scan.js';

type Doc = Record<string, unknown>;

/** What the replay needs of the target server (driver_replay_target.ts builds it on the driver). */
export interface ReplayTarget {
  applyOps(entries: Doc[]): Promise<ApplyOpsOutcome>;
  createIndexes(db: string, collection: string, indexes: Doc[]): Promise<void>;
  /** The collections of `db`: name to UUID (hex; undefined when the server shows none). */
  collections(db: string): Promise<Map<string, string | undefined>>;
}

export type ApplyOpsOutcome = { ok: true } | { ok: false; code: number; codeName: string; errmsg: string; results: boolean[] | undefined };

export interface ReplayProgress {
  /** Once, before anything is applied: what the range holds. */
  start(totalBytes: number, totalEntries: number): void;
  /** After entries are done with (applied, skipped or no-ops). */
  advance(bytes: number, entries: number): void;
}

export interface ReplayOptions {
  dir: string;
  from: OplogTs;
  until: OplogTs;
  target: ReplayTarget;
  progress?: ReplayProgress;
  signal?: AbortSignal;
  /** Bytes of entries per applyOps; default 4 MiB. */
  batchBytes?: number;
  /** Entries per applyOps; default 1000. */
  batchEntries?: number;
}

export interface ReplayResult {
  /** Entries in the range, all of them done with. */
  entries: number;
  bytes: number;
  applied: number;
  /** Entries that did nothing because a later entry of the range had already run (see above). */
  skipped: number;
  /** No-ops, and index-build bookkeeping entries. */
  ignored: number;
  /** The last entry applied, if any. */
  lastApplied: OplogTs | undefined;
}

/** The replay stopped after applying some entries: rerunning it is safe. */
export class ReplayFailed extends Error {
  override readonly name = 'ReplayFailed';
  constructor(message: string, readonly lastApplied: OplogTs | undefined) {
    super(message);
  }
}

const NO_PROGRESS: ReplayProgress = { start: () => undefined, advance: () => undefined };
const UNKNOWN_ERROR = 8;
const NAMESPACE_NOT_FOUND = 26;
const SKIPPED_COMMANDS = new Set(['startIndexBuild', 'abortIndexBuild']);

interface Pending {
  op: Doc;
  ts: OplogTs;
  size: number;
}

function commandOf(op: Doc): [string, Doc] | undefined {
  const o = op['o'];
  if (op['op'] !== 'c' || o === null || typeof o !== 'object') return undefined;
  const name = Object.keys(o)[0];
  return name === undefined ? undefined : [name, o as Doc];
}

class Replayer {
  private readonly result: ReplayResult = { entries: 0, bytes: 0, applied: 0, skipped: 0, ignored: 0, lastApplied: undefined };
  private batch: Pending[] = [];
  private batchBytes = 0;

  constructor(private readonly options: ReplayOptions, private readonly drops: Drops, private readonly progress: ReplayProgress) {}

  async entry(doc: Doc, ts: OplogTs, size: number): Promise<void> {
    this.result.entries += 1;
    this.result.bytes += size;
    await this.op(doc, ts, size);
  }

  /** One operation: `size` is what progress advances by once it is done with. */
  private async op(op: Doc, ts: OplogTs, size: number): Promise<void> {
    const command = commandOf(op);
    if (op['op'] === 'n' || (command !== undefined && SKIPPED_COMMANDS.has(command[0]))) {
      this.result.ignored += 1;
      this.progress.advance(size, 1);
      return;
    }
    if (command === undefined) {
      const maxBytes = this.options.batchBytes ?? 4 * 1024 * 1024;
      // Flushed before an entry would take the batch past its bytes: only an entry that
      // alone is larger (up to 16 MiB + 16 KiB) makes a larger request, and it goes alone.
      if (this.batch.length > 0 && this.batchBytes + size > maxBytes) await this.flush();
      this.batch.push({ op, ts, size });
      this.batchBytes += size;
      if (this.batchBytes >= maxBytes || this.batch.length >= (this.options.batchEntries ?? 1000)) await this.flush();
      return;
    }
    await this.flush();
    await this.command(op, command, ts, size);
  }

  private async command(op: Doc, [name, o]: [string, Doc], ts: OplogTs, size: number): Promise<void> {
    const db = databaseOf(String(op['ns']));
    if (name === 'applyOps') {
      if ('prepare' in o || 'partialTxn' in o || !Array.isArray(o['applyOps'])) {
        throw new ReplayFailed(`the entry at ts ${formatOplogTs(ts)} is part of a prepared or partial transaction, which replay does not apply`, this.result.lastApplied);
      }
      const inner = o['applyOps'] as Doc[];
      for (const [i, nested] of inner.entries()) await this.op(nested, ts, i === inner.length - 1 ? size : 0);
      return;
    }
    if (name === 'createIndexes' || name === 'commitIndexBuild') {
      const { [name]: collection, ...spec } = o;
      const indexes = name === 'createIndexes' ? [spec] : (Array.isArray(o['indexes']) ? (o['indexes'] as Doc[]) : []);
      // On a missing collection, oplog application makes the entry a no-op (NamespaceNotFound
      // is one of its acceptable errors, oplog.cpp kOpsMap); the createIndexes command would
      // create the collection instead, which a later drop in the range no longer removes.
      if (!(await this.options.target.collections(db)).has(String(collection))) {
        this.result.skipped += 1;
        this.progress.advance(size, 1);
        return;
      }
      try {
        await this.options.target.createIndexes(db, String(collection), indexes);
      } catch (err) {
        throw new ReplayFailed(`createIndexes from the entry at ts ${formatOplogTs(ts)} failed: ${(err as Error).message}`, this.result.lastApplied);
      }
      this.applied(ts, 1, size);
      return;
    }
    await this.send([{ op, ts, size }]);
  }

  async flush(): Promise<void> {
    const batch = this.batch;
    this.batch = [];
    this.batchBytes = 0;
    if (batch.length > 0) await this.send(batch);
  }

  private applied(ts: OplogTs, entries: number, bytes: number): void {
    this.result.applied += entries;
    this.result.lastApplied = ts;
    this.progress.advance(bytes, entries);
  }

  private async send(batch: Pending[]): Promise<void> {
    this.options.signal?.throwIfAborted();
    let pending = batch;
    while (pending.length > 0) {
      const outcome = await this.options.target.applyOps(pending.map((p) => p.op));
      if (outcome.ok) {
        this.done(pending, pending.map(() => true));
        return;
      }
      const results = outcome.results;
      const failure = `applyOps failed: ${outcome.errmsg} (${outcome.codeName}, code ${outcome.code})`;
      if (results === undefined || results.length === 0 || results.length > pending.length) {
        throw new ReplayFailed(`${failure}, at the entry at ts ${formatOplogTs((pending[0] as Pending).ts)}`, this.result.lastApplied);
      }
      if (outcome.code === UNKNOWN_ERROR && results.length === pending.length) {
        // Every entry ran; those that returned false failed on their own.
        await this.judge(pending, results, failure);
        return;
      }
      // The entry at results.length - 1 threw and stopped applyOps there.
      const stopped = pending[results.length - 1] as Pending;
      const ran = pending.slice(0, results.length - 1);
      await this.judge(ran, results.slice(0, -1), failure);
      const benign = outcome.code === NAMESPACE_NOT_FOUND && stopped.op['op'] !== 'c' && droppedAfter(this.drops, stopped.op, stopped.ts);
      if (!benign) throw new ReplayFailed(`${failure}, at the entry at ts ${formatOplogTs(stopped.ts)}`, this.result.lastApplied);
      this.skipped(stopped);
      pending = pending.slice(results.length);
    }
  }

  /** Entries that ran, with their results: each false one is a skip, or stops the replay. */
  private async judge(ran: Pending[], results: boolean[], failure: string): Promise<void> {
    for (const [i, p] of ran.entries()) {
      if (results[i] === true) continue;
      if (!(await this.explainable(p))) {
        throw new ReplayFailed(`${failure}: the entry at ts ${formatOplogTs(p.ts)} (${String(p.op['op'])} on ${String(p.op['ns'])}) failed`, this.result.lastApplied);
      }
    }
    this.done(ran, results);
  }

  private done(ran: Pending[], results: boolean[]): void {
    for (const [i, p] of ran.entries()) {
      if (results[i] === true) this.applied(p.ts, 1, p.size);
      else this.skipped(p);
    }
  }

  private skipped(p: Pending): void {
    this.result.skipped += 1;
    this.progress.advance(p.size, 1);
  }

  /** A failed entry that a later entry of the range explains: see the file's comment. */
  private async explainable(p: Pending): Promise<boolean> {
    if (droppedAfter(this.drops, p.op, p.ts)) return true;
    if (p.op['op'] !== 'u') return false;
    const hex = uuidHexOf(p.op['ui']);
    if (hex === undefined) return true;
    // A missing UUID is no deleted document: the target is not a copy of this replica set.
    const uuids = new Set((await this.options.target.collections(databaseOf(String(p.op['ns'])))).values());
    if (uuids.has(hex)) return true;
    throw new ReplayFailed(
      `no collection on the target has the UUID of ${String(p.op['ns'])} (entry at ts ${formatOplogTs(p.ts)}): ` +
        'replay onto a restore of the replica set these entries come from',
      this.result.lastApplied,
    );
  }

  finish(): ReplayResult {
    return { ...this.result };
  }
}

export async function replayOplog(options: ReplayOptions): Promise<ReplayResult> {
  const { from, until } = options;
  if (compareOplogTs(until, from) < 0) throw new RangeError(`--until ${formatOplogTs(until)} is before --from ${formatOplogTs(from)}`);
  const scan = await scanOplog(options.dir, from, until);
  const progress = options.progress ?? NO_PROGRESS;
  progress.start(scan.bytes, scan.entries);
  const replayer = new Replayer(options, scan.drops, progress);
  for await (const entry of readOplogEntries(scan.files)) {
    if (compareOplogTs(entry.ts, from) <= 0) continue;
    if (compareOplogTs(entry.ts, until) > 0) break;
    options.signal?.throwIfAborted();
    await replayer.entry(decodeOplogEntry(entry), entry.ts, entry.bytes.length);
  }
  await replayer.flush();
  return replayer.finish();
}
