/**
 * A client that writes its pipelined requests and then half-closes (FIN) gets every
 * answer from mongod. Through the proxy too: the FIN stops reading, and the connection
 * closes only once the forwarded request and the claimed command behind it are answered.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { MessageFramer } from '../../src/wire/framing.js';
import { encodeOpMsg } from '../../src/wire/op_msg.js';
import { encodeDocument } from '../../src/wire/command_message.js';
import type { Interceptor } from '../../src/proxy/interceptor.js';
import { RawClient, decodeReply, opMsg, startProxy, testInterceptor } from './support.js';

/**
 * Sends `requests` through a proxy in one write followed by a FIN (like `nc -q0`, or a
 * shell pipe), and returns the responseTo of every reply the client got before the
 * proxy closed it. Upstream is mongod-like: it answers each request after 100 ms, even
 * after the client's FIN, and closes 500 ms after it. The delays only order events (a
 * request's data comes before the FIN, so its answer is due before the close, however
 * slow the machine); nothing here is asserted about time.
 */
async function answersAfterHalfClose(requests: Buffer[], interceptor: Interceptor | undefined): Promise<number[]> {
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    const framer = new MessageFramer();
    socket.on('data', (chunk) => {
      for (const f of framer.push(chunk)) {
        const id = f.readInt32LE(4);
        setTimeout(() => socket.write(encodeOpMsg({ requestID: 1, responseTo: id, flags: 0, sections: [{ kind: 0, body: encodeDocument({ ok: 1 }) }] })), 100);
      }
    });
    socket.on('end', () => setTimeout(() => socket.end(), 500));
    socket.on('error', () => undefined);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const proxy = await startProxy((server.address() as net.AddressInfo).port, interceptor);
  const raw = await RawClient.connect(proxy.address.port);
  try {
    raw.socket.end(Buffer.concat(requests));
    await raw.closed; // the proxy ends the client once it has answered everything
    return raw.frames.map((f) => decodeReply(f).responseTo);
  } finally {
    raw.close();
    await proxy.close();
    server.close();
  }
}

it('a client that half-closes after pipelining still gets every answer, as from mongod', async () => {
  const find = opMsg({ find: 'c', $db: 'app' });
  const echo = opMsg({ proxyEcho: 1, $db: 'admin' });
  assert.deepEqual(await answersAfterHalfClose([find, echo], testInterceptor()), [find.readInt32LE(4), echo.readInt32LE(4)]);
});

it('without an interceptor (a plain pipe), the FIN is passed on and every answer still arrives', async () => {
  const finds = [opMsg({ find: 'a', $db: 'app' }), opMsg({ find: 'b', $db: 'app' })];
  assert.deepEqual(await answersAfterHalfClose(finds, undefined), finds.map((f) => f.readInt32LE(4)));
});
