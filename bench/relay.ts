/**
 * A zero-inspection TCP relay in Node: the floor a Node proxy can reach. Each client
 * gets its own upstream connection and the bytes are piped both ways with
 * `socket.pipe`, nothing read or framed; TCP_NODELAY on both sockets, as the proxy
 * sets it. bench/proxy.ts runs it as a child process so that its CPU time can be read
 * from /proc on its own, like socat's and the proxy's.
 *
 *   node dist/bench/relay.js --upstream-port 27017 [--upstream-host 127.0.0.1] [--port 0]
 *
 * Prints one JSON line, {"msg":"relay listening","port":N}, once clients can connect;
 * exits on SIGTERM/SIGINT.
 */
import net from 'node:net';
import { parseArgs } from 'node:util';

const { values: opts } = parseArgs({
  options: {
    'upstream-host': { type: 'string', default: '127.0.0.1' },
    'upstream-port': { type: 'string' },
    port: { type: 'string', default: '0' },
  },
  strict: true,
});
const upstreamPort = Number(opts['upstream-port']);
if (!Number.isInteger(upstreamPort) || upstreamPort <= 0) throw new Error('--upstream-port is required');

const sockets = new Set<net.Socket>();

// Half-open, so that a client's FIN is passed on by pipe() (it ends the other side)
// instead of closing both ways at once.
const server = net.createServer({ noDelay: true, allowHalfOpen: true }, (client) => {
  const upstream = net.connect({ host: opts['upstream-host'], port: upstreamPort, noDelay: true, allowHalfOpen: true });
  sockets.add(client).add(upstream);
  const destroyBoth = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', destroyBoth);
  upstream.on('error', destroyBoth);
  client.on('close', () => {
    sockets.delete(client);
    upstream.destroySoon();
  });
  upstream.on('close', () => {
    sockets.delete(upstream);
    client.destroySoon();
  });
  client.pipe(upstream);
  upstream.pipe(client);
});

server.listen(Number(opts.port), '127.0.0.1', () => {
  const { port } = server.address() as net.AddressInfo;
  process.stdout.write(`${JSON.stringify({ msg: 'relay listening', port })}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    server.close();
    for (const socket of sockets) socket.destroy();
    process.exit(0);
  });
}
