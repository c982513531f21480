/**
 * Running one command the interceptor claimed, on behalf of its connection
 * (proxy_connection.ts): decode it, wait for mongod to answer what the client sent
 * before it, hand it to the interceptor with the client's own upstream (`Upstream`), and
 * put the answer in the client's stream: a reply of ours, framed the way the request
 * came; mongod's own reply, as it came or amended; or the request itself, sent on to
 * mongod untouched (FORWARD).
 *
 * The connection keeps the order (a claimed command holds back everything behind it) and
 * owns the sockets; this module only runs the command, through the narrow `ClaimHost`.
 */
import type { Logger } from 'pino';
import { OpCode, OpMsgFlag } from '../wire/constants.js';
import type { PeekedCommand } from '../wire/peek.js';
import { decodeReply, decodeRequest, encodeDocument, encodeReply, type CommandRequest, type Document } from '../wire/command_message.js';
import { encodeOpMsg } from '../wire/op_msg.js';
import { errorReply } from '../errors.js';
import type { QueuedFrame } from './client_message.js';
import { FORWARD, UpstreamReply, type ClientInfo, type Interceptor, type InterceptorResult, type Upstream } from './interceptor.js';

/** What running a claimed command needs of its connection. */
export interface ClaimHost {
  readonly info: ClientInfo;
  readonly log: Logger;
  /** True once the connection is closed: nothing more is sent either way. */
  closed(): boolean;
  /** Settles once mongod has answered every request forwarded so far; undefined when none is awaited. */
  allAnswered(): Promise<void> | undefined;
  /** Sends a client frame to mongod, as any forwarded one (counted, its answer awaited). */
  forward(frame: Buffer, peeked: PeekedCommand | undefined): void;
  /** Takes mongod's answer to `requestID` out of the stream to the client (ReplySplicer.capture). */
  capture(requestID: number): Promise<Buffer>;
  /** Puts a reply in the stream to the client, between two of mongod's messages. */
  inject(reply: Buffer): void;
  /** One more command was claimed (ProxyStats.intercepted). */
  intercepted(): void;
  /** Closes the connection at once: something that must not happen did. */
  fail(reason: string, err: unknown): void;
}

/**
 * requestIDs of the proxy's own requests on a client's connection: negative, counting
 * down, where drivers count up from 1, so a reply to one is never taken for a reply to
 * the client. Only one is ever in flight, while the client's requests all wait.
 */
let ownRequestID = -1;

function nextOwnRequestID(): number {
  const id = ownRequestID;
  ownRequestID = ownRequestID <= -0x7fff_0000 ? -1 : ownRequestID - 1;
  return id;
}

export class ClaimedCommands {
  #nextRequestID = 1;
  /** The running command's authGeneration stamp (QueuedFrame.authGeneration). */
  #stamp: number | undefined;
  /**
   * The client as the interceptor sees it: one object for the connection's life (it keys
   * what is cached per client), whose authGeneration is the one the running command
   * arrived at, never one raised since by an authentication command queued behind it
   * (a pipelined `[backupThrottle, logout]` must not have the privileges learnt for the
   * throttle kept as valid after the logout).
   */
  readonly #client: ClientInfo;

  constructor(
    private readonly interceptor: Interceptor,
    private readonly host: ClaimHost,
  ) {
    const commands = this;
    this.#client = Object.freeze({
      id: host.info.id,
      remoteAddress: host.info.remoteAddress,
      get authGeneration() {
        return commands.#stamp ?? host.info.authGeneration;
      },
    });
  }

  async run(item: QueuedFrame): Promise<void> {
    const { host } = this;
    const { frame, peeked } = item;
    let request: CommandRequest;
    try {
      request = decodeRequest(frame, item.decompressed);
    } catch (err) {
      // Not ours to judge a malformed message (bad checksum, no $db...): mongod answers
      // it with the error it would give any client.
      host.log.warn({ err: String(err) }, 'cannot decode a claimed command; forwarding it');
      host.forward(frame, peeked);
      return;
    }
    // mongod would start this command only after answering everything before it on this
    // connection: a pipelined backupStart sees the insert sent ahead of it, and its
    // reply follows the insert's. (Later frames wait in the queue meanwhile.)
    const earlier = host.allAnswered();
    if (earlier !== undefined) await earlier;
    if (host.closed()) return;
    host.intercepted();
    let forwarded = false;
    const upstream: Upstream = {
      forward: () => {
        if (forwarded) return Promise.reject(new Error('a claimed request is forwarded once at most'));
        forwarded = true;
        const captured = host.capture(request.requestID);
        if (!host.closed()) host.forward(frame, peeked);
        return captured.then((bytes) => new UpstreamReply(bytes));
      },
      command: async (db, command) => {
        if (forwarded) throw new Error("the proxy's own command must come before the forwarded request");
        const requestID = nextOwnRequestID();
        const frame = encodeOpMsg({ requestID, responseTo: 0, flags: 0, sections: [{ kind: 0, body: encodeDocument({ ...command, $db: db }) }] });
        const captured = host.capture(requestID);
        if (!host.closed()) host.forward(frame, undefined);
        return decodeReply(await captured);
      },
    };
    let reply: InterceptorResult;
    try {
      this.#stamp = item.authGeneration;
      reply = await this.interceptor.run(request, this.#client, upstream);
    } catch (err) {
      host.log.warn({ command: request.name, err }, 'interceptor threw; answering InternalError');
      reply = errorReply(err);
    }
    if (host.closed()) return;
    if (reply === FORWARD) {
      // Judged not ours after all: mongod answers it, as if it had never been held.
      if (forwarded) host.fail('interceptor forwarded a request twice', new Error(`${request.name} was forwarded already`));
      else host.forward(frame, peeked);
      return;
    }
    if (request.opCode === OpCode.Msg && (request.flags & OpMsgFlag.MoreToCome) !== 0) return;
    // mongod's own reply, as it came (its ids answer this request already), or one of ours.
    host.inject(reply instanceof UpstreamReply ? reply.bytes : this.#encode(request, reply));
  }

  #encode(request: CommandRequest, reply: Document): Buffer {
    const framing = { requestID: this.#nextRequestID, responseTo: request.requestID };
    // Wraps at int32 like mongod's counters, skipping 0 (which means "no request").
    this.#nextRequestID = (this.#nextRequestID + 1) | 0 || 1;
    try {
      return encodeReply(request, reply, framing);
    } catch (err) {
      // A reply we cannot encode (too large, unserializable) still gets an answer.
      this.host.log.warn({ command: request.name, err }, 'cannot encode interceptor reply');
      return encodeReply(request, errorReply(err), framing);
    }
  }
}
