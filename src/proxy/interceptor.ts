/**
 * The narrow interface through which the proxy hands commands to whoever answers them
 * itself (the hot-backup commands). The proxy knows nothing of what they do: it only
 * asks, per message, whether the command name is claimed, and if so awaits a reply
 * document and frames it the way the request came. A claimed command may also go on to
 * mongod after all, on the client's own connection: untouched (`FORWARD`), or with its
 * reply handed back to be amended (`Upstream.forward`, as for currentOp).
 */
import type { CommandRequest, Document } from '../wire/command_message.js';
import { decodeReply } from '../wire/command_message.js';

export type { CommandRequest, Document };

/** Which client a claimed command came from; stable for the life of its connection. */
export interface ClientInfo {
  readonly id: number;
  /** `host:port` of the client, for logs and currentOp-like reporting. */
  readonly remoteAddress: string;
  /**
   * Grows whenever the client sends something that may change who it is authenticated
   * as on mongod (saslStart, saslContinue, authenticate, logout, a handshake that may
   * carry speculativeAuthenticate): what was learnt of its privileges at an older value
   * may be stale.
   */
  readonly authGeneration: number;
}

/** `run` answers this to send the request on to mongod untouched; mongod's reply then reaches the client untouched. */
export const FORWARD: unique symbol = Symbol('forward the request to mongod untouched');

/** mongod's reply to a claimed request that was forwarded (Upstream.forward), as it came. */
export class UpstreamReply {
  #document: Document | undefined;

  constructor(readonly bytes: Buffer) {}

  /** Decoded losslessly (decodeReply); throws on a reply that cannot be decoded. */
  document(): Document {
    this.#document ??= decodeReply(this.bytes);
    return this.#document;
  }
}

/** The client's own connection to mongod, for a claimed request. */
export interface Upstream {
  /**
   * Sends the request, exactly as the client sent it, to mongod on the client's own
   * connection (so mongod judges it as the client's: its authentication, its session),
   * and resolves with mongod's reply, which does not reach the client unless `run`
   * returns it. Call it at most once, and never for a request sent with moreToCome
   * (mongod answers none). Rejects if the connection closes first.
   */
  forward(): Promise<UpstreamReply>;
  /**
   * Runs a command of the proxy's own on the client's connection (so mongod answers it
   * as the client's: its authentication), and resolves with mongod's reply, which the
   * client never sees. Call it before `forward`, never after.
   */
  command(db: string, command: Document): Promise<Document>;
}

/** What `run` answers: a reply document of its own, mongod's reply (amended or not), or FORWARD. */
export type InterceptorResult = Document | UpstreamReply | typeof FORWARD;

export interface Interceptor {
  /**
   * Called with the peeked command name, and the BSON type byte of its first value (a
   * number for `{aggregate: 1}`, a string for `{aggregate: "coll"}`), for every command
   * message the proxy sees (before any decoding): must be cheap and must not throw. The
   * answer may depend on the interceptor's state (currentOp is claimed only while a
   * backup runs); a message that waits in a connection's queue is asked about again when
   * its turn comes.
   */
  intercepts(commandName: string, argumentType: number): boolean;
  /**
   * Answers a claimed command. Command errors must already be turned into
   * `{ok: 0, errmsg, code, codeName}` documents; a throw is treated as a bug and
   * answered with InternalError. It is called only once mongod has answered the
   * requests the same client sent before this one, and later messages from that client
   * wait until it settles: the order mongod itself keeps on a connection.
   */
  run(request: CommandRequest, client: ClientInfo, upstream: Upstream): Promise<InterceptorResult>;
}
