/**
 * currentOp, killOp and `{aggregate: 1}` through the proxy, in process, in front of the
 * real dev server, over a backup service the test drives (running or not), so that the
 * proxy's counters can be read: what the proxy claims and what streams through unread,
 * what it adds to mongod's reply, and when it leaves that reply as it came. The backup
 * commands' own behaviour with a real engine is in backup_abort.test.ts.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { calculateObjectSize } from 'bson';
import { MongoClient, MongoServerError, type Document } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { RawClient, decodeReply, opMsg } from '../helpers/raw_client.js';
import { ProxyServer } from '../../src/proxy/proxy_server.js';
import { UpstreamReply, type Upstream } from '../../src/proxy/interceptor.js';
import { BackupCommands } from '../../src/commands/backup_commands.js';
import type { BackupService } from '../../src/commands/backup_service.js';
import type { AbortAttempt, StartedBackup } from '../../src/backup/backup_engine.js';
import type { EngineStatus, RunningStatus } from '../../src/backup/engine_status.js';
import { ProgressCounters } from '../../src/backup/progress.js';
import { decodeRequest, encodeReply, type CommandRequest } from '../../src/wire/command_message.js';
import { MAX_BSON_INTERNAL_SIZE } from '../../src/wire/constants.js';

const silent = pino({ level: 'silent' });
const DESTINATION = '/backups/nightly';
/** A standalone: transaction numbers are refused, as mongod refuses them. */
const standalone = { acceptsTransactionNumbers: async () => false };

/** A backup service whose one backup runs while the test says so. */
class DrivenBackups implements BackupService {
  running: RunningStatus | undefined;

  run(): void {
    this.running = {
      backupId: randomUUID(),
      destination: DESTINATION,
      startedAt: new Date(),
      phase: 'copying',
      abortedBy: undefined,
      strategy: 'backupCursor',
      strategyReason: 'a driven backup',
      writesBlockedMs: 0,
      progress: new ProgressCounters().snapshot(),
      warnings: [],
    };
  }

  start(): Promise<StartedBackup> {
    return Promise.reject(new Error('no backup starts in this test'));
  }

  status(): EngineStatus {
    return { running: this.running, last: undefined, throttleBytesPerSec: 0 };
  }

  busy(): boolean {
    return this.running !== undefined;
  }

  setThrottle(): void {}

  abort(): AbortAttempt {
    return { kind: 'none' };
  }
}

/** An Upstream whose mongod answers `request` with `reply` (framed as mongod frames it); `asked` counts the forwards. */
function answering(request: CommandRequest, reply: Document): Upstream & { asked: number } {
  const upstream = {
    asked: 0,
    forward: async () => {
      upstream.asked += 1;
      return new UpstreamReply(encodeReply(request, reply, { requestID: 77, responseTo: request.requestID }));
    },
    // mongod without authentication: no users, and everything allowed.
    command: async (_db: string, command: Document): Promise<Document> => ('connectionStatus' in command ? { authInfo: { authenticatedUsers: [], authenticatedUserRoles: [] }, ok: 1 } : { ok: 1 }),
  };
  return upstream;
}

