/**
 * The driver's monitor uses awaitable (streaming) hello against the dev server,
 * so an idle client costs a handful of hellos, not a spin.
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
    const heartbeats: boolean[] = [];
    client.on('serverHeartbeatSucceeded', (event) => heartbeats.push(event.awaited));
    await client.connect();
    await client.db('admin').command({ ping: 1 });
    // The 10 s are the observation window, not a wait for something: a busy machine can
    // only make the driver send fewer hellos in it, never more.
    const start = Date.now();
    await sleep(10_000);
    const hellos = relay.commands.filter((c) => c.at >= start && (c.name === 'hello' || c.name.toLowerCase() === 'ismaster'));
    // Three heartbeats: after the first plain check, streamed ones if streaming works.
    await until(() => heartbeats.length >= 3);
    await client.close();

    // Even with a 500 ms heartbeat the streaming monitor sends its request once;
    // only the RTT pinger repeats. A polling (non-awaitable) monitor would send ~20.
    assert.ok(hellos.length <= 30, `${hellos.length} hellos in 10 s`);
    assert.ok(hellos.length / 10 <= 3, `${hellos.length / 10} hellos per second`);
    assert.ok(heartbeats.includes(true), 'the driver saw awaited (streamed) heartbeats');
  });
});
