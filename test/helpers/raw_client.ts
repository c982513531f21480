/** A raw wire-protocol client and reply decoding, for tests that need exact bytes, not a driver. */
import net from 'node:net';
import { once } from 'node:events';
import { deserialize } from 'bson';
import type { Document } from '../../src/wire/command_message.js';
import { encodeDocument } from '../../src/wire/command_message.js';
import { MessageFramer } from '../../src/wire/framing.js';
import { OpCode } from '../../src/wire/constants.js';
import { encodeOpMsg, decodeOpMsg, opMsgBody } from '../../src/wire/op_msg.js';
import { decodeOpCompressed } from '../../src/wire/compression.js';
import { decodeOpReply } from '../../src/wire/op_reply.js';
import { readHeader } from '../../src/wire/header.js';

let nextRequestID = 1000;

/** An OP_MSG request with `command` as its body. */
export function opMsg(command: Document, options: { flags?: number; checksum?: boolean; requestID?: number } = {}): Buffer {
  return encodeOpMsg(
    { requestID: options.requestID ?? nextRequestID++, responseTo: 0, flags: options.flags ?? 0, sections: [{ kind: 0, body: encodeDocument(command) }] },
    { checksum: options.checksum === true },
  );
}

export interface DecodedReply {
  /** The opcode on the wire (2012 when compressed). */
  wireOpCode: number;
  /** The opcode inside (the same unless compressed). */
  opCode: number;
  compressorId: number | undefined;
  requestID: number;
  responseTo: number;
  flags: number;
  doc: Document;
}

/** Plain JS values (numbers, not Int32 wrappers), for deepEqual. */
function plain(bytes: Buffer): Document {
  return deserialize(bytes) as Document;
}

/** Decodes a reply frame, checking its checksum (decodeOpMsg verifies one when present). */
export function decodeReply(frame: Buffer): DecodedReply {
  const wire = readHeader(frame);
  let message = frame;
  let compressorId: number | undefined;
  if (wire.opCode === OpCode.Compressed) {
    compressorId = frame.readUInt8(24);
    message = decodeOpCompressed(frame);
  }
  const header = readHeader(message);
  if (header.opCode === OpCode.Msg) {
    const msg = decodeOpMsg(message);
    return { wireOpCode: wire.opCode, opCode: header.opCode, compressorId, requestID: header.requestID, responseTo: header.responseTo, flags: msg.flags, doc: plain(opMsgBody(msg)) };
  }
  const reply = decodeOpReply(message);
  const first = reply.documents[0];
  if (first === undefined) throw new Error('OP_REPLY without documents');
  return { wireOpCode: wire.opCode, opCode: header.opCode, compressorId, requestID: header.requestID, responseTo: header.responseTo, flags: reply.responseFlags, doc: plain(first) };
}

/** A client that speaks raw bytes and frames everything it receives. */
export class RawClient {
  readonly socket: net.Socket;
  readonly frames: Buffer[] = [];
  /** Every chunk as received, to check what arrived when. */
  receivedBytes = 0;
  readonly closed: Promise<void>;
  readonly #framer = new MessageFramer();
  #waiters: Array<() => void> = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.receivedBytes += chunk.length;
      this.frames.push(...this.#framer.push(chunk));
      for (const wake of this.#waiters.splice(0)) wake();
    });
    socket.on('error', () => undefined);
    this.closed = once(socket, 'close').then(() => undefined);
    void this.closed.then(() => {
      for (const wake of this.#waiters.splice(0)) wake();
    });
  }

  static async connect(port: number): Promise<RawClient> {
    const socket = net.connect(port, '127.0.0.1');
    await once(socket, 'connect');
    return new RawClient(socket);
  }

  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /**
   * Waits until `count` frames have arrived in total; rejects if the socket closes first.
   * No deadline: the suite's per-test timeout catches a reply that never comes.
   */
  async waitForFrames(count: number): Promise<Buffer[]> {
    while (this.frames.length < count) {
      if (this.socket.destroyed) throw new Error(`socket closed after ${this.frames.length} of ${count} frames`);
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
    return this.frames.slice(0, count);
  }

  /** Sends one command and returns the next frame that answers it. */
  async command(bytes: Buffer): Promise<DecodedReply> {
    const requestID = readHeader(bytes).requestID;
    this.send(bytes);
    for (let seen = 0; ; seen++) {
      const frames = await this.waitForFrames(seen + 1);
      const reply = decodeReply(frames[seen] as Buffer);
      if (reply.responseTo === requestID) return reply;
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

