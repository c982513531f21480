/**
 * mongod to client: passes mongod's bytes on to the client as they arrive (no framing, no
 * copies) and splices the proxy's own replies in between two of mongod's messages,
 * never inside one. The boundary tracker (boundary.ts) says where messages end.
 *
 * Two things make it hold one of mongod's messages whole (a copy: mongod's reads land in
 * a reused buffer), each decided from the message's header alone, so that every other
 * message still passes in the reads it came in:
 * - `capture`: one reply is taken out of the stream, for a claimed command the
 *   interceptor forwarded so as to amend mongod's answer (currentOp);
 * - with `--advertise`, the replies to a handshake, whose addresses are rewritten
 *   (handshake_replies.ts). Only while a handshake awaits its answer is a reply's header
 *   looked at; otherwise nothing is done per reply.
 */
import { HEADER_SIZE } from '../wire/constants.js';
import type { MessageBoundaryTracker } from './boundary.js';
import type { HandshakeReplies } from './handshake_replies.js';

/** The reply being taken out of the stream. */
interface Capture {
  /** The forwarded request's id: its answer has this responseTo. */
  readonly requestID: number;
  readonly resolve: (reply: Buffer) => void;
  readonly reject: (err: Error) => void;
}

/** A message of mongod's being held whole, and why. */
interface Held {
  readonly purpose: 'capture' | 'handshake';
  /** Its messageLength (checked by the tracker as the bytes pass it). */
  readonly length: number;
  /** Copies, since mongod's reads land in a reused buffer. */
  readonly parts: Buffer[];
  gathered: number;
}

export class ReplySplicer {
  readonly #tracker: MessageBoundaryTracker;
  readonly #write: (bytes: Buffer) => void;
  /** With `--advertise`: which replies answer a handshake; undefined without. */
  readonly #handshakes: HandshakeReplies | undefined;
  /** Our replies waiting for the upstream message in flight to end. */
  #pending: Buffer[] = [];
  /** Woken when our pending replies are written and upstream is between messages. */
  #flushed: (() => void) | undefined;
  #capture: Capture | undefined;
  #held: Held | undefined;
  /** A header split across reads, gathered until it can be decided on (16 bytes at most). */
  #head: Buffer | undefined;
  #headBytes = 0;
  /** Whether the message whose header is being gathered follows one flagged moreToCome. */
  #headContinuation = false;
  #closed = false;

  /** `write` sends bytes to the client (and applies backpressure to mongod). */
  constructor(tracker: MessageBoundaryTracker, write: (bytes: Buffer) => void, handshakes?: HandshakeReplies) {
    this.#tracker = tracker;
    this.#write = write;
    this.#handshakes = handshakes;
  }

