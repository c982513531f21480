/**
 * `hotbackup serve --advertise`: the npm driver and mongosh, given `replicaSet=rs0` and
 * the proxy's address, do their CRUD through the proxy and never reach the dev server
 * (a one-member replica set) on their own, however long the driver's monitor streams
 * its awaitable hello. Without the flag, the same driver leaves the proxy for the server
 * behind it: what makes this test able to fail.
 *
 * The proxy is reached through a TCP forwarder and advertises the forwarder's address,
 * as a proxy behind a port mapping would; the proxy's upstream is a relay that counts
 * connections, and the dev server counts every connection it accepted: each one must
 * have come through the relay, that is through the proxy.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { MongoClient, type Document, type TopologyDescription } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { spawnCli, type CliProcess } from '../helpers/cli_process.js';
import { startRelay, type Relay } from '../helpers/relay.js';
import { startTcpForwarder, type TcpForwarder } from '../helpers/tcp_forwarder.js';
import { runMongosh } from '../helpers/mongosh.js';
import { PYMONGO_MISSING, runPymongo } from '../helpers/pymongo.js';
import { tempDir } from '../helpers/paths.js';
import { until } from '../helpers/poll.js';

interface Fronted {
  forwarder: TcpForwarder;
  proxy: CliProcess | undefined;
  advertised: string;
}

describe('serve --advertise with replicaSet=rs0', () => {
  let server: RunningDevServer;
  let relay: Relay;
  let relayed = 0;
  const fronts: Fronted[] = [];
  const scratch = tempDir('advertise');

  /**
   * The test's own client of the dev server, for its count of accepted connections. It
   * polls (no streaming monitor, so no connection for round trips): once it has run a
   * command it opens no connection more, and the count moves only for others.
   */
  let observer: MongoClient;

  /** The dev server's own count of the connections it accepted. */
  async function accepted(): Promise<number> {
    const status = await observer.db('admin').command({ serverStatus: 1 });
    return Number((status['connections'] as Document)['totalCreated']);
  }

  /** A proxy in front of the relay, reached through a forwarder whose address it advertises (or not). */
  async function front(advertise: boolean): Promise<Fronted> {
    const forwarder = await startTcpForwarder(1);
    forwarder.goDown();
    const fronted: Fronted = { forwarder, proxy: undefined, advertised: `127.0.0.1:${forwarder.port}` };
    fronts.push(fronted);
    // Each proxy its own state dir: two may not share one.
    const stateDir = path.join(scratch.dir, `state-${fronts.length}`);
    fronted.proxy = await spawnCli(
      ['serve', '--upstream', `mongodb://127.0.0.1:${relay.port}/?directConnection=true`, '--dbpath', server.dbpath, '--state-dir', stateDir, '--port', '0', ...(advertise ? ['--advertise', fronted.advertised] : [])],
      'proxy listening',
    );
    forwarder.comeUp(fronted.proxy.port);
    return fronted;
  }

  before(async () => {
    server = await startDevServer({ args: ['--replSet', 'rs0'] });
    const direct = new MongoClient(server.uri);
    try {
      await direct.db('admin').command({ replSetInitiate: { _id: 'rs0', members: [{ _id: 0, host: `127.0.0.1:${server.port}` }] } });
      await until(async () => (await direct.db('admin').command({ hello: 1 }))['isWritablePrimary'] === true);
    } finally {
      await direct.close();
    }
    observer = new MongoClient(server.uri, { serverMonitoringMode: 'poll', maxPoolSize: 1 });
    await accepted();
    relay = await startRelay(server.port, {
      fromClient: (_frame, connection) => {
        relayed = Math.max(relayed, connection.id);
        return 'forward';
      },
    });
  });

  after(async () => {
    await observer?.close();
    for (const { proxy, forwarder } of fronts) {
      await proxy?.stop();
      forwarder.close();
    }
    await relay?.close();
    await server?.stop();
    server?.cleanup();
    scratch.remove();
  });

  it('the npm driver does CRUD through the proxy, and every connection it makes is to the advertised address', async () => {
    const { advertised } = await front(true);
    const acceptedBefore = await accepted();
    const relayedBefore = relayed;
    const client = new MongoClient(`mongodb://${advertised}/?replicaSet=rs0`, { heartbeatFrequencyMS: 500 });
    const dialled = new Set<string>();
    let awaited = 0;
    let topology: TopologyDescription | undefined;
    client.on('topologyDescriptionChanged', (event) => (topology = event.newDescription));
    client.on('connectionCreated', (event) => dialled.add(event.address));
    client.on('serverHeartbeatStarted', (event) => dialled.add(event.connectionId));
    client.on('serverHeartbeatSucceeded', (event) => void (event.awaited && awaited++));
    try {
      const orders = client.db('shop').collection<{ _id: number; qty: number }>('orders');
      await orders.insertMany([{ _id: 1, qty: 2 }, { _id: 2, qty: 5 }]);
      await orders.updateOne({ _id: 1 }, { $inc: { qty: 1 } });
      await orders.deleteOne({ _id: 2 });
      assert.deepEqual(await orders.find().toArray(), [{ _id: 1, qty: 3 }]);
      // The monitor's awaitable hello streams (moreToCome replies, each rewritten): a few of
      // those, and the driver still knows only the proxy.
      await until(() => awaited >= 2);
      assert.deepEqual([...(topology?.servers.keys() ?? [])], [advertised]);
      assert.equal(topology?.type, 'ReplicaSetWithPrimary');
      assert.deepEqual([...dialled], [advertised]);
    } finally {
      await client.close();
    }
    // Every connection the dev server accepted meanwhile came through the relay: the proxy's.
    assert.ok(relayed > relayedBefore);
    assert.equal((await accepted()) - acceptedBefore, relayed - relayedBefore);
  });

  it('mongosh does too, and its hello names the proxy', async () => {
    const { advertised } = fronts[0] ?? (await front(true));
    const acceptedBefore = await accepted();
    const relayedBefore = relayed;
    const result = await runMongosh(
      `mongodb://${advertised}/?replicaSet=rs0`,
      "db.getSiblingDB('shop').notes.insertOne({_id: 'm'}); const h = db.hello(); print(JSON.stringify({me: h.me, hosts: h.hosts, primary: h.primary, n: db.getSiblingDB('shop').notes.countDocuments()}))",
    );
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout.trim().split('\n').pop() ?? '{}'), { me: advertised, hosts: [advertised], primary: advertised, n: 1 });
    assert.equal((await accepted()) - acceptedBefore, relayed - relayedBefore);
  });

  it('pymongo 3.11 (legacy isMaster over OP_QUERY) finds the proxy as the primary, and stays on it', { skip: PYMONGO_MISSING }, async () => {
    const { advertised } = fronts[0] ?? (await front(true));
    const acceptedBefore = await accepted();
    const relayedBefore = relayed;
    const result = await runPymongo(`mongodb://${advertised}/?replicaSet=rs0`);
    assert.equal(result.code, 0, result.stderr);
    const out = JSON.parse(result.stdout.trim()) as { primary: [string, number]; docs: unknown[] };
    assert.equal(out.primary.join(':'), advertised);
    assert.deepEqual(out.docs, [{ _id: 1, from: 'pymongo' }]);
    assert.equal((await accepted()) - acceptedBefore, relayed - relayedBefore);
  });

  it('without --advertise the driver leaves the proxy for the server behind it', async () => {
    const { advertised } = await front(false);
    const client = new MongoClient(`mongodb://${advertised}/?replicaSet=rs0`);
    const dialled = new Set<string>();
    let topology: TopologyDescription | undefined;
    client.on('topologyDescriptionChanged', (event) => (topology = event.newDescription));
    client.on('connectionCreated', (event) => dialled.add(event.address));
    try {
      await client.db('shop').collection('orders').findOne({});
      assert.ok(dialled.has(`127.0.0.1:${server.port}`), [...dialled].join(', '));
      assert.deepEqual([...(topology?.servers.keys() ?? [])], [`127.0.0.1:${server.port}`]);
    } finally {
      await client.close();
    }
  });
});
