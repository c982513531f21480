/**
 * One bad client costs one connection; a dead upstream closes its clients instead of
 * hanging them; close() ends everything. The proxy process never goes down.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { MongoClient } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import type { ProxyServer } from '../../src/proxy/proxy_server.js';
import { until } from '../helpers/poll.js';
import { RawClient, captureLogger, opMsg, startProxy, testInterceptor, uri } from './support.js';

describe('proxy robustness', () => {
  let server: RunningDevServer;
  let proxy: ProxyServer;
  let client: MongoClient;
  const { log, lines } = captureLogger();

  before(async () => {
    server = await startDevServer();
    proxy = await startProxy(server.port, testInterceptor(), log);
    client = new MongoClient(uri(proxy.address.port), { maxPoolSize: 2 });
    await client.db('app').collection('c').insertOne({ before: true });
  });

  after(async () => {
    await client?.close();
    await proxy?.close();
    await server?.stop();
    server?.cleanup();
  });

  for (const length of [5, 60_000_000]) {
    it(`closes a client that sends messageLength ${length}, and only that client`, async () => {
      const raw = await RawClient.connect(proxy.address.port);
      const header = Buffer.alloc(16);
      header.writeInt32LE(length, 0);
      raw.send(header);
      await raw.closed; // the bad client is closed
      assert.ok(
        lines.some((l) => l['level'] === 40 && String(l['err']).includes(`msgLen ${length} is invalid`)),
        'a warning names the bad length',
      );
      assert.equal(await client.db('app').collection('c').countDocuments(), 1);
      assert.equal((await client.db('admin').command({ proxyEcho: 1 }))['ok'], 1);
    });
  }

  it('shrugs off a client that disconnects in the middle of a message', async () => {
    const current = proxy.stats.connectionsCurrent;
    const raw = await RawClient.connect(proxy.address.port);
    const insert = opMsg({ insert: 'c', documents: [{ half: 'x'.repeat(100_000) }], $db: 'app' });
    // The close follows the bytes on the same stream: the proxy reads the half message
    // before it sees the client go.
    raw.send(insert.subarray(0, 60_000));
    raw.close();
    await until(() => proxy.stats.connectionsCurrent === current);
    assert.equal(await client.db('app').collection('c').countDocuments({ half: { $exists: true } }), 0);
    assert.equal(await client.db('app').collection('c').countDocuments(), 1);
  });

  it('logs connection open and close at debug level', async () => {
    const raw = await RawClient.connect(proxy.address.port);
    await raw.command(opMsg({ ping: 1, $db: 'admin' }));
    raw.close();
    await until(() => lines.some((l) => l['msg'] === 'connection closed' && l['level'] === 20));
    assert.ok(lines.some((l) => l['msg'] === 'connection opened' && l['level'] === 20 && typeof l['connectionId'] === 'number'));
  });

  it('closes a client at once when the upstream refuses connections', async () => {
    const closedPort = await new Promise<number>((resolve) => {
      const probe = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as net.AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const orphan = await startProxy(closedPort);
    try {
      const raw = await RawClient.connect(orphan.address.port);
      await raw.closed;
      assert.equal(orphan.stats.connectionsCurrent, 0);
    } finally {
      await orphan.close();
    }
  });

  it('close() resolves with clients connected, and closes them', async () => {
    const local = await startProxy(server.port);
    const raws = await Promise.all([RawClient.connect(local.address.port), RawClient.connect(local.address.port)]);
    await raws[0]?.command(opMsg({ ping: 1, $db: 'admin' }));
    const driver = new MongoClient(uri(local.address.port));
    let serverLost = false;
    driver.on('serverDescriptionChanged', (event) => (serverLost ||= event.newDescription.type === 'Unknown'));
    await driver.db('admin').command({ ping: 1 });
    await until(() => local.stats.connectionsCurrent >= 4);
    // The raw clients never disconnect by themselves: close() resolving at all says it
    // did not wait for them.
    await local.close();
    for (const raw of raws) await raw.closed;
    assert.equal(local.stats.connectionsCurrent, 0);
    // Let the driver see its server go first: mongodb 7.9's close() can hang in
    // endSessions if it races the server closing (the same happens with the plain tap
    // relay), and it sends no endSessions to a server it knows is unreachable.
    await until(() => serverLost);
    await driver.close();
    await assert.rejects(RawClient.connect(local.address.port), /ECONNREFUSED/);
  });
});

describe('proxy when the upstream goes away', () => {
  it('closes connected clients (none hang) and stays up', async () => {
    const server = await startDevServer();
    const proxy = await startProxy(server.port, testInterceptor());
    const driver = new MongoClient(uri(proxy.address.port), { heartbeatFrequencyMS: 500 });
    let serverLost = false;
    driver.on('serverDescriptionChanged', (event) => (serverLost ||= event.newDescription.type === 'Unknown'));
    try {
      await driver.db('app').collection('c').insertOne({ a: 1 });
      const raw = await RawClient.connect(proxy.address.port);
      await raw.command(opMsg({ ping: 1, $db: 'admin' }));
      // A client with a request in flight when the upstream dies: an awaitable hello.
      const pending = await RawClient.connect(proxy.address.port);
      const { topologyVersion } = (await pending.command(opMsg({ hello: 1, $db: 'admin' }))).doc;
      const forwarded = proxy.stats.forwarded;
      pending.send(opMsg({ hello: 1, topologyVersion, maxAwaitTimeMS: 30_000, $db: 'admin' }));
      await until(() => proxy.stats.forwarded > forwarded);
      await server.stop();
      await raw.closed; // an idle client is closed
      await pending.closed;
      await until(() => proxy.stats.connectionsCurrent === 0);
      // The connected driver sees its server go, rather than waiting on a connection.
      await until(() => serverLost);
      // A new driver fails instead of hanging. Its short server selection bounds only its
      // wait for an upstream that is not coming back; the driver above keeps the default,
      // which its insert may need on a busy machine.
      const fresh = new MongoClient(uri(proxy.address.port), { serverSelectionTimeoutMS: 1_000 });
      try {
        await assert.rejects(fresh.db('app').collection('c').findOne({}), { name: 'MongoServerSelectionError' });
      } finally {
        await fresh.close();
      }

      // The proxy is still listening: a new client is accepted, then closed because
      // there is no upstream, and the proxy still answers nothing it cannot reach.
      const late = await RawClient.connect(proxy.address.port);
      await late.closed;
    } finally {
      await driver.close();
      await proxy.close();
      server.cleanup();
    }
  });
});
