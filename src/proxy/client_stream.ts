/**
 * Follows the client's byte stream message by message and passes each message's bytes
 * upstream as they arrive, once its first bytes have said it may be (client_message.ts,
 * `decideHead`): a 1 MB insert crosses in the reads it came in, and is never gathered.
 * Only the messages that must be read whole (claimed commands, handshakes, OP_COMPRESSED,
 * and whatever arrives while a claimed command holds the connection) are assembled, and
 * only those, once their last byte is in.
 *
 * Copies: none for the bytes streamed through. Bytes of the streamed messages in one
 * read are passed on in one write (pipelined requests cost one write, not one each).
 * A message held whole is copied once, and only if it spans reads. A head split across
 * reads (its first bytes at the end of one read) is gathered into a small buffer: at
 * most HEAD_LIMIT bytes, and only until it is decided.
 *
 * Order is kept by construction: every byte is handed to the sink in stream order, and a
 * message held whole is handed over only after everything streamed before it.
 */
import type { CommandError } from '../errors.js';
import { messageLengthError } from '../wire/framing.js';
import { HEAD_LIMIT, Head, decideHead, type HeadDecision, type HoldsWhole } from './client_message.js';
import { headExpectsReply } from './reply_order.js';

/** Where the framer hands what it reads. Each call may stop the framer (return false). */
export interface ClientStreamSink {
  /** Whether the message starting now must be held whole whatever it is (a claimed command is running). */
  holding(): boolean;
  /** Bytes to write upstream as they are, in stream order. */
  pass(bytes: Buffer): boolean;
  /**
   * A streamed message's last byte is in what was passed (or is about to be, in the same
   * read). `expectsReply` is known only when the framer reads commands (see `holds`).
   */
  passed(requestID: number, expectsReply: boolean): void;
  /** A message held until whole, as one Buffer. */
  whole(frame: Buffer): boolean;
  /** An impossible messageLength: the stream cannot be followed past it; nothing more is read. */
  badLength(error: CommandError): void;
}

/** Between messages, or gathering the first bytes of one until it is decided. */
const HEAD = 0;
/** Passing a message's bytes through; #remaining are still to come. */
const STREAM = 1;
/** Gathering a message until it is whole. */
const WHOLE = 2;

export class ClientStreamFramer {
  readonly #sink: ClientStreamSink;
  readonly #maxMessageSize: number;
  /** Which commands are read whole; undefined: none (a plain pipe; nothing is peeked). */
  readonly #holds: HoldsWhole | undefined;
  #mode: typeof HEAD | typeof STREAM | typeof WHOLE = HEAD;
  /** messageLength of the current message (STREAM, WHOLE, and HEAD once 4 bytes are in). */
  #length = 0;
  /** STREAM: bytes of the current message still to pass. */
  #remaining = 0;
  #requestID = 0;
  #expectsReply = false;
  /** WHOLE: the message's bytes so far, as views of the reads they came in. */
  #held: Buffer[] = [];
  #heldBytes = 0;
  /** HEAD: a head split across reads, gathered here (handed on with the message, then replaced). */
  #probe: Buffer | undefined;
  #probeLength = 0;
  #failed = false;

  constructor(options: { sink: ClientStreamSink; maxMessageSize: number; holds: HoldsWhole | undefined }) {
    this.#sink = options.sink;
    this.#maxMessageSize = options.maxMessageSize;
    this.#holds = options.holds;
  }

  /**
   * Whether the client is in the middle of a message: some of its bytes are in, not all.
   * Between messages (an idle pooled connection) this is false.
   */
  get midMessage(): boolean {
    return this.#mode !== HEAD || this.#probeLength > 0;
  }

