/**
 * The narrow interface through which the proxy hands commands to whoever answers them
 * itself (the hot-backup commands). The proxy knows nothing of what they do: it only
 * asks, per message, whether the command name is claimed, and if so awaits a reply
 * document and frames it the way the request came.
 */
import type { CommandRequest, Document } from '../wire/command_message.js';

export type { CommandRequest, Document };

/** Which client a claimed command came from; stable for the life of its connection. */
export interface ClientInfo {
  readonly id: number;
  /** `host:port` of the client, for logs and currentOp-like reporting. */
  readonly remoteAddress: string;
}

export interface Interceptor {
  /**
   * Called with the peeked command name only, for every command message the proxy sees
   * (before any decoding): must be cheap and must not throw.
   */
  intercepts(commandName: string): boolean;
  /**
   * Answers a claimed command. Command errors must already be turned into
   * `{ok: 0, errmsg, code, codeName}` documents; a throw is treated as a bug and
   * answered with InternalError. It is called only once mongod has answered the
   * requests the same client sent before this one, and later messages from that client
   * wait until it settles: the order mongod itself keeps on a connection.
   */
  run(request: CommandRequest, client: ClientInfo): Promise<Document>;
}
