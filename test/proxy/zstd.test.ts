/**
 * zstd, which mongod offers by default: a driver that asks for it gets it, and its
 * backup commands must still be answered by the proxy. Nothing compressed that the
 * proxy cannot read reaches mongod, and no client is let to negotiate a compressor the
 * proxy cannot read.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { MongoClient } from 'mongodb';
import * as driverZstd from '@mongodb-js/zstd';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy as startServe, type RunningProxy } from '../helpers/proxy.js';
import { startTapRelay, type TapRelay } from '../helpers/tap_relay.js';
import type { ProxyServer } from '../../src/proxy/proxy_server.js';
import { CompressorId, OpCode } from '../../src/wire/constants.js';
import { decodeDocument, encodeDocument, type Document } from '../../src/wire/command_message.js';
import { decodeOpMsg, opMsgBody } from '../../src/wire/op_msg.js';
import { decodeOpQuery, encodeOpQuery } from '../../src/wire/op_query.js';
import { RawClient, captureLogger, opMsg, startProxy, testInterceptor, uri } from './support.js';

/**
 * An OP_COMPRESSED frame built by hand, its payload compressed by the npm driver's own
 * zstd binding: what a zstd client sends, independent of our codec.
 */
async function driverZstdFrame(message: Buffer, compressorId: number = CompressorId.Zstd): Promise<Buffer> {
  const payload = await driverZstd.compress(message.subarray(16));
  const frame = Buffer.alloc(25 + payload.length);
  frame.writeInt32LE(frame.length, 0);
  frame.writeInt32LE(message.readInt32LE(4), 4);
  frame.writeInt32LE(0, 8);
  frame.writeInt32LE(OpCode.Compressed, 12);
  frame.writeInt32LE(message.readInt32LE(12), 16);
  frame.writeInt32LE(message.length - 16, 20);
  frame.writeUInt8(compressorId, 24);
  payload.copy(frame, 25);
  return frame;
}

describe('zstd through hotbackup serve', () => {
  let server: RunningDevServer;
  let proxy: RunningProxy;
  let tap: TapRelay;

  before(async () => {
    server = await startDevServer();
    proxy = await startServe(server);
    tap = await startTapRelay(proxy.port); // client side: sees what the driver sends
  });

  after(async () => {
    await tap?.close();
    await proxy?.stop();
    await server?.stop();
    server?.cleanup();
  });

  it('answers a zstd-compressed backupStatus from the npm driver', async () => {
    const client = new MongoClient(uri(tap.port), { compressors: ['zstd'] });
    try {
      const status = await client.db('admin').command({ backupStatus: 1 });
      assert.equal(status['ok'], 1);
      assert.ok('throttleBytesPerSec' in status, 'a field only the proxy answers with');
      const sent = tap.commands.filter((c) => c.name === 'backupStatus');
      assert.equal(sent.length, 1);
      assert.equal(sent[0]?.compressorId, CompressorId.Zstd, 'backupStatus travelled zstd-compressed');
    } finally {
      await client.close();
    }
  });

  it('carries ordinary zstd traffic to mongod and back', async () => {
    const client = new MongoClient(uri(tap.port), { compressors: ['zstd'] });
    try {
      const coll = client.db('zstd').collection<{ _id: number; text: string }>('docs');
      const docs = Array.from({ length: 500 }, (_, i) => ({ _id: i, text: `row ${i} `.repeat(20) }));
      await coll.insertMany(docs);
      const back = await coll.find({}, { sort: { _id: 1 } }).toArray();
      assert.deepEqual(back, docs);
      const inserts = tap.commands.filter((c) => c.name === 'insert');
      assert.ok(inserts.length > 0 && inserts.every((c) => c.compressorId === CompressorId.Zstd));
    } finally {
      await client.close();
    }
  });
});

