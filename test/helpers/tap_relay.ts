/**
 * A TCP relay that forwards bytes untouched and, on the side, frames what the
 * client sends so a test can see which commands and opcodes crossed the wire.
 */
import net from 'node:net';
import { MessageFramer } from '../../src/wire/framing.js';
import { readHeader } from '../../src/wire/header.js';
import { peekCommand } from '../../src/wire/peek.js';

export interface TapRelay {
  readonly port: number;
  /** Commands sent by clients, by name, with the time each was seen and the compressor if any. */
  readonly commands: Array<{ name: string; at: number; compressorId?: number }>;
  /** The hello/isMaster messages clients sent, as they crossed the wire. */
  readonly handshakes: Buffer[];
  /** Opcodes seen in each direction. */
  readonly requestOpcodes: number[];
  readonly replyOpcodes: number[];
  close(): Promise<void>;
}

export async function startTapRelay(upstreamPort: number): Promise<TapRelay> {
  const commands: TapRelay['commands'] = [];
  const handshakes: Buffer[] = [];
  const requestOpcodes: number[] = [];
  const replyOpcodes: number[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(upstreamPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    const fromClient = new MessageFramer();
    const fromServer = new MessageFramer();
    client.on('data', (chunk: Buffer) => {
      for (const frame of fromClient.push(chunk)) {
        requestOpcodes.push(readHeader(frame).opCode);
        const peeked = peekCommand(frame);
        if (peeked === undefined) continue;
        const { commandName: name, compressorId } = peeked;
        commands.push(compressorId === undefined ? { name, at: Date.now() } : { name, at: Date.now(), compressorId });
        if (name === 'hello' || name.toLowerCase() === 'ismaster') handshakes.push(Buffer.from(frame));
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      for (const frame of fromServer.push(chunk)) replyOpcodes.push(readHeader(frame).opCode);
      client.write(chunk);
    });
    const closeBoth = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', closeBoth).on('error', closeBoth);
    upstream.on('close', closeBoth).on('error', closeBoth);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    commands,
    handshakes,
    requestOpcodes,
    replyOpcodes,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