  /** Follows one read from the client. */
  push(chunk: Buffer): void {
    if (this.#failed) return;
    const end = chunk.length;
    let at = 0;
    /** Start of the bytes of streamed messages in this read not yet passed on; -1: none. */
    let run = -1;
    const flush = (upTo: number): boolean => {
      if (run < 0) return true;
      const bytes = run === 0 && upTo === end ? chunk : chunk.subarray(run, upTo);
      run = -1;
      return this.#sink.pass(bytes);
    };
    while (at < end) {
      if (this.#mode === STREAM) {
        const n = Math.min(this.#remaining, end - at);
        if (run < 0) run = at;
        at += n;
        this.#remaining -= n;
        if (this.#remaining === 0) this.#endStreamed();
      } else if (this.#mode === WHOLE) {
        const n = Math.min(this.#length - this.#heldBytes, end - at);
        this.#held.push(chunk.subarray(at, at + n));
        this.#heldBytes += n;
        at += n;
        if (this.#heldBytes === this.#length && !this.#sink.whole(this.#takeWhole())) return;
      } else if (this.#probeLength === 0 && end - at >= 4) {
        // The common case: the head is in this read; decide on it in place.
        const length = chunk.readInt32LE(at);
        const error = this.#lengthError(length);
        if (error !== undefined) {
          if (flush(at)) this.#sink.badLength(error);
          return;
        }
        this.#length = length;
        const decision = this.#decide(chunk, at, at + Math.min(end - at, length));
        if (decision === Head.Stream) {
          this.#startStream(chunk, at);
        } else {
          // Whole, or More: then the rest of this read is all head (decideHead asks for
          // more only short of HEAD_LIMIT bytes and of the message's end).
          if (!flush(at)) return;
          if (decision === Head.Whole) {
            this.#startWhole();
          } else {
            this.#gather(chunk, at, end - at);
            at = end;
          }
        }
      } else {
        // A head split across reads: gather it, 4 bytes (the length) first, then up to
        // the message's end or HEAD_LIMIT, and decide on the gathered bytes.
        if (!flush(at)) return;
        const hadLength = this.#probeLength >= 4;
        const want = hadLength ? Math.min(this.#length, HEAD_LIMIT) - this.#probeLength : 4 - this.#probeLength;
        const n = Math.min(want, end - at);
        this.#gather(chunk, at, n);
        at += n;
        if (this.#probeLength < 4) continue;
        const probe = this.#probe as Buffer;
        if (!hadLength) {
          const length = probe.readInt32LE(0);
          const error = this.#lengthError(length);
          if (error !== undefined) return this.#sink.badLength(error);
          this.#length = length;
          continue;
        }
        const decision = this.#decide(probe, 0, this.#probeLength);
        if (decision === Head.More) continue;
        // What is gathered is handed on as it is: the probe is not reused.
        const head = probe.subarray(0, this.#probeLength);
        this.#probe = undefined;
        this.#probeLength = 0;
        if (decision === Head.Stream) {
          this.#startStream(head, 0);
          this.#remaining -= head.length;
          if (!this.#sink.pass(head)) return;
          if (this.#remaining === 0) this.#endStreamed();
        } else {
          this.#startWhole();
          this.#held.push(head);
          this.#heldBytes = head.length;
          if (this.#heldBytes === this.#length && !this.#sink.whole(this.#takeWhole())) return;
        }
      }
    }
    flush(end);
  }

  /** decideHead for the current message, unless nothing is peeked or everything is held. */
  #decide(bytes: Buffer, start: number, end: number): HeadDecision {
    if (this.#holds === undefined) return Head.Stream;
    if (this.#sink.holding()) return Head.Whole;
    return decideHead(bytes, start, end, this.#length, this.#holds);
  }

  /** The error for an impossible messageLength, which ends the stream; undefined when it is fine. */
  #lengthError(length: number): CommandError | undefined {
    const error = messageLengthError(length, this.#maxMessageSize);
    if (error !== undefined) this.#failed = true;
    return error;
  }

  #startStream(head: Buffer, start: number): void {
    this.#mode = STREAM;
    this.#remaining = this.#length;
    if (this.#holds === undefined) return;
    this.#requestID = head.readInt32LE(start + 4);
    this.#expectsReply = headExpectsReply(head, start, this.#length);
  }

  #endStreamed(): void {
    this.#mode = HEAD;
    this.#sink.passed(this.#requestID, this.#expectsReply);
  }

  #startWhole(): void {
    this.#mode = WHOLE;
    this.#held = [];
    this.#heldBytes = 0;
  }

  /** The held message as one Buffer: a view of the read it came in if it came in one. */
  #takeWhole(): Buffer {
    const held = this.#held;
    this.#held = [];
    this.#mode = HEAD;
    return held.length === 1 ? (held[0] as Buffer) : Buffer.concat(held, this.#length);
  }

  #gather(chunk: Buffer, at: number, n: number): void {
    this.#probe ??= Buffer.allocUnsafe(HEAD_LIMIT);
    chunk.copy(this.#probe, this.#probeLength, at, at + n);
    this.#probeLength += n;
  }
}
