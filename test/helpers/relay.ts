/**
 * A TCP relay between clients and mongod that frames both directions, so a test can
 * watch what crosses the wire or cut a connection at a chosen message. Everything it
 * does not cut is forwarded byte for byte, frame by frame.
 */
import net from 'node:net';
import { MessageFramer } from '../../src/wire/framing.js';

export interface RelayHooks {
  /** Sees each client message; returning 'cut' closes that connection instead of forwarding it. */
  fromClient?(frame: Buffer): 'forward' | 'cut';
  /** Sees each mongod message before the client does. */
  fromServer?(frame: Buffer): void;
}

export interface Relay {
  readonly port: number;
  close(): Promise<void>;
}

export async function startRelay(upstreamPort: number, hooks: RelayHooks): Promise<Relay> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
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
        if (hooks.fromClient?.(frame) === 'cut') return closeBoth();
        upstream.write(frame);
      }
    });
    upstream.on('data', (chunk: Buffer) => {
      for (const frame of fromServer.push(chunk)) hooks.fromServer?.(frame);
      client.write(chunk);
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
