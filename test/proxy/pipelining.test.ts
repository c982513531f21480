/**
 * mongod answers a connection's requests in order, and a client that pipelines may rely
 * on it. An insert held by fsyncLock followed, in the same write, by a command the proxy
 * answers itself: the insert's reply comes first, then ours, then whatever followed.
 * A request that expects no reply (moreToCome) holds nothing back.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { MongoClient } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { until } from '../helpers/poll.js';
import { RawClient, decodeReply, opMsg } from '../helpers/raw_client.js';
import { CompressorId, OpMsgFlag } from '../../src/wire/constants.js';
import { encodeOpCompressed } from '../../src/wire/compression.js';

describe('pipelined requests through the proxy', () => {
  let server: RunningDevServer;
  let proxy: RunningProxy;
  let direct: MongoClient;
  const admin = () => direct.db('admin');

  before(async () => {
    server = await startDevServer();
    proxy = await startProxy(server);
    direct = new MongoClient(server.uri);
    await direct.connect();
  });

  after(async () => {
    // Never leave the server locked, whatever failed.
    const locked = async () => (await admin().command({ currentOp: 1 }))['fsyncLock'] === true;
    while (await locked().catch(() => false)) await admin().command({ fsyncUnlock: 1 });
    await direct?.close();
    await proxy?.stop();
    await server?.stop();
    server?.cleanup();
  });

  /**
   * Polls currentOp until `count` writers wait on the fsync lock. It fails at once, saying
   * why, when they can no longer come: `raw` was closed, or got more than the `answered`
   * replies it had (the held request was answered, or refused, instead of waiting). Any
   * other hang is caught by the suite's per-test timeout (package.json, --test-timeout).
   */
  async function untilWritersBlocked(count: number, raw: RawClient, answered: number): Promise<void> {
    await until(async () => {
      const op = await admin().command({ currentOp: 1 });
      const waiting = (op['inprog'] as Array<{ numWaiting?: number }>).reduce((n, o) => n + (o.numWaiting ?? 0), 0);
      if (waiting >= count) return true;
      if (raw.socket.destroyed) throw new Error(`the connection closed while waiting for ${count} writer(s) to block on fsyncLock (${waiting} blocked)`);
      if (raw.frames.length > answered) {
        const replies = raw.frames.map((f) => JSON.stringify(decodeReply(f).doc)).join(', ');
        throw new Error(`expected ${count} writer(s) blocked on fsyncLock, but got replies instead: ${replies}`);
      }
      return undefined;
    }, 10);
  }

  const forms: Array<[string, (frame: Buffer) => Buffer]> = [
    ['OP_MSG', (frame) => frame],
    ['zlib OP_COMPRESSED', (frame) => encodeOpCompressed(frame, CompressorId.Zlib)],
  ];
  for (const [form, wrap] of forms) {
    it(`answers an insert held by fsyncLock before a backupStatus sent behind it in one write (${form})`, async () => {
      const raw = await RawClient.connect(proxy.port);
      try {
        await admin().command({ fsync: 1, lock: true });
        const insert = wrap(opMsg({ insert: 'pipelined', documents: [{ form }], $db: 'app' }));
        const status = wrap(opMsg({ backupStatus: 1, $db: 'admin' }));
        const find = wrap(opMsg({ find: 'pipelined', filter: { form }, $db: 'app' }));
        raw.send(Buffer.concat([insert, status, find]));
        await untilWritersBlocked(1, raw, 0);
        await admin().command({ fsyncUnlock: 1 });

        const replies = (await raw.waitForFrames(3)).map(decodeReply);
        assert.deepEqual(
          replies.map((r) => r.responseTo),
          [insert, status, find].map((f) => f.readInt32LE(4)),
          'replies in request order: insert, backupStatus, find',
        );
        assert.equal(replies[0]?.doc['n'], 1);
        assert.equal(replies[1]?.doc['inProgress'], false, 'backupStatus answered by the proxy');
        assert.equal((replies[2]?.doc['cursor'] as { firstBatch: unknown[] }).firstBatch.length, 1, 'the find sees the insert');
      } finally {
        raw.close();
      }
    });
  }

  it('does not hold a reply behind a request that expects none (moreToCome)', async () => {
    const raw = await RawClient.connect(proxy.port);
    try {
      await admin().command({ fsync: 1, lock: true });
      const quietInsert = opMsg({ insert: 'pipelined', documents: [{ quiet: true }], writeConcern: { w: 0 }, $db: 'app' }, { flags: OpMsgFlag.MoreToCome });
      const status = opMsg({ backupStatus: 1, $db: 'admin' });
      raw.send(Buffer.concat([quietInsert, status]));
      // Answered while the insert is still held by the lock.
      const [reply] = await raw.waitForFrames(1);
      assert.equal(decodeReply(reply as Buffer).responseTo, status.readInt32LE(4));
      await untilWritersBlocked(1, raw, 1);
      await admin().command({ fsyncUnlock: 1 });
      // The connection goes on: a later command is answered in turn.
      const ping = await raw.command(opMsg({ ping: 1, $db: 'admin' }));
      assert.equal(ping.doc['ok'], 1);
    } finally {
      raw.close();
    }
  });
});
