/**
 * Everything the dev server's commands share: the storage engine, cursors, the
 * fsync lock, the open backup cursor and the counters serverStatus reports.
 */
import type { ObjectId } from 'bson';
import type { StorageEngine, BackupCursorHandle } from './storage/storage_engine.js';
import { CursorManager } from './cursors.js';
import { FsyncLock } from './fsync_lock_holder.js';
import type { Logger } from '../log.js';
import type { ServerTls } from '../tls/server_tls.js';
import { UserStore } from './auth/users.js';
import { TopologyVersion } from './replication/topology_version.js';
import type { ReplicaSet } from './replication/replica_set.js';
import type { Oplog } from './replication/oplog.js';

/** What we claim to be. MongoDB 7.0 speaks wire version 21. */
export const SERVER_VERSION = '7.0.0';
export const MAX_WIRE_VERSION = 21;
export const MIN_WIRE_VERSION = 0;

export interface DevServerOptions {
  dbpath: string;
  port: number;
  bind: string;
  /** Seconds between periodic checkpoints; mongod's default is 60. */
  checkpointIntervalSecs: number;
  /** When false, `$backupCursor` is unknown, as on MongoDB Community. */
  backupCursor: boolean;
  /**
   * Milliseconds a lock that flushes (the first, none held yet) takes to answer, as
   * mongod's does while its FSyncLockThread checkpoints a large dataset. Default 0.
   */
  fsyncLockDelayMs?: number;
  /** Appended to wiredtiger_open's configuration, as mongod's --wiredTigerEngineConfigString. */
  wiredTigerEngineConfigString?: string;
  /** mongod's --directoryperdb: each database's files in `<dbpath>/<db>/`. */
  directoryPerDB?: boolean;
  /** mongod's --wiredTigerDirectoryForIndexes: files in `collection/` and `index/`. */
  directoryForIndexes?: boolean;
  /** TLS towards clients (`--tls-mode allow|require`); absent: plain only. */
  tls?: ServerTls | undefined;
  /**
   * mongod's --auth: clients authenticate (SCRAM) and every command is checked against
   * the user's roles (src/devserver/auth/). Off by default, as mongod's.
   */
  auth?: boolean;
  /** mongod's --replSet: a single-node replica set of this name, uninitiated until replSetInitiate. */
  replSet?: string;
  /** mongod's --oplogSize, in megabytes (only with replSet). */
  oplogSizeMB?: number;
  /** The command line the server was started with, for getCmdLineOpts. */
  argv: string[];
}

export interface OpCounters {
  insert: number;
  query: number;
  update: number;
  delete: number;
  getmore: number;
  command: number;
}

export class ServerState {
  readonly startedAt = new Date();
  /** hello's topologyVersion; bumped when what hello says changes. */
  readonly topology = new TopologyVersion();
  readonly cursors = new CursorManager();
  readonly fsyncLock = new FsyncLock();
  readonly opcounters: OpCounters = { insert: 0, query: 0, update: 0, delete: 0, getmore: 0, command: 0 };
  readonly connections = { current: 0, totalCreated: 0 };
  backupCursor: BackupCursorHandle | undefined;
  /** admin.system.users. */
  readonly users: UserStore;
  /** With --replSet; undefined on a standalone. */
  replSet: ReplicaSet | undefined;
  /** local.oplog.rs, once the set is initiated (at replSetInitiate, or at start on an initiated dbpath). */
  oplog: Oplog | undefined;
  /** The port the server listens on (the `--port 0` one picked included), for replSetInitiate's default config. */
  listeningPort = 0;
  /** Set once shutdown begins; new work is refused. */
  shuttingDown = false;
  /** Writes since the journal was last synced, so the flusher can skip idle ticks. */
  unsyncedWrites = false;

  constructor(
    readonly engine: StorageEngine,
    readonly options: DevServerOptions,
    readonly log: Logger,
    /** Asks the owner to shut down (the `shutdown` command). */
    readonly requestShutdown: () => void,
  ) {
    this.users = new UserStore(this);
  }

  get processId(): ObjectId {
    return this.topology.processId;
  }
}
