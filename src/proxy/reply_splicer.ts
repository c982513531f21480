/**
 * mongod to client: passes mongod's bytes on to the client as they arrive (no framing, no
 * copies) and splices the proxy's own replies in between two of mongod's messages,
 * never inside one. The boundary tracker (boundary.ts) says where messages end.
 *
 * It can also take one reply of mongod's out of the stream (`capture`), for a claimed
 * command the interceptor forwarded so as to amend mongod's answer (currentOp). Only
 * then, and only until that reply is in, are mongod's messages gathered whole: each
 * must be looked at before it is passed on or kept.
 */
import type { MessageBoundaryTracker } from './boundary.js';

/** The reply being taken out of the stream, and the message being gathered meanwhile. */
interface Capture {
  /** The forwarded request's id: its answer has this responseTo. */
  readonly requestID: number;
  readonly resolve: (reply: Buffer) => void;
  readonly reject: (err: Error) => void;
  /** The message being gathered: copies, since mongod's reads land in a reused buffer. */
  parts: Buffer[];
  gathered: number;
  /** Its messageLength, once its first 4 bytes are in. */
  length: number | undefined;
  /** Whether it follows a message flagged moreToCome (then it answers no request). */
  continuation: boolean;
}

export class ReplySplicer {
  readonly #tracker: MessageBoundaryTracker;
  readonly #write: (bytes: Buffer) => void;
  /** Our replies waiting for the upstream message in flight to end. */
  #pending: Buffer[] = [];
  /** Woken when our pending replies are written and upstream is between messages. */
  #flushed: (() => void) | undefined;
  #capture: Capture | undefined;
  #closed = false;

  /** `write` sends bytes to the client (and applies backpressure to mongod). */
  constructor(tracker: MessageBoundaryTracker, write: (bytes: Buffer) => void) {
    this.#tracker = tracker;
    this.#write = write;
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
      this.#capture = { requestID, resolve, reject, parts: [], gathered: 0, length: undefined, continuation: false };
    });
  }

  /** Passes on one read from mongod, with any reply of ours that was waiting for its boundary. */
  push(chunk: Buffer): void {
    let rest = chunk;
    if (this.#capture !== undefined) {
      rest = this.#pushCapturing(chunk);
      if (rest.length === 0) return;
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
    const capture = this.#capture;
    this.#capture = undefined;
    capture?.reject(new Error('the connection closed before mongod answered'));
    this.#wake();
  }

  /**
   * Follows `chunk` while a capture is armed: lets a message already in flight pass, then
   * gathers each message whole, passing on those that are not the awaited answer. Returns
   * what is left of the chunk once the answer is taken (empty if it is not in yet).
   */
  #pushCapturing(chunk: Buffer): Buffer {
    let at = 0;
    for (let capture = this.#capture; capture !== undefined && at < chunk.length; capture = this.#capture) {
      if (capture.gathered === 0 && !this.#tracker.atBoundary) {
        // The end of a message that began before the capture: it is not the answer.
        const cut = this.#tracker.advanceToBoundary(chunk, at);
        this.#write(chunk.subarray(at, cut));
        at = cut;
        if (this.#tracker.atBoundary) this.#writePending();
        continue;
      }
      if (capture.gathered === 0) capture.continuation = this.#tracker.lastMoreToCome;
      const wanted = (capture.length ?? 4) - capture.gathered;
      const part = chunk.subarray(at, at + Math.min(wanted, chunk.length - at));
      // The tracker follows these bytes too: it refuses a bad length, and tells
      // ForwardedRequests which request the message answers.
      this.#tracker.push(part);
      capture.parts.push(Buffer.from(part));
      capture.gathered += part.length;
      at += part.length;
      if (capture.length === undefined && capture.gathered === 4) {
        capture.length = Buffer.concat(capture.parts).readInt32LE(0);
        continue;
      }
      if (capture.gathered !== capture.length) continue;
      const message = Buffer.concat(capture.parts);
      capture.parts = [];
      capture.gathered = 0;
      capture.length = undefined;
      if (!capture.continuation && message.readInt32LE(8) === capture.requestID) {
        this.#capture = undefined;
        capture.resolve(message);
      } else {
        this.#write(message);
      }
      this.#writePending();
    }
    this.#wakeIfFlushed();
    return chunk.subarray(at);
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
