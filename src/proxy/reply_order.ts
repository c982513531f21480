/**
 * mongod answers a connection's requests one at a time, in order. A client may pipeline
 * (send an insert and a backupStatus in one write) and rely on that: the insert's reply
 * first. So a command the proxy answers itself must not run, let alone answer, before
 * mongod has answered the requests forwarded ahead of it on the same connection.
 *
 * `ForwardedRequests` keeps the requestIDs of forwarded messages that expect a reply, in
 * order, and learns from the upstream's message headers (via the boundary tracker) which
 * of them are answered. Answers come in order, so an answer to one request also settles
 * every request before it: a message we wrongly counted as expecting a reply cannot hold
 * anything up past the next answer. Exhaust streams cannot block anything either: their
 * first reply answers the request, and the replies after it answer mongod's own previous
 * reply (responseTo = its requestID). Those are not matched at all: mongod's requestID
 * may happen to equal a client request still waiting, which must not be released by it.
 */
import { OpCode, OpMsgFlag } from '../wire/constants.js';
import type { PeekedCommand } from '../wire/peek.js';

/** Legacy OP_GET_MORE. mongod ≥ 5.1 still answers it (with an error), so it counts. */
const OP_GET_MORE = 2005;

/**
 * Whether mongod sends a reply to this client message (src/mongo/db/
 * service_entry_point_common.cpp, HandleRequest::handleRequest: OP_MSG unless
 * moreToCome, OP_QUERY and OP_GET_MORE get one; OP_INSERT, OP_UPDATE, OP_DELETE and
 * OP_KILL_CURSORS are fire-and-forget). Reads two header fields, never the body; the
 * flags of a compressed OP_MSG are inside its compressed body, so they come from the
 * peek, which has decompressed it already. A compressed OP_MSG the peek could not read is
 * counted as expecting no reply: at worst a reply of ours then comes before mongod's
 * error for it, while counting it wrongly could hold our reply back for good.
 */
export function expectsReply(frame: Buffer, peeked: PeekedCommand | undefined): boolean {
  if (frame.readInt32LE(12) !== OpCode.Compressed) return headExpectsReply(frame, 0, frame.length);
  if (frame.length < 20) return false;
  const originalOpcode = frame.readInt32LE(16);
  if (originalOpcode === OpCode.Query || originalOpcode === OP_GET_MORE) return true;
  return originalOpcode === OpCode.Msg && peeked !== undefined && peeked.moreToCome !== true;
}

/**
 * The same for an uncompressed message streamed through, from its first bytes:
 * `head[start..]` holds its 16-byte header, and its flagBits too if it is an OP_MSG of
 * 20 bytes or more.
 */
export function headExpectsReply(head: Buffer, start: number, messageLength: number): boolean {
  const opCode = head.readInt32LE(start + 12);
  if (opCode === OpCode.Msg) return messageLength >= 20 && (head.readUInt32LE(start + 16) & OpMsgFlag.MoreToCome) === 0;
  return opCode === OpCode.Query || opCode === OP_GET_MORE;
}

export class ForwardedRequests {
  /** requestIDs awaiting an answer, oldest first, from index #head. */
  #ids: number[] = [];
  #head = 0;
  /** How many of the awaited ids carry each requestID (a client may reuse one). */
  readonly #awaiting = new Map<number, number>();
  /** Requests counted so far, and how many of them (a prefix) are answered. */
  #forwarded = 0;
  #answered = 0;
  /** Waiters for "everything up to #forwarded = upTo is answered", in upTo order. */
  #waiters: Array<{ upTo: number; wake: () => void }> = [];
  /** Whether the previous upstream message was flagged moreToCome. */
  #lastMoreToCome = false;
  #closed = false;

  /** Records a forwarded request that expects a reply. */
  forwarded(requestID: number): void {
    this.#ids.push(requestID);
    this.#awaiting.set(requestID, (this.#awaiting.get(requestID) ?? 0) + 1);
    this.#forwarded++;
  }

  /**
   * Called with each upstream message's header fields as soon as they are read (see
   * boundary.ts). A message that follows one flagged moreToCome is the rest of a stream,
   * not an answer to a client request. A compressed reply's flag is unknown (it is inside
   * the compressed body) and taken as false: guessing a stream there (say, from
   * responseTo matching the previous requestID) could mistake a real answer for one and
   * hold a claimed command for good, where the old risk is only an early reply.
   */
  answered(responseTo: number, moreToCome?: boolean): void {
    const continuation = this.#lastMoreToCome;
    this.#lastMoreToCome = moreToCome === true;
    if (continuation || !this.#awaiting.has(responseTo)) return;
    for (;;) {
      const id = this.#ids[this.#head++] as number;
      const left = (this.#awaiting.get(id) as number) - 1;
      if (left === 0) this.#awaiting.delete(id);
      else this.#awaiting.set(id, left);
      this.#answered++;
      if (id === responseTo) break;
    }
    if (this.#head === this.#ids.length) {
      this.#ids = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#ids.length) {
      this.#ids = this.#ids.slice(this.#head);
      this.#head = 0;
    }
    while (this.#waiters.length > 0 && (this.#waiters[0] as { upTo: number }).upTo <= this.#answered) {
      (this.#waiters.shift() as { wake: () => void }).wake();
    }
  }

  /**
   * Resolves once every request forwarded until now is answered, or `undefined` when that
   * is already so (the common case, with no await). Released early by `close()`.
   */
  allAnswered(): Promise<void> | undefined {
    if (this.#answered === this.#forwarded || this.#closed) return undefined;
    const upTo = this.#forwarded;
    return new Promise((wake) => this.#waiters.push({ upTo, wake }));
  }

  /** The connection is closing, or mongod is gone: nothing will be answered any more; release every waiter, now and later. */
  close(): void {
    this.#closed = true;
    for (const waiter of this.#waiters.splice(0)) waiter.wake();
  }
}
