/**
 * Which of mongod's replies on one connection answer a handshake, for `--advertise`
 * (advertised_hello.ts): decided from each reply's header alone, so that a reply which
 * answers anything else is passed on in the reads it came in, never held or decoded.
 *
 * A reply answers a handshake when its `responseTo` is the requestID of a `hello` or
 * `isMaster` the client sent (a driver has at most one in flight per connection), or
 * when it follows, on an exhaust stream, a handshake reply flagged moreToCome: the
 * awaitable hello a driver's monitor keeps open answers with one reply per topology
 * change, each answering the previous reply (responseTo = that reply's requestID), and
 * never again the client's request.
 */
import type { Logger } from 'pino';
import { advertiseInReply } from './advertised_hello.js';

/** Handshakes awaiting their answer, at most: a driver sends one at a time; the rest would be a client's odd pipelining. */
const MAX_PENDING = 64;

export class HandshakeReplies {
  readonly #advertised: string;
  readonly #log: Logger;
  /** requestIDs of the client's handshakes not answered yet, oldest first. */
  #pending: number[] = [];
  /** The requestID of the last reply, when it was a handshake reply flagged moreToCome. */
  #streamFrom: number | undefined;

  constructor(advertised: string, log: Logger) {
    this.#advertised = advertised;
    this.#log = log;
  }

  /**
   * Whether any reply may answer a handshake: false on almost every connection almost
   * all the time, and then the splicer does nothing per reply.
   */
  get armed(): boolean {
    return this.#pending.length > 0 || this.#streamFrom !== undefined;
  }

  /** A handshake that expects a reply is about to be written upstream. */
  requested(requestID: number): void {
    if (this.#pending.length === MAX_PENDING) this.#pending.shift();
    this.#pending.push(requestID);
  }

  /**
   * Decides, from one upstream message's header, whether it answers a handshake (then
   * the splicer holds it whole and hands it to `rewrite`). Called for each message in
   * turn while armed. `continuation`: the message before it was flagged moreToCome (an
   * OP_MSG's flag, boundary.ts), so this one answers mongod's own previous message, not
   * a client request, even if the numbers coincide.
   */
  answers(responseTo: number, continuation: boolean): boolean {
    const streamFrom = this.#streamFrom;
    this.#streamFrom = undefined;
    if (streamFrom !== undefined) return responseTo === streamFrom;
    if (continuation) return false;
    const at = this.#pending.indexOf(responseTo);
    if (at === -1) return false;
    // mongod answers in order: handshakes sent before this one are answered already.
    this.#pending.splice(0, at + 1);
    return true;
  }

  /** Rewrites a whole handshake reply (see advertised_hello.ts); returns what to pass on. */
  rewrite(message: Buffer): Buffer {
    const reply = advertiseInReply(message, this.#advertised);
    if (reply.moreToCome) this.#streamFrom = message.readInt32LE(4);
    if (reply.rewritten) this.#log.trace({ advertised: this.#advertised }, 'handshake reply: addresses advertised');
    return reply.frame;
  }

  /** The connection is closing. */
  close(): void {
    this.#pending = [];
    this.#streamFrom = undefined;
  }
}
