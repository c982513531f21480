/**
 * A message the proxy refuses (an OP_COMPRESSED it cannot decompress, a bad length
 * prefix) closes the connection, as mongod does. But mongod reaches that message only
 * after answering every request the client sent before it on the connection, so the
 * answers owed to earlier pipelined requests (a forwarded insert, a claimed command that
 * is running) still arrive, in order, before the client is ended; nothing behind the
 * refused message is forwarded.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { MongoClient } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import type { ProxyServer } from '../../src/proxy/proxy_server.js';
import { CompressorId } from '../../src/wire/constants.js';
import { encodeOpCompressed } from '../../src/wire/compression.js';
import { until } from '../helpers/poll.js';
import { RawClient, decodeReply, opMsg, startProxy, testInterceptor } from './support.js';

function corruptZstd(message: Buffer): Buffer {
  const frame = encodeOpCompressed(message, CompressorId.Zstd);
  frame.fill(0x55, 30);
  return frame;
}

describe('refusing a message keeps the answers owed before it', () => {
  let server: RunningDevServer;
  let proxy: ProxyServer;

  before(async () => {
    server = await startDevServer();
    proxy = await startProxy(server.port, testInterceptor());
  });

  after(async () => {
    await proxy?.close();
    await server?.stop();
    server?.cleanup();
  });

  it('answers a forwarded insert pipelined before the undecodable message, then closes', async () => {
    const raw = await RawClient.connect(proxy.address.port);
    try {
      const insert = opMsg({ insert: 'refusal', documents: [{ a: 1 }], $db: 'app' });
      raw.send(Buffer.concat([insert, corruptZstd(opMsg({ proxyEcho: 1, $db: 'admin' }))]));
      await raw.closed;
      const answered = raw.frames.map((f) => decodeReply(f).responseTo);
      const direct = new MongoClient(server.uri);
      const stored = await direct.db('app').collection('refusal').countDocuments().finally(() => direct.close());
      assert.deepEqual(answered, [insert.readInt32LE(4)], `mongod would have acknowledged the insert before closing (documents stored: ${stored})`);
    } finally {
      raw.close();
    }
  });

  it('answers a forwarded insert pipelined before a bad length prefix, and forwards nothing after it', async () => {
    const raw = await RawClient.connect(proxy.address.port);
    try {
      const insert = opMsg({ insert: 'badlength', documents: [{ a: 1 }], $db: 'app' });
      const badLength = Buffer.alloc(4);
      badLength.writeInt32LE(7, 0);
      const after = opMsg({ insert: 'badlength', documents: [{ a: 2 }], $db: 'app' });
      raw.send(Buffer.concat([insert, badLength, after]));
      await raw.closed;
      assert.deepEqual(raw.frames.map((f) => decodeReply(f).responseTo), [insert.readInt32LE(4)]);
      const direct = new MongoClient(server.uri);
      const stored = await direct.db('app').collection('badlength').find({}, { projection: { _id: 0 } }).toArray().finally(() => direct.close());
      assert.deepEqual(stored, [{ a: 1 }], 'only what came before the bad length reached mongod');
    } finally {
      raw.close();
    }
  });

  it('forwards nothing sent behind an undecodable message', async () => {
    const raw = await RawClient.connect(proxy.address.port);
    try {
      const slow = opMsg({ proxySlow: 1000, $db: 'admin' });
      const after = opMsg({ insert: 'behind', documents: [{ a: 1 }], $db: 'app' });
      const intercepted = proxy.stats.intercepted;
      raw.send(Buffer.concat([slow, corruptZstd(opMsg({ ping: 1, $db: 'admin' })), after]));
      // And once more in a later write, while the claimed command still runs.
      await until(() => (proxy.stats.intercepted > intercepted ? true : undefined), 5);
      raw.send(opMsg({ insert: 'behind', documents: [{ a: 2 }], $db: 'app' }));
      await raw.closed;
      assert.deepEqual(raw.frames.map((f) => decodeReply(f).responseTo), [slow.readInt32LE(4)]);
      const direct = new MongoClient(server.uri);
      const stored = await direct.db('app').collection('behind').countDocuments().finally(() => direct.close());
      assert.equal(stored, 0);
    } finally {
      raw.close();
    }
  });

  it('answers a claimed command pipelined before the undecodable message, then closes', async () => {
    const raw = await RawClient.connect(proxy.address.port);
    try {
      const slow = opMsg({ proxySlow: 200, $db: 'admin' });
      raw.send(Buffer.concat([slow, corruptZstd(opMsg({ ping: 1, $db: 'admin' }))]));
      await raw.closed;
      const answered = raw.frames.map((f) => decodeReply(f).responseTo);
      assert.deepEqual(answered, [slow.readInt32LE(4)], 'the command sent first is answered first');
    } finally {
      raw.close();
    }
  });
});