describe('compressed messages the proxy must read', () => {
  let server: RunningDevServer;
  let upstreamTap: TapRelay;
  let proxy: ProxyServer;
  const logs = captureLogger();

  before(async () => {
    server = await startDevServer();
    upstreamTap = await startTapRelay(server.port); // mongod's side: sees what the proxy forwards
    proxy = await startProxy(upstreamTap.port, testInterceptor(), logs.log);
  });

  after(async () => {
    await proxy?.close();
    await upstreamTap?.close();
    await server?.stop();
    server?.cleanup();
  });

  it('answers a claimed command sent zstd-compressed, with a zstd reply, and forwards nothing', async () => {
    const raw = await RawClient.connect(proxy.address.port);
    try {
      const forwarded = proxy.stats.forwarded;
      const reply = await raw.command(await driverZstdFrame(opMsg({ proxyEcho: 'zstd', pad: 'z'.repeat(3000), $db: 'admin' })));
      assert.equal(reply.wireOpCode, OpCode.Compressed);
      assert.equal(reply.compressorId, CompressorId.Zstd);
      assert.equal((reply.doc['echoed'] as Document)['pad'], 'z'.repeat(3000));
      assert.equal(proxy.stats.forwarded, forwarded);
    } finally {
      raw.socket.destroy();
    }
  });

  it('closes the connection on a compressed message it cannot decompress, and forwards nothing', async () => {
    const claimed = opMsg({ proxyEcho: 'hidden', $db: 'admin' });
    const corrupt = await driverZstdFrame(claimed);
    corrupt.fill(0x55, 30);
    const cases: Array<[string, Buffer]> = [
      ['an unknown compressor', await driverZstdFrame(claimed, 7)],
      ['corrupt zstd data', corrupt],
    ];
    for (const [what, frame] of cases) {
      const raw = await RawClient.connect(proxy.address.port);
      const forwarded = proxy.stats.forwarded;
      const reaching = upstreamTap.requestOpcodes.length;
      raw.send(frame);
      await raw.closed;
      assert.equal(raw.frames.length, 0, `${what}: no reply`);
      assert.equal(proxy.stats.forwarded, forwarded, `${what}: not forwarded`);
      assert.equal(upstreamTap.requestOpcodes.length, reaching, `${what}: nothing reached mongod`);
    }
    const closed = logs.lines.filter((l) => l['reason'] === 'undecodable compressed message from client');
    assert.equal(closed.length, 2);
  });

  it('strips compressors it cannot read from the handshake mongod sees', async () => {
    const raw = await RawClient.connect(proxy.address.port);
    try {
      // The legacy handshake, as drivers send it first, wrapped with a read preference.
      const isMaster = encodeOpQuery({
        requestID: 4242, flags: 0, fullCollectionName: 'admin.$cmd', numberToSkip: 0, numberToReturn: -1,
        query: encodeDocument({ $query: { isMaster: 1, compression: ['zstd', 'lz4', 'zlib'] }, $readPreference: { mode: 'primary' } }),
      });
      const legacy = await raw.command(isMaster);
      assert.equal(legacy.responseTo, 4242);
      assert.deepEqual(legacy.doc['compression'], ['zstd', 'zlib']);
      const seenLegacy = decodeDocument(decodeOpQuery(upstreamTap.handshakes.at(-1) as Buffer).query);
      assert.deepEqual((seenLegacy['$query'] as Document)['compression'], ['zstd', 'zlib']);
      assert.equal((upstreamTap.handshakes.at(-1) as Buffer).readInt32LE(4), 4242, 'same requestID');

      // OP_MSG with a checksum: mongod would refuse a stale one.
      const hello = opMsg({ hello: 1, compression: ['lz4', 'snappy'], $db: 'admin' }, { checksum: true, requestID: 4343 });
      const modern = await raw.command(hello);
      assert.equal(modern.doc['ok'], 1);
      assert.deepEqual(modern.doc['compression'], ['snappy']);
      const seen = upstreamTap.handshakes.at(-1) as Buffer;
      assert.deepEqual(decodeDocument(opMsgBody(decodeOpMsg(seen)))['compression'], ['snappy']);
      assert.equal(seen.readInt32LE(4), 4343, 'same requestID');

      // Nothing to strip: the bytes go through untouched.
      const plain = opMsg({ hello: 1, compression: ['zstd', 'snappy'], $db: 'admin' }, { checksum: true });
      await raw.command(plain);
      assert.deepEqual(upstreamTap.handshakes.at(-1), plain);
    } finally {
      raw.socket.destroy();
    }
    const stripped = logs.lines.filter((l) => l['msg'] === 'handshake: removed compressors the proxy cannot read');
    assert.deepEqual(stripped.map((l) => l['removed']), [['lz4'], ['lz4']]);
  });
});
