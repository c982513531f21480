/**
 * `advertise` in front of a standalone: its hello replies name no member, so the driver
 * sees mongod's own replies, its monitor's awaitable hello streams through the proxy as
 * before, and CRUD works; with no interceptor, nothing is claimed.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { MongoClient } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { until } from '../helpers/poll.js';
import { startProxy, uri } from './support.js';
import type { ProxyServer } from '../../src/proxy/proxy_server.js';

describe('ProxyServer with advertise, in front of a standalone', () => {
  let server: RunningDevServer;
  let proxy: ProxyServer;
  before(async () => {
    server = await startDevServer();
    proxy = await startProxy(server.port, undefined, undefined, { advertise: 'backup-proxy.example:27018' });
  });
  after(async () => {
    await proxy?.close();
    await server?.stop();
    server?.cleanup();
  });

  it('passes the standalone\'s replies as they are, streams the awaitable hello, and serves CRUD', async () => {
    const client = new MongoClient(uri(proxy.address.port), { heartbeatFrequencyMS: 500 });
    let awaited = 0;
    client.on('serverHeartbeatSucceeded', (event) => void (event.awaited && awaited++));
    try {
      const hello = await client.db('admin').command({ hello: 1 });
      assert.equal(hello['isWritablePrimary'], true);
      assert.equal('me' in hello, false);
      const notes = client.db('app').collection<{ _id: number; text: string }>('notes');
      await notes.insertOne({ _id: 1, text: 'through the proxy' });
      assert.deepEqual(await notes.findOne({ _id: 1 }), { _id: 1, text: 'through the proxy' });
      await until(() => awaited >= 2);
      assert.equal(proxy.stats.intercepted, 0);
    } finally {
      await client.close();
    }
  });
});
