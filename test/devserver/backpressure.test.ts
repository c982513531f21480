/**
 * A client that stops reading stops the dev server's replies to it: an exhaust hello
 * stream with `maxAwaitTimeMS: 0` once grew the server's memory without bound behind a
 * SIGSTOPped client. The server may fill the socket's buffers, no more.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { RawClient, opMsg } from '../helpers/raw_client.js';
import { until } from '../helpers/poll.js';
import { OpMsgFlag } from '../../src/wire/constants.js';

/**
 * The bytes the kernel holds for one loopback connection: those the sender has queued
 * and those the receiver has not read (/proc/net/tcp's tx_queue and rx_queue, proc(5)).
 */
function kernelQueued(serverPort: number, clientPort: number): number {
  const hex = (port: number) => port.toString(16).toUpperCase().padStart(4, '0');
  let bytes = 0;
  for (const line of fs.readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const [, local, remote, , queues] = line.trim().split(/\s+/);
    if (local === undefined || remote === undefined || queues === undefined) continue;
    const [tx, rx] = queues.split(':').map((q) => parseInt(q, 16)) as [number, number];
    if (local.endsWith(`:${hex(serverPort)}`) && remote.endsWith(`:${hex(clientPort)}`)) bytes += tx;
    if (local.endsWith(`:${hex(clientPort)}`) && remote.endsWith(`:${hex(serverPort)}`)) bytes += rx;
  }
  return bytes;
}

/** What the server may hold itself: Node's default high-water mark (16 KiB) and the reply that crossed it, with room to spare. */
const SERVER_HELD_BOUND = 256 * 1024;

describe('dev server backpressure', () => {
  let server: RunningDevServer;

  before(async () => {
    server = await startDevServer();
  });

  after(async () => {
    await server?.stop();
    server?.cleanup();
  });

  it('stops streaming hello to a client that stops reading, and resumes when it reads again', async () => {
    const observer = await RawClient.connect(server.port);
    const commands = async (): Promise<number> => {
      const reply = await observer.command(opMsg({ serverStatus: 1, $db: 'admin' }));
      return (reply.doc['opcounters'] as { command: number }).command;
    };
    const stalled = await RawClient.connect(server.port);
    try {
      const first = await stalled.command(opMsg({ hello: 1, $db: 'admin' }));
      const before = await commands();
      stalled.send(opMsg(
        { hello: 1, topologyVersion: first.doc['topologyVersion'], maxAwaitTimeMS: 0, $db: 'admin' },
        { flags: OpMsgFlag.ExhaustAllowed },
      ));
      const [, streamed] = await stalled.waitForFrames(2);
      const replyBytes = (streamed as Buffer).length;
      const firstBytes = stalled.frames[0]!.length;
      stalled.socket.pause();
      // Every streamed reply is one hello counted; the observer's serverStatus adds one each.
      // What was produced and is neither read by the client nor queued in the kernel is
      // held in the server's memory: a few replies at most.
      let polls = 0;
      let last = -1;
      let unchanged = 0;
      await until(async () => {
        polls += 1;
        const hellos = (await commands()) - before - polls;
        const queued = kernelQueued(server.port, stalled.socket.localPort!);
        const held = hellos * replyBytes - (stalled.receivedBytes - firstBytes) - queued;
        assert.ok(held <= SERVER_HELD_BOUND, `the server holds ${held} bytes of ${hellos} replies for a client that reads none`);
        unchanged = hellos === last ? unchanged + 1 : 0;
        last = hellos;
        return unchanged >= 4;
      }, 250);

      // Reading again drains the buffers, and the stream goes on.
      stalled.socket.resume();
      await until(async () => {
        polls += 1;
        return (await commands()) - before - polls > last + 10;
      });
    } finally {
      stalled.close();
      observer.close();
    }
  });
});
