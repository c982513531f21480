/**
 * A plain TCP forwarder in front of a dev server, for the outages and restarts of mongod
 * that a relay of whole messages cannot show: it can refuse everyone for a while (mongod
 * down, a network outage) and come back in front of another server (mongod restarted as a
 * new process, at the same address).
 */
import net from 'node:net';

export interface TcpForwarder {
  readonly port: number;
  /**
   * The URI of the forwarder. `serverSelectionTimeoutMS` keeps a failed connect short, for
   * a test of an outage that must outlast several reconnects; it bounds every connect of
   * the client, the first included. Without it, the driver's default (30 s).
   */
  uri(serverSelectionTimeoutMS?: number): string;
  /** Bytes passed on from clients to the server so far, all connections together. */
  bytesToServer(): number;
  /** Drops every connection and refuses new ones. */
  goDown(): void;
  /** Accepts again, forwarding to `port` (another server: a restarted mongod). */
  comeUp(port: number): void;
  close(): void;
}

export async function startTcpForwarder(initialPort: number): Promise<TcpForwarder> {
  let target = initialPort;
  let down = false;
  let toServer = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    if (down) {
      client.destroy();
      return;
    }
    const upstream = net.connect(target, '127.0.0.1');
    sockets.add(client).add(upstream);
    client.on('data', (chunk: Buffer) => (toServer += chunk.length));
    client.pipe(upstream).pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    uri: (serverSelectionTimeoutMS) =>
      `mongodb://127.0.0.1:${port}/?directConnection=true` + (serverSelectionTimeoutMS === undefined ? '' : `&serverSelectionTimeoutMS=${serverSelectionTimeoutMS}`),
    bytesToServer: () => toServer,
    goDown() {
      down = true;
      for (const socket of sockets) socket.destroy();
    },
    comeUp(next) {
      target = next;
      down = false;
    },
    close() {
      server.close();
      for (const socket of sockets) socket.destroy();
    },
  };
}
