/**
 * A TCP relay that forwards bytes untouched and, on the side, frames what the
 * client sends so a test can see which commands and opcodes crossed the wire.
 */
import { readHeader } from '../../src/wire/header.js';
import { peekRequest } from '../../src/wire/peek.js';
import { startRelay } from './relay.js';

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
  const relay = await startRelay(upstreamPort, {
    fromClient(frame) {
      requestOpcodes.push(readHeader(frame).opCode);
      const peek = peekRequest(frame);
      if (peek.kind !== 'command') return 'forward';
      const { commandName: name, compressorId } = peek.command;
      commands.push(compressorId === undefined ? { name, at: Date.now() } : { name, at: Date.now(), compressorId });
      if (name === 'hello' || name.toLowerCase() === 'ismaster') handshakes.push(Buffer.from(frame));
      return 'forward';
    },
    fromServer(frame) {
      replyOpcodes.push(readHeader(frame).opCode);
    },
  });
  return { port: relay.port, commands, handshakes, requestOpcodes, replyOpcodes, close: () => relay.close() };
}
