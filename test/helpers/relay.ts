/**
 * A TCP relay between clients and mongod that frames both directions, so a test can
 * watch what crosses the wire or cut a connection at a chosen message. Everything it
 * does not cut or swallow is forwarded byte for byte, frame by frame.
 *
 * startFaultRelay, on top, loses one chosen reply or swallows one chosen command: the
 * network failures after which a client cannot tell whether mongod applied its command.
 */
import net from 'node:net';
import { MessageFramer } from '../../src/wire/framing.js';
import { peekRequest } from '../../src/wire/peek.js';

/** One relayed connection, as the hooks see it. */
export interface RelayConnection {
  /** Numbers the relayed connections, for hooks that keep state per connection. */
  readonly id: number;
  /** Sends a message to mongod on this connection: one a hook swallowed earlier, say. */
  toServer(frame: Buffer): void;
}

export interface RelayHooks {
  /**
   * Sees each client message: 'forward' passes it on, 'cut' closes that connection
   * instead, 'swallow' drops it and leaves the connection open (it is never answered,
   * unless the hook sends it on later with `connection.toServer`).
   */
  fromClient?(frame: Buffer, connection: RelayConnection): 'forward' | 'cut' | 'swallow';
  /** Sees each mongod message before the client does; 'cut' closes that connection instead of delivering it. */
  fromServer?(frame: Buffer, connection: RelayConnection): 'cut' | void;
}

export interface Relay {
  readonly port: number;
  close(): Promise<void>;
}

export async function startRelay(upstreamPort: number, hooks: RelayHooks): Promise<Relay> {
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer((client) => {
    const upstream = net.connect(upstreamPort, '127.0.0.1');
    const connection: RelayConnection = { id: ++connections, toServer: (frame) => upstream.write(frame) };
    sockets.add(client).add(upstream);
    const fromClient = new MessageFramer();
    const fromServer = new MessageFramer();
    const closeBoth = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (chunk: Buffer) => {
      for (const frame of fromClient.push(chunk)) {
        const verdict = hooks.fromClient?.(frame, connection) ?? 'forward';
        if (verdict === 'cut') return closeBoth();
        if (verdict === 'forward') upstream.write(frame);
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

/** Which command a fault applies to: its name and its whole message, to look inside. */
export type CommandMatch = (commandName: string, frame: Buffer) => boolean;

export interface FaultRelay extends Relay {
  /**
   * The next command that matches is forwarded and applied, but its reply is dropped and
   * the connection cut. Resolves once that reply was dropped.
   */
  loseReplyTo(match: CommandMatch): Promise<void>;
  /** The next command that matches is swallowed: never forwarded, never answered, the connection left open. */
  swallow(match: CommandMatch): Promise<void>;
  /**
   * The next command that matches is held back; resolves, once it is, with the function
   * that sends it on. Lets a test act at an exact point of a client's sequence.
   */
  hold(match: CommandMatch): Promise<() => void>;
}

export async function startFaultRelay(upstreamPort: number): Promise<FaultRelay> {
  let loseReply: { match: CommandMatch; done: () => void } | undefined;
  let swallow: { match: CommandMatch; done: () => void } | undefined;
  let hold: { match: CommandMatch; done: (forward: () => void) => void } | undefined;
  /** The request whose reply is to be lost, on the connection that sent it. */
  let doomed: { connection: number; requestId: number; done: () => void } | undefined;
  const relay = await startRelay(upstreamPort, {
    fromClient(frame, connection) {
      const peek = peekRequest(frame);
      if (peek.kind !== 'command') return 'forward';
      const name = peek.command.commandName;
      if (swallow?.match(name, frame) === true) {
        swallow.done();
        swallow = undefined;
        return 'swallow';
      }
      if (hold?.match(name, frame) === true) {
        const held = Buffer.from(frame);
        hold.done(() => connection.toServer(held));
        hold = undefined;
        return 'swallow';
      }
      if (loseReply?.match(name, frame) === true) {
        doomed = { connection: connection.id, requestId: frame.readInt32LE(4), done: loseReply.done };
        loseReply = undefined;
      }
      return 'forward';
    },
    fromServer(frame, connection) {
      // responseTo, at offset 8, names the request a reply answers.
      if (doomed === undefined || doomed.connection !== connection.id || frame.readInt32LE(8) !== doomed.requestId) return;
      doomed.done();
      doomed = undefined;
      return 'cut';
    },
  });
  return {
    ...relay,
    loseReplyTo: (match) => new Promise<void>((done) => (loseReply = { match, done })),
    swallow: (match) => new Promise<void>((done) => (swallow = { match, done })),
    hold: (match) => new Promise<() => void>((done) => (hold = { match, done })),
  };
}