  /** Writes a reply of ours now if the upstream stream is between messages, else holds it. */
  inject(reply: Buffer): void {
    if (this.#pending.length === 0 && this.#tracker.atBoundary) this.#write(reply);
    else this.#pending.push(reply);
  }

  /**
   * Takes mongod's answer to request `requestID` out of the stream: it resolves with that
   * whole message, which the client does not see. Arm it before the request is written
   * upstream. Messages before it (the end of one in flight, the rest of an exhaust stream)
   * pass on as usual. Rejects when the connection closes first.
   */
  capture(requestID: number): Promise<Buffer> {
    if (this.#capture !== undefined) return Promise.reject(new Error('a reply is being captured already'));
    if (this.#closed) return Promise.reject(new Error('the connection is closed'));
    return new Promise<Buffer>((resolve, reject) => {
      this.#capture = { requestID, resolve, reject };
    });
  }

  /** Passes on one read from mongod, with any reply of ours that was waiting for its boundary. */
  push(chunk: Buffer): void {
    let rest = chunk;
    if (this.#sorting()) {
      rest = this.#pushSorting(chunk);
      if (rest.length === 0) {
        this.#wakeIfFlushed();
        return;
      }
    }
    if (this.#pending.length > 0) {
      // A reply of ours waits: pass on the message in flight, then slip it in.
      const cut = this.#tracker.advanceToBoundary(rest);
      if (cut > 0) this.#write(cut === rest.length ? rest : rest.subarray(0, cut));
      if (!this.#tracker.atBoundary) return;
      this.#writePending();
      rest = rest.subarray(cut);
    }
    if (rest.length > 0) {
      this.#tracker.push(rest);
      this.#write(rest);
    }
    this.#wakeIfFlushed();
  }

  /**
   * Resolves once our replies are written and mongod's stream is between messages (the
   * last answer's header may be in, not the rest of it); undefined when that is so now.
   * Released early by `close()`.
   */
  flushed(): Promise<void> | undefined {
    if (this.#pending.length === 0 && this.#tracker.atBoundary) return undefined;
    return new Promise<void>((wake) => (this.#flushed = wake));
  }

  /**
   * mongod's side is gone; the client's stays open for a claimed command still running.
   * Fails a capture (its answer will never come). Returns whether replies of ours can
   * still be written: not if mongod's stream ended inside a message, whose rest the
   * client would wait for.
   */
  upstreamEnded(): boolean {
    const capture = this.#capture;
    this.#capture = undefined;
    capture?.reject(new Error('mongod closed the connection before it answered'));
    return this.#pending.length === 0 && this.#tracker.atBoundary;
  }

  /** The connection is closing: drop what waits, release a waiter, fail a capture. */
  close(): void {
    this.#closed = true;
    this.#pending = [];
    this.#held = undefined;
    this.#headBytes = 0;
    this.#handshakes?.close();
    const capture = this.#capture;
    this.#capture = undefined;
    capture?.reject(new Error('the connection closed before mongod answered'));
    this.#wake();
  }

  /** Whether mongod's messages must be looked at one by one (a capture, or a handshake awaiting its answer). */
  #sorting(): boolean {
    return this.#capture !== undefined || this.#held !== undefined || this.#headBytes > 0 || this.#handshakes?.armed === true;
  }

  /**
   * Follows `chunk` message by message while `#sorting()`: decides each message from its
   * header, holds whole the ones to capture or rewrite, and passes the others on as
   * views of the chunk (a message already in flight included). Returns what is left of
   * the chunk once nothing needs sorting any more (empty if nothing is left).
   */
  #pushSorting(chunk: Buffer): Buffer {
    let at = 0;
    while (at < chunk.length && this.#sorting()) {
      const held = this.#held;
      if (held !== undefined) {
        const part = chunk.subarray(at, at + Math.min(held.length - held.gathered, chunk.length - at));
        // The tracker follows these bytes too: it refuses a bad length, and tells
        // ForwardedRequests which request the message answers.
        this.#tracker.push(part);
        held.parts.push(Buffer.from(part));
        held.gathered += part.length;
        at += part.length;
        if (held.gathered === held.length) this.#release(held);
      } else if (this.#headBytes === 0 && !this.#tracker.atBoundary) {
        // The rest of a message being passed on (or in flight before sorting began).
        const cut = this.#tracker.advanceToBoundary(chunk, at);
        this.#write(chunk.subarray(at, cut));
        at = cut;
        if (this.#tracker.atBoundary) this.#writePending();
      } else if (this.#headBytes === 0 && chunk.length - at >= HEADER_SIZE) {
        // The common case: the whole header is in this read.
        const length = chunk.readInt32LE(at);
        const purpose = this.#holds(chunk.readInt32LE(at + 8), this.#tracker.lastMoreToCome);
        const part = chunk.subarray(at, at + Math.min(chunk.length - at, Math.max(length, HEADER_SIZE)));
        // The tracker refuses a bad length here, before anything is held or passed.
        this.#tracker.push(part);
        at += part.length;
        if (purpose === undefined) {
          this.#write(part);
          if (this.#tracker.atBoundary) this.#writePending();
          continue;
        }
        const kept: Held = { purpose, length, parts: [Buffer.from(part)], gathered: part.length };
        this.#held = kept;
        if (kept.gathered === length) this.#release(kept);
      } else {
        at = this.#gatherHead(chunk, at);
      }
    }
    return chunk.subarray(at);
  }

  /** Gathers a header split across reads (a copy of at most 16 bytes); decides on it once whole. */
  #gatherHead(chunk: Buffer, at: number): number {
    if (this.#headBytes === 0) this.#headContinuation = this.#tracker.lastMoreToCome;
    this.#head ??= Buffer.alloc(HEADER_SIZE);
    const n = Math.min(HEADER_SIZE - this.#headBytes, chunk.length - at);
    const part = chunk.subarray(at, at + n);
    this.#tracker.push(part);
    part.copy(this.#head, this.#headBytes);
    this.#headBytes += n;
    if (this.#headBytes < HEADER_SIZE) return at + n;
    this.#headBytes = 0;
    const head = Buffer.from(this.#head);
    const length = head.readInt32LE(0);
    const purpose = this.#holds(head.readInt32LE(8), this.#headContinuation);
    if (purpose === undefined) {
      this.#write(head);
      if (this.#tracker.atBoundary) this.#writePending();
      return at + n;
    }
    const held: Held = { purpose, length, parts: [head], gathered: HEADER_SIZE };
    this.#held = held;
    if (held.gathered === length) this.#release(held);
    return at + n;
  }

  /** Whether a message, from its header, is held whole: the awaited capture, a handshake's answer, or neither. */
  #holds(responseTo: number, continuation: boolean): Held['purpose'] | undefined {
    const capture = this.#capture;
    if (capture !== undefined && !continuation && responseTo === capture.requestID) return 'capture';
    if (this.#handshakes?.armed === true && this.#handshakes.answers(responseTo, continuation)) return 'handshake';
    return undefined;
  }

  /** A held message is whole: the capture's answer, or a handshake reply to rewrite and pass on. */
  #release(held: Held): void {
    this.#held = undefined;
    const message = held.parts.length === 1 ? (held.parts[0] as Buffer) : Buffer.concat(held.parts, held.length);
    const capture = this.#capture;
    if (held.purpose === 'capture' && capture !== undefined) {
      this.#capture = undefined;
      capture.resolve(message);
    } else {
      this.#write(held.purpose === 'handshake' && this.#handshakes !== undefined ? this.#handshakes.rewrite(message) : message);
    }
    this.#writePending();
  }

  /** Our replies that waited for a boundary; call only at one. */
  #writePending(): void {
    for (const reply of this.#pending) this.#write(reply);
    this.#pending = [];
  }

  #wakeIfFlushed(): void {
    if (this.#flushed !== undefined && this.#pending.length === 0 && this.#tracker.atBoundary) this.#wake();
  }

  #wake(): void {
    const wake = this.#flushed;
    this.#flushed = undefined;
    wake?.();
  }
}
