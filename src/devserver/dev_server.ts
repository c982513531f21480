/**
 * The dev server: a mongod-compatible listener over the WiredTiger storage engine,
 * with mongod's background duties (periodic checkpoints, journal flushing) and a
 * clean shutdown that checkpoints and closes WiredTiger.
 */
import net from 'node:net';
import { EventEmitter } from 'node:events';
import { StorageEngine } from './storage/storage_engine.js';
import { ServerState, type DevServerOptions } from './state.js';
import { CommandDispatcher } from './handlers/command_table.js';
import { ClientConnection } from './client_connection.js';
import type { Logger } from '../log.js';
import { ClientAcceptor } from '../tls/client_acceptor.js';
import { ReplicaSet, DEFAULT_OPLOG_SIZE_MB } from './replication/replica_set.js';
import { Oplog } from './replication/oplog.js';
import { splitHostAndPort } from './replication/replset_config.js';

export type { DevServerOptions } from './state.js';

/** mongod's journalCommitInterval default. */
const JOURNAL_FLUSH_INTERVAL_MS = 100;

export class DevServer extends EventEmitter<{ closed: [] }> {
  private readonly connections = new Set<ClientConnection>();
  private readonly timers: NodeJS.Timeout[] = [];
  private closing: Promise<void> | undefined;
  private nextConnectionId = 1;
  private acceptor: ClientAcceptor | undefined;

  private constructor(
    private readonly listener: net.Server,
    readonly state: ServerState,
  ) {
    super();
  }

  static async start(options: DevServerOptions, log: Logger): Promise<DevServer> {
    const engine = StorageEngine.open({
      dbpath: options.dbpath,
      ...(options.wiredTigerEngineConfigString === undefined ? {} : { engineConfig: options.wiredTigerEngineConfigString }),
      layout: { directoryPerDB: options.directoryPerDB === true, directoryForIndexes: options.directoryForIndexes === true },
    });
    const listener = net.createServer();
    let server: DevServer | undefined;
    const state = new ServerState(engine, options, log, () => {
      void server?.close();
    });
    server = new DevServer(listener, state);
    engine.setCheckpointMarker(() => state.oplog?.lastApplied());
    const dispatcher = new CommandDispatcher();
    // TLS as mongod's net.tls.mode says (the same acceptor as the proxy's).
    server.acceptor = new ClientAcceptor(listener, options.tls, log, (socket) => server?.accept(socket, dispatcher));
    try {
      if (options.replSet !== undefined) {
        // An initiated set comes back as primary at once, its oplog where it was.
        state.oplog = Oplog.open(engine);
        state.replSet = ReplicaSet.load(engine, { name: options.replSet, oplogSizeMB: options.oplogSizeMB ?? DEFAULT_OPLOG_SIZE_MB }, state.oplog);
      }
      await new Promise<void>((resolve, reject) => {
        listener.once('error', reject);
        listener.listen(options.port, options.bind, () => {
          listener.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      engine.close();
      throw err;
    }
    state.listeningPort = server.address.port;
    const memberPort = state.replSet?.initiated === true ? splitHostAndPort(state.replSet.me).port : undefined;
    if (memberPort !== undefined && memberPort !== state.listeningPort) {
      // mongod would not find itself in its config and stay REMOVED; the dev server stays
      // primary, but clients given replicaSet= go where hello's hosts say.
      log.warn({ member: state.replSet?.me, port: state.listeningPort }, 'the replica set config names another port than this one: replicaSet= clients will not reach this server');
    }
    server.startBackgroundWork();
    log.info({ dbpath: engine.dbpath, address: server.address, replSet: options.replSet, initiated: state.replSet?.initiated, backupCursor: options.backupCursor, tlsMode: options.tls?.mode ?? 'disabled', auth: options.auth === true }, 'dev server listening');
    return server;
  }

  get address(): { host: string; port: number } {
    const addr = this.listener.address() as net.AddressInfo;
    return { host: addr.address, port: addr.port };
  }

  private accept(socket: net.Socket, dispatcher: CommandDispatcher): void {
    if (this.state.shuttingDown) {
      socket.destroy();
      return;
    }
    const connection = new ClientConnection(socket, this.state, dispatcher, this.nextConnectionId++);
    this.connections.add(connection);
    this.state.connections.current += 1;
    this.state.connections.totalCreated += 1;
    connection.signal.addEventListener('abort', () => {
      this.connections.delete(connection);
      this.state.connections.current -= 1;
    });
  }

  private startBackgroundWork(): void {
    const { state } = this;
    const checkpointMs = state.options.checkpointIntervalSecs * 1000;
    if (checkpointMs > 0) {
      this.timers.push(
        setInterval(() => {
          // An fsync-locked server must not touch its files: mongod's fsyncLock holds the
          // global read lock for the whole lock (src/mongo/db/commands/fsync.cpp,
          // FSyncLockThread::run), so nothing is written, and a backup copies files that
          // stay byte-identical. This timer is the dev server's only periodic checkpoint
          // (WiredTiger's own thread is off, see storage/dbpath.ts).
          if (state.fsyncLock.locked) return;
          this.guard('checkpoint', () => state.engine.checkpoint());
        }, checkpointMs),
      );
    }
    this.timers.push(
      setInterval(() => {
        if (!state.unsyncedWrites) return;
        state.unsyncedWrites = false;
        this.guard('journal flush', () => state.engine.logFlush(true));
      }, JOURNAL_FLUSH_INTERVAL_MS),
    );
  }

  private guard(what: string, work: () => void): void {
    try {
      work();
    } catch (err) {
      this.state.log.error({ err }, `${what} failed`);
    }
  }

  /** Stops listening, drops clients, closes cursors (and any backup cursor), checkpoints, closes WiredTiger. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const { state } = this;
    state.shuttingDown = true;
    state.log.info('dev server shutting down');
    for (const timer of this.timers) clearInterval(timer);
    const stopped = new Promise<void>((resolve) => this.listener.close(() => resolve()));
    this.acceptor?.close();
    for (const connection of [...this.connections]) connection.close();
    await stopped;
    state.cursors.closeAll();
    // Writers still parked on the fsync lock would never finish; mongod releases them too.
    while (state.fsyncLock.locked) state.fsyncLock.unlock();
    state.engine.close();
    state.log.info('dev server stopped');
    this.emit('closed');
  }
}
