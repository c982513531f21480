/** The dev server at the byte level: legacy opcodes, bad frames, checksums, shutdown. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { serialize, deserialize } from 'bson';
import { MongoClient } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { RawClient } from '../helpers/raw_client.js';
import { encodeOpQuery } from '../../src/wire/op_query.js';
import { decodeOpReply } from '../../src/wire/op_reply.js';
import { encodeOpMsg, decodeOpMsg } from '../../src/wire/op_msg.js';
import { OpMsgFlag } from '../../src/wire/constants.js';

function opQuery(requestID: number, ns: string, query: Record<string, unknown>): Buffer {
  return encodeOpQuery({ requestID, flags: 0, fullCollectionName: ns, numberToSkip: 0, numberToReturn: -1, query: Buffer.from(serialize(query)) });
}

function opMsg(requestID: number, body: Record<string, unknown>, checksum = false): Buffer {
  return encodeOpMsg({ requestID, responseTo: 0, flags: 0, sections: [{ kind: 0, body: Buffer.from(serialize(body)) }] }, { checksum });
}

describe('dev server wire behaviour', () => {
  let server: RunningDevServer;

  before(async () => {
    server = await startDevServer();
  });

  after(async () => {
    await server?.stop();
    server?.cleanup();
  });

  it('answers the legacy OP_QUERY handshake with OP_REPLY, and refuses other OP_QUERY commands', async () => {
    const client = await RawClient.connect(server.port);
    try {
      const [first] = await (client.send(opQuery(7, 'admin.$cmd', { isMaster: 1 })), client.waitForFrames(1));
      const reply = decodeOpReply(first!);
      assert.equal(reply.responseTo, 7);
      const hello = deserialize(reply.documents[0]!);
      assert.equal(hello['ismaster'], true);
      assert.equal(hello['maxWireVersion'], 21);

      client.send(opQuery(8, 'admin.$cmd', { ping: 1 }));
      const second = (await client.waitForFrames(2))[1];
      const refused = deserialize(decodeOpReply(second!).documents[0]!);
      assert.equal(refused['ok'], 0);
      assert.equal(refused['code'], 352);
      assert.match(String(refused['errmsg']), /^Unsupported OP_QUERY command: ping/);
    } finally {
      client.close();
    }
  });

  it('checksums a reply when the request carried a checksum', async () => {
    const client = await RawClient.connect(server.port);
    try {
      client.send(opMsg(9, { ping: 1, $db: 'admin' }, true));
      const msg = decodeOpMsg((await client.waitForFrames(1))[0]!); // decodeOpMsg verifies the CRC
      assert.equal(msg.responseTo, 9);
      assert.ok((msg.flags & OpMsgFlag.ChecksumPresent) !== 0);
    } finally {
      client.close();
    }
  });

  it('closes only the connection that sent a malformed frame', async () => {
    const good = await RawClient.connect(server.port);
    const bad = await RawClient.connect(server.port);
    try {
      const garbage = Buffer.alloc(16);
      garbage.writeInt32LE(5, 0); // a messageLength below the header's own size
      bad.send(garbage);
      await bad.closed;
      assert.equal(bad.frames.length, 0, 'and got no reply');
      const reply = await good.command(opMsg(10, { ping: 1, $db: 'admin' }));
      assert.equal(reply.doc['ok'], 1);
    } finally {
      good.close();
      bad.close();
    }
  });

  it('reports server facts consistently', async () => {
    const client = new MongoClient(server.uri);
    try {
      const admin = client.db('admin');
      const build = await admin.command({ buildInfo: 1 });
      assert.equal(build['version'], '7.0.0');
      const status = await admin.command({ serverStatus: 1 });
      assert.equal((status['storageEngine'] as { name: string }).name, 'wiredTiger');
      assert.ok((status['connections'] as { current: number }).current >= 1);
      assert.ok(typeof (status['opcounters'] as { command: number }).command === 'number');
      const fcv = await admin.command({ getParameter: 1, featureCompatibilityVersion: 1 });
      assert.equal((fcv['featureCompatibilityVersion'] as { version: string }).version, '7.0');
    } finally {
      await client.close();
    }
  });
});

describe('dev server shutdown', () => {
  it('checkpoints and exits cleanly on the shutdown command', async () => {
    const server = await startDevServer();
    const client = new MongoClient(server.uri);
    try {
      await client.db('app').collection('c').insertOne({ kept: true });
      await client.db('admin').command({ shutdown: 1 }).catch(() => undefined); // mongod closes instead of replying
      const code = server.child.exitCode ?? (await new Promise<number | null>((resolve) => server.child.once('exit', resolve)));
      assert.equal(code, 0);
      assert.equal(fs.readFileSync(path.join(server.dbpath, 'mongod.lock'), 'utf8'), '', 'mongod.lock emptied on clean shutdown');
      const again = await startDevServer({ dbpath: server.dbpath });
      const reader = new MongoClient(again.uri);
      try {
        assert.equal(await reader.db('app').collection('c').countDocuments({ kept: true }), 1);
      } finally {
        await reader.close();
        await again.stop();
      }
    } finally {
      await client.close();
      server.cleanup();
    }
  });
});