describe('currentOp and killOp through the proxy', () => {
  let server: RunningDevServer;
  let proxy: ProxyServer;
  let client: MongoClient;
  const backups = new DrivenBackups();
  const admin = () => client.db('admin');

  before(async () => {
    server = await startDevServer();
    proxy = await ProxyServer.start({
      upstream: { host: '127.0.0.1', port: server.port },
      port: 0,
      bind: '127.0.0.1',
      interceptor: new BackupCommands(backups, standalone),
      log: silent,
    });
    client = new MongoClient(`mongodb://127.0.0.1:${proxy.address.port}/?directConnection=true`);
    await client.connect();
  });

  after(async () => {
    await client?.close();
    await proxy?.close();
    await server?.stop();
    server?.cleanup();
  });

  it('streams currentOp, killOp and {aggregate: 1} through unread while no backup runs, and claims them while one does', async () => {
    const raw = await RawClient.connect(proxy.address.port);
    try {
      const pipelined = () => [
        opMsg({ aggregate: 1, pipeline: [{ $currentOp: {} }], cursor: {}, $db: 'admin' }),
        opMsg({ currentOp: 1, $db: 'admin' }),
        opMsg({ killOp: 1, op: 12345, $db: 'admin' }),
      ];
      backups.running = undefined;
      const idle = pipelined();
      const intercepted = proxy.stats.intercepted;
      const forwarded = proxy.stats.forwarded;
      raw.send(Buffer.concat(idle));
      const replies = (await raw.waitForFrames(3)).map(decodeReply);
      assert.deepEqual(replies.map((r) => r.responseTo), idle.map((f) => f.readInt32LE(4)), 'answered in order');
      assert.deepEqual(replies.map((r) => r.doc['ok']), [1, 1, 1]);
      assert.equal(proxy.stats.intercepted, intercepted, 'none was claimed: each streamed through as any other message');
      assert.ok(proxy.stats.forwarded >= forwarded + 3, 'all three went to mongod');

      // While a backup runs, the same three are the proxy's to read: the counter that stayed still above moves.
      backups.run();
      const busy = pipelined();
      raw.send(Buffer.concat(busy));
      const more = (await raw.waitForFrames(6)).slice(3).map(decodeReply);
      assert.deepEqual(more.map((r) => r.responseTo), busy.map((f) => f.readInt32LE(4)));
      assert.equal(proxy.stats.intercepted, intercepted + 3);
      const inprog = (more[1]?.doc['inprog'] ?? []) as Document[];
      assert.ok(inprog.some((op) => op['desc'] === 'hotbackup'), 'the running backup is listed');
    } finally {
      backups.running = undefined;
      raw.close();
    }
  });

  it("leaves mongod's reply as it came for a regular expression only PCRE reads, and lists the backup for one both read alike", async () => {
    backups.run();
    try {
      const commands = new BackupCommands(backups, standalone);
      const info = { id: 1, remoteAddress: '127.0.0.1:5555', authGeneration: 0 };
      const mongods = { inprog: [{ opid: 7, desc: 'conn7', active: true }], ok: 1 };
      // Inline flags, a possessive quantifier, a Python-style named group, and \A (a literal A to JavaScript).
      for (const pattern of ['(?i)HOT', 'a++', '(?P<n>hot)backup', '\\Ahotbackup']) {
        for (const command of [
          { currentOp: 1, desc: { $regex: pattern }, $db: 'admin' },
          { aggregate: 1, pipeline: [{ $currentOp: {} }, { $match: { desc: { $regex: pattern } } }], cursor: {}, $db: 'admin' },
        ]) {
          const request = decodeRequest(opMsg(command));
          const reply = command.currentOp === 1 ? mongods : { cursor: { firstBatch: mongods.inprog, id: 0, ns: 'admin.$cmd.aggregate' }, ok: 1 };
          const upstream = answering(request, reply);
          const answer = await commands.run(request, info, upstream);
          assert.ok(answer instanceof UpstreamReply, `${pattern}: mongod's reply, not ${JSON.stringify(answer)}`);
          assert.equal(upstream.asked, 1);
        }
      }
      const request = decodeRequest(opMsg({ currentOp: 1, desc: { $regex: '^HOT', $options: 'i' }, $db: 'admin' }));
      const listed = await commands.run(request, info, answering(request, mongods));
      assert.ok(!(listed instanceof UpstreamReply) && typeof listed === 'object');
      assert.deepEqual(((listed as Document)['inprog'] as Document[]).map((op) => op['desc']), ['conn7', 'hotbackup']);
    } finally {
      backups.running = undefined;
    }
  });

  it("lists the backup in a client's own operations only for a holder of inprog, who may list everyone's", async () => {
    backups.run();
    try {
      const commands = new BackupCommands(backups, standalone);
      const mongods = { inprog: [{ opid: 7, desc: 'conn7', active: true }], ok: 1 };
      /** mongod --auth, the client authenticated with these cluster actions. */
      const asUser = (request: CommandRequest, reply: Document, actions: string[]): Upstream & { asked: number } => ({
        ...answering(request, reply),
        command: async (): Promise<Document> => ({
          authInfo: {
            authenticatedUsers: [{ user: 'u', db: 'admin' }],
            authenticatedUserRoles: [{ role: 'r', db: 'admin' }],
            authenticatedUserPrivileges: [{ resource: { cluster: true }, actions }],
          },
          ok: 1,
        }),
      });
      const commandsFor = [
        { currentOp: 1, $ownOps: true, $db: 'admin' },
        { aggregate: 1, pipeline: [{ $currentOp: {} }], cursor: {}, $db: 'admin' },
        { aggregate: 1, pipeline: [{ $currentOp: { allUsers: false } }], cursor: {}, $db: 'admin' },
      ];
      let client = 10;
      for (const command of commandsFor) {
        const request = decodeRequest(opMsg(command));
        const reply = 'currentOp' in command ? mongods : { cursor: { firstBatch: mongods.inprog, id: 0, ns: 'admin.$cmd.aggregate' }, ok: 1 };
        const listedFor = async (actions: string[]): Promise<boolean> => {
          const answer = await commands.run(request, { id: client++, remoteAddress: '127.0.0.1:5555', authGeneration: 0 }, asUser(request, reply, actions));
          // FORWARD: mongod answers as it came, unread.
          if (typeof answer === 'symbol') return false;
          return JSON.stringify(answer instanceof UpstreamReply ? answer.document() : answer).includes('hotbackup');
        };
        assert.equal(await listedFor(['listDatabases']), false, `a read user's own operations: ${JSON.stringify(command)}`);
        assert.equal(await listedFor(['inprog']), true, `a holder of inprog: ${JSON.stringify(command)}`);
      }
      // Everyone's operations: mongod answered only because the client holds inprog.
      const request = decodeRequest(opMsg({ aggregate: 1, pipeline: [{ $currentOp: { allUsers: true } }], cursor: {}, $db: 'admin' }));
      const upstream = asUser(request, { cursor: { firstBatch: [], id: 0, ns: 'admin.$cmd.aggregate' }, ok: 1 }, []);
      const answer = await commands.run(request, { id: client++, remoteAddress: '127.0.0.1:5555', authGeneration: 0 }, upstream);
      assert.ok(JSON.stringify(answer).includes('hotbackup'));
    } finally {
      backups.running = undefined;
    }
  });

  it("passes mongod's reply on as it came when the backup's entry would take it past the size limit", async () => {
    backups.run();
    try {
      const filter = { $or: [{ desc: 'hotbackup' }, { 'command.comment': { $exists: true } }] };
      const exact = { promoteValues: false, promoteLongs: false, promoteBuffers: false, bsonRegExp: true } as const;
      // mongod's own entry carries the command, comment and all: its size is the comment's, plus what the driver adds.
      const small = await admin().command({ currentOp: 1, ...filter, comment: 'c' }, exact);
      const ours = (small['inprog'] as Document[]).find((op) => op['desc'] === 'hotbackup') as Document;
      const mongodsOnly = calculateObjectSize(small) - calculateObjectSize({ 0: ours });
      assert.ok(calculateObjectSize(ours) > 300, 'the entry is a few hundred bytes');
      // A comment that brings mongod's reply to 200 bytes under the limit: room for mongod, none for our entry.
      const comment = 'c'.repeat(1 + MAX_BSON_INTERNAL_SIZE - 200 - mongodsOnly);
      const big = await admin().command({ currentOp: 1, ...filter, comment }, exact);
      const inprog = big['inprog'] as Document[];
      assert.equal(Number(big['ok']), 1);
      assert.deepEqual(inprog.map((op) => op['desc'] === 'hotbackup'), [false], 'mongod lists itself; the backup is left out');
      assert.ok(calculateObjectSize(big) > MAX_BSON_INTERNAL_SIZE - 300, `mongod's reply is ${calculateObjectSize(big)} bytes`);
    } catch (err) {
      if (err instanceof MongoServerError) assert.fail(`currentOp failed: ${err.code} ${err.message.slice(0, 200)}`);
      throw err;
    } finally {
      backups.running = undefined;
    }
  });
});
