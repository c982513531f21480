/**
 * One client connection: frames in, replies out, one request at a time (as mongod
 * serves a connection). A malformed frame closes this connection only. An awaitable
 * hello sent with exhaustAllowed becomes a stream of moreToCome replies, each
 * answering the previous one, until the client goes away. Every reply waits for the
 * one before it to leave Node's buffer: a client that stops reading stops the server
 * producing replies for it, instead of growing the server's memory without bound.
 */
import type { Socket } from 'node:net';
import { once } from 'node:events';
import type { Document } from './bson.js';
import type { ServerState } from './state.js';
import type { CommandDispatcher, ConnectionInfo, CommandContext } from './handlers/command_table.js';
import { isAwaitableHello } from './handlers/command_table.js';
import { MessageFramer } from '../wire/framing.js';
import { OpCode, OpMsgFlag } from '../wire/constants.js';
import { decodeRequest, encodeReply, checkLegacyOpcode, type CommandRequest } from '../wire/command_message.js';
import { CommandError, errorReply } from '../errors.js';
import { AuthSession, isLoopback } from './auth/session.js';

export class ClientConnection {
  private readonly framer = new MessageFramer();
  private readonly closed = new AbortController();
  private queue: Promise<void> = Promise.resolve();
  private nextRequestId = 1;
  readonly info: ConnectionInfo;

  constructor(
    private readonly socket: Socket,
    private readonly state: ServerState,
    private readonly dispatcher: CommandDispatcher,
    id: number,
  ) {
    this.info = {
      id,
      remoteAddress: `${socket.remoteAddress ?? ''}:${socket.remotePort ?? 0}`,
      localAddress: `${socket.localAddress ?? ''}:${socket.localPort ?? 0}`,
      clientMetadata: undefined,
      supportsHello: false,
      auth: new AuthSession(isLoopback(socket.remoteAddress)),
    };
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => this.close());
    socket.on('close', () => this.close());
  }

  get signal(): AbortSignal {
    return this.closed.signal;
  }

  close(): void {
    if (this.closed.signal.aborted) return;
    this.closed.abort();
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    let frames: Buffer[];
    try {
      frames = this.framer.push(chunk);
    } catch (err) {
      this.state.log.warn({ connectionId: this.info.id, err: String(err) }, 'closing connection: bad frame');
      this.close();
      return;
    }
    for (const frame of frames) {
      this.queue = this.queue.then(() => this.handle(frame));
    }
  }

  private async handle(frame: Buffer): Promise<void> {
    if (this.closed.signal.aborted) return;
    let request: CommandRequest;
    try {
      request = decodeRequest(frame);
    } catch (err) {
      // An undecodable message leaves the stream in an unknown state: close, as mongod does.
      this.state.log.warn({ connectionId: this.info.id, err: String(err) }, 'closing connection: bad message');
      this.close();
      return;
    }
    try {
      if (request.opCode === OpCode.Msg && (request.flags & OpMsgFlag.ExhaustAllowed) !== 0 && isAwaitableHello(request.command)) {
        await this.streamHello(request);
        return;
      }
      const reply = await this.execute(request);
      if (request.name === 'shutdown' && reply['ok'] === 1) return;
      if ((request.flags & OpMsgFlag.MoreToCome) !== 0) return;
      await this.send(request, reply, request.requestID, false);
    } catch (err) {
      this.state.log.error({ connectionId: this.info.id, err }, 'request failed');
      this.close();
    }
  }

  /** Runs a command; a command error becomes an `{ok: 0}` reply, never a thrown error. */
  private async execute(request: CommandRequest): Promise<Document> {
    const ctx: CommandContext = {
      state: this.state,
      connection: this.info,
      db: request.db,
      signal: this.closed.signal,
    };
    try {
      checkLegacyOpcode(request);
      return await this.dispatcher.dispatch(request.command, ctx);
    } catch (err) {
      if (!(err instanceof CommandError)) {
        this.state.log.error({ connectionId: this.info.id, command: request.name, err }, 'command threw');
      }
      return errorReply(err);
    }
  }

  private async streamHello(request: CommandRequest): Promise<void> {
    let responseTo = request.requestID;
    let next = request;
    while (!this.closed.signal.aborted) {
      const reply = await this.execute(next);
      if (this.closed.signal.aborted) return;
      const streaming = reply['ok'] === 1;
      responseTo = await this.send(request, reply, responseTo, streaming);
      if (!streaming) return;
      // Each reply in the stream waits for a change from the one before it, as mongod
      // reruns an exhaust hello with the topologyVersion it just sent
      // (src/mongo/db/service_entry_point_common.cpp). Rerunning the client's first
      // request would answer at once, in a loop, once the topology has moved on.
      next = { ...request, command: { ...request.command, topologyVersion: reply['topologyVersion'] } };
    }
  }

  /**
   * Writes one reply and resolves once the socket can take more (at once, unless the
   * client stopped reading and Node's buffer is past its high-water mark); returns its
   * requestID, which a moreToCome successor answers. A connection that closes while
   * waiting resolves too: the caller sees `closed` and stops.
   */
  private async send(request: CommandRequest, reply: Document, responseTo: number, moreToCome: boolean): Promise<number> {
    const requestID = this.nextRequestId;
    this.nextRequestId = (this.nextRequestId + 1) | 0 || 1;
    if (!this.socket.write(encodeReply(request, reply, { requestID, responseTo, moreToCome }))) {
      try {
        await once(this.socket, 'drain', { signal: this.closed.signal });
      } catch (err) {
        if (!this.closed.signal.aborted) throw err;
      }
    }
    return requestID;
  }
}
