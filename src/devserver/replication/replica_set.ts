/**
 * The dev server as a single-node replica set (`--replSet <name>`): its configuration
 * in local.system.replset, and what hello says about it. Uninitiated until
 * replSetInitiate; then PRIMARY of term 1 at once, as a one-node set elects itself
 * (the only vote is its own), and again after every restart on the same dbpath.
 */
import { Long, ObjectId, Timestamp } from 'bson';
import type { Document } from '../bson.js';
import { decodeDocument, encodeDocument } from '../bson.js';
import type { StorageEngine } from '../storage/storage_engine.js';
import { Oplog, OPLOG_NS, type OpTime } from './oplog.js';
import { noopEntry } from './oplog_entries.js';

const REPLSET_NS = 'local.system.replset';

/** The dev server's set never holds another election: always term 1. */
export const TERM = 1;

/**
 * A primary's electionId is its term behind a maximal prefix (OID::fromTerm,
 * src/mongo/bson/oid.cpp): 7fffffff, then the term as 8 big-endian bytes.
 */
export const ELECTION_ID = new ObjectId(`7fffffff${TERM.toString(16).padStart(16, '0')}`);

/** mongod's floor for its default oplog size (src/mongo/db/repl/oplog.cpp, getNewOplogSizeBytes). */
export const DEFAULT_OPLOG_SIZE_MB = 990;

export interface ReplicaSetOptions {
  /** `--replSet`. */
  readonly name: string;
  /** `--oplogSize`, in megabytes. */
  readonly oplogSizeMB: number;
}

export class ReplicaSet {
  private stored: Document | undefined;
  /** When this node became primary: at initiate, or at start for an initiated set. */
  private elected: { date: Date; time: Timestamp } | undefined;

  private constructor(private readonly engine: StorageEngine, readonly options: ReplicaSetOptions) {}

  /** The set as the dbpath holds it: initiated when local.system.replset has its config. */
  static load(engine: StorageEngine, options: ReplicaSetOptions, oplog: Oplog | undefined): ReplicaSet {
    const set = new ReplicaSet(engine, options);
    for (const entry of engine.scanRecords(REPLSET_NS)) set.stored = decodeDocument(entry.doc);
    const storedName = set.stored?.['_id'];
    if (set.stored !== undefined && storedName !== options.name) {
      // mongod would come up outside its own set (REMOVED) and wait for a reconfig that
      // a single node never gets; refusing to start says what is wrong.
      throw new Error(`the dbpath holds replica set '${String(storedName)}', not '${options.name}' (--replSet)`);
    }
    if (set.stored !== undefined && oplog?.lastApplied() === undefined) {
      // A member with a config must have an oplog: without one, mongod's startup recovery
      // finds no top of oplog ("No oplog entries to apply for recovery. Oplog is empty",
      // src/mongo/db/repl/replication_recovery.cpp, recoverFromOplog) and the node goes
      // into initial sync, which a single-member set never finishes, so it never takes
      // writes; any other failure to read the top of the oplog is fassert 40290 there.
      // Writes accepted now would be in no oplog, so refusing to start says what is wrong.
      throw new Error(`the dbpath holds replica set '${String(storedName)}' but no oplog (${OPLOG_NS} is ${oplog === undefined ? 'missing' : 'empty'}): start without --replSet and drop local.system.replset to reinitiate, or restore the dbpath`);
    }
    if (set.stored !== undefined) set.elected = { date: new Date(), time: oplog?.lastApplied()?.ts ?? Timestamp.fromNumber(0) };
    return set;
  }

  get name(): string {
    return this.options.name;
  }

  get initiated(): boolean {
    return this.stored !== undefined;
  }

  /** The config as replSetGetConfig shows it; undefined before initiate. */
  get config(): Document | undefined {
    return this.stored;
  }

  get electionDate(): Date | undefined {
    return this.elected?.date;
  }

  get electionTime(): Timestamp | undefined {
    return this.elected?.time;
  }

  /** This node's host:port, as the config names it. */
  get me(): string {
    const members = this.stored?.['members'] as Document[] | undefined;
    return String(members?.[0]?.['host'] ?? '');
  }

  get memberId(): number {
    const members = this.stored?.['members'] as Document[] | undefined;
    return Number(members?.[0]?.['_id'] ?? 0);
  }

  /**
   * Saves `config`, creates the oplog with its first entry and becomes primary
   * (processReplSetInitiate, then the election a one-node set wins at once).
   */
  initiate(config: Document): Oplog {
    // As initializeReplSetStorage (src/mongo/db/repl/replication_coordinator_external_state_impl.cpp):
    // the oplog first, then the config and the "initiating set" entry in one transaction,
    // so a dbpath never holds a config without the oplog entry that goes with it.
    const oplog = this.engine.getCollection(OPLOG_NS) === undefined
      ? Oplog.create(this.engine, { sizeBytes: this.options.oplogSizeMB * 1024 * 1024 })
      : Oplog.open(this.engine);
    if (oplog === undefined) throw new Error(`${OPLOG_NS} exists but is not an oplog`);
    if (this.engine.getCollection(REPLSET_NS) === undefined) this.engine.createCollection(REPLSET_NS);
    const first = this.engine.writeTransaction(() => {
      this.engine.insertRecord(REPLSET_NS, encodeDocument(config), config['_id']);
      return oplog.append(noopEntry({ msg: 'initiating set' }));
    }, { sync: true });
    this.stored = config;
    this.elected = { date: new Date(), time: first.ts };
    return oplog;
  }

  /**
   * hello's replica set fields (src/mongo/db/repl/hello_response.cpp, addToBSON), in
   * mongod's order, after topologyVersion. Uninitiated: mongod's answer for a member
   * without a valid config.
   */
  helloFields(lastApplied: OpTime | undefined, legacy: boolean): Document {
    const primaryField = legacy ? 'ismaster' : 'isWritablePrimary';
    if (!this.initiated) {
      return { [primaryField]: false, secondary: false, info: 'Does not have a valid replica set config', isreplicaset: true };
    }
    const me = this.me;
    const fields: Document = {
      hosts: [me],
      setName: this.name,
      setVersion: Number(this.stored?.['version'] ?? 1),
      [primaryField]: true,
      secondary: false,
      primary: me,
      me,
      electionId: ELECTION_ID,
    };
    if (lastApplied !== undefined) {
      const opTime = opTimeDocument(lastApplied);
      // appendTimeT: whole seconds, as a date.
      const date = new Date(lastApplied.ts.high * 1000);
      // One node: every write is majority-committed once applied.
      fields['lastWrite'] = { opTime, lastWriteDate: date, majorityOpTime: opTime, majorityWriteDate: date };
    }
    return fields;
  }
}

/** `{ts, t}`, as mongod writes an OpTime (OpTime::toBSON). */
export function opTimeDocument(opTime: OpTime): Document {
  return { ts: opTime.ts, t: Long.fromValue(opTime.t) };
}
