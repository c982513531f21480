/**
 * The driver's monitor uses awaitable (streaming) hello against the dev server: one
 * request, then a reply at each heartbeat, and an idle client costs a handful of those,
 * not a spin.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { MongoClient } from 'mongodb';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startTapRelay, type TapRelay } from '../helpers/tap_relay.js';
import { until } from '../helpers/poll.js';

describe('driver monitoring against the dev server', () => {
  let server: RunningDevServer;
  let relay: TapRelay;

  before(async () => {
    server = await startDevServer();
    relay = await startTapRelay(server.port);
  });

  after(async () => {
    await relay?.close();
    await server?.stop();
    server?.cleanup();
  });

  it('streams hello and stays quiet for 10 s while idle', async () => {
    const client = new MongoClient(`mongodb://127.0.0.1:${relay.port}/?directConnection=true`, {
      heartbeatFrequencyMS: 500,
    });
    const heartbeats: Array<{ awaited: boolean; at: number }> = [];
    client.on('serverHeartbeatSucceeded', (event) => heartbeats.push({ awaited: event.awaited, at: Date.now() }));
    await client.connect();
    await client.db('admin').command({ ping: 1 });
    // The 10 s are the observation window, not a wait for something: a busy machine can
    // only make the monitor check less often in it, never more.
    const start = Date.now();
    await sleep(10_000);
    // Each check of the monitor, polled or streamed, is one heartbeat. The dev server
    // holds an awaitable hello for its maxAwaitTimeMS (here the 500 ms heartbeat): one
    // that answered at once would have the monitor spin.
    const checks = heartbeats.filter((h) => h.at >= start).length;
    assert.ok(checks <= 30, `${checks} heartbeats in 10 s`);

    // Streaming, not polling: the monitor sent one awaitable hello (with maxAwaitTimeMS)
    // and the dev server streamed a reply to it at every heartbeat, each one that the
    // driver counts as awaited. A polling monitor sends a request per heartbeat.
    await until(() => heartbeats.length >= 4);
    const awaited = heartbeats.filter((h) => h.awaited).length;
    const awaitable = relay.handshakes.filter((frame) => frame.includes(Buffer.from('maxAwaitTimeMS'))).length;
    await client.close();
    assert.ok(awaitable < awaited, `${awaitable} awaitable hellos sent for ${awaited} awaited heartbeats`);
  });
});
