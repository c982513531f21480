/**
 * A TCP relay between clients and mongod that frames both directions, so a test can
 * watch what crosses the wire, or fail the network at a chosen message: cut the
 * connection, swallow a request (a half-open connection: no reply, no RST), or lose a
 * reply. Everything else is forwarded byte for byte, frame by frame.
 */
import net from 'node:net';
import { MessageFramer } from '../../src/wire/framing.js';

/**
 * What becomes of a message: 'forward' it; 'cut' closes its connection instead (both
 * sides); 'swallow' (requests only) drops it and leaves the connection open, silent.
 * `connection` numbers the relayed connections, so hooks can pair requests and replies.
 */
export interface RelayHooks {
  fromClient?(frame: Buffer, connection: number): 'forward' | 'cut' | 'swallow';
  /** Sees each mongod message before the client does; returns nothing to forward it. */
  fromServer?(frame: Buffer, connection: number): void | 'forward' | 'cut';
}

export interface Relay {
  readonly port: number;
  close(): Promise<void>;
}

export async function startRelay(upstreamPort: number, hooks: RelayHooks): Promise<Relay> {
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer((client) => {
    const connection = ++connections;
    const upstream = net.connect(upstreamPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    const fromClient = new MessageFramer();
    const fromServer = new MessageFramer();
    const closeBoth = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (chunk: Buffer) => {
      for (const frame of fromClient.push(chunk)) {
        const verdict = hooks.fromClient?.(frame, connection);
        if (verdict === 'cut') return closeBoth();
        if (verdict !== 'swallow') upstream.write(frame);
      }
    });
    upstream.on('data', (chunk: Buffer) => {
      for (const frame of fromServer.push(chunk)) {
        if (hooks.fromServer?.(frame, connection) === 'cut') return closeBoth();
        client.write(frame);
      }
    });
    client.on('close', closeBoth).on('error', closeBoth);
    upstream.on('close', closeBoth).on('error', closeBoth);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
