/**
 * What the proxy does with one message from a client, decided in two steps.
 *
 * 1. From the message's first bytes (`decideHead`): stream it through untouched, or hold
 *    it until it is whole. Only the opcode and the command's name are read, so almost
 *    every message is decided from its first few dozen bytes and its body is never
 *    gathered. Held whole: a command the interceptor claims, a handshake (it may offer
 *    compressors to strip), and what the name cannot be read from cheaply: OP_COMPRESSED
 *    (the name is inside the compressed body), legacy OP_QUERY (mongod takes it only
 *    for handshakes), and an OP_MSG whose first section is a document sequence.
 * 2. For a message held whole (`inspectClientMessage`): the full peek (name and `$db`,
 *    decompressing if need be), then forward it untouched, forward a handshake rewritten
 *    (hello_compressors.ts), claim it for the interceptor, or refuse it and close the
 *    connection once what came before is answered.
 */
import type { Logger } from 'pino';
import { HEADER_SIZE, OpCode } from '../wire/constants.js';
import { peekRequest, type PeekedCommand } from '../wire/peek.js';
import { isHandshakeCommand, stripUnreadableCompressors } from './hello_compressors.js';
import type { Interceptor } from './interceptor.js';
import { logStrippedSpeculativeX509, withoutSpeculativeX509 } from './x509_refusal.js';

/** What to do with a message, from its first bytes. */
export const Head = Object.freeze({ More: 0, Stream: 1, Whole: 2 } as const);
export type HeadDecision = (typeof Head)[keyof typeof Head];

/**
 * A head this long that still has not shown the command's name is held whole, and the
 * full peek judges it: the name can be no claimed command's, but gathering it byte by
 * byte must stay bounded.
 */
export const HEAD_LIMIT = 1024;

/** An OP_MSG's first section: its kind byte after the header and flagBits. */
const SECTION_KIND_AT = HEADER_SIZE + 4;
/** A kind-0 section's body: the kind byte, then the document (int32 size, first type byte). */
const FIRST_TYPE_AT = SECTION_KIND_AT + 1 + 4;

/**
 * Decides from `bytes[start, end)`, the first bytes of one message of `messageLength`
 * bytes (`end - start` at most that), whether it can be streamed through (mongod gets
 * it untouched) or must be held whole. `More` asks for more bytes. `holds(name, type)`
 * says whether a command of that name, whose first value has that BSON type, is read
 * whole (claimed, or a handshake): the type byte comes before the name, so it costs no
 * more bytes, and it tells `{aggregate: 1}` from `{aggregate: "coll"}`. A message too
 * short or malformed to name a command is streamed: it cannot be one of ours, and
 * mongod answers it as it would any client.
 */
export function decideHead(bytes: Buffer, start: number, end: number, messageLength: number, holds: HoldsWhole): HeadDecision {
  const have = end - start;
  const short = have === messageLength ? Head.Stream : Head.More;
  if (have < HEADER_SIZE) return short;
  const opCode = bytes.readInt32LE(start + 12);
  if (opCode === OpCode.Compressed || opCode === OpCode.Query) return Head.Whole;
  if (opCode !== OpCode.Msg) return Head.Stream;
  if (have <= SECTION_KIND_AT) return short;
  const kind = bytes[start + SECTION_KIND_AT];
  // A document sequence before the body is legal but no driver sends one: the full peek
  // skips it, which needs the whole section.
  if (kind === 1) return Head.Whole;
  if (kind !== 0) return Head.Stream;
  if (have <= FIRST_TYPE_AT) return short;
  // An empty body (its terminating NUL where the first type byte would be) names nothing.
  const argumentType = bytes[start + FIRST_TYPE_AT] as number;
  if (argumentType === 0) return Head.Stream;
  const nameAt = start + FIRST_TYPE_AT + 1;
  // The name must end within HEAD_LIMIT bytes of the message, however the reads fall.
  const limit = Math.min(end, start + HEAD_LIMIT);
  const nul = bytes.indexOf(0, nameAt);
  if (nul !== -1 && nul < limit) return holds(bytes.toString('utf8', nameAt, nul), argumentType) ? Head.Whole : Head.Stream;
  if (have >= HEAD_LIMIT) return Head.Whole;
  return have === messageLength ? Head.Stream : Head.More;
}

/** Whether a command is read whole, from its name and the BSON type byte of its first value. */
export type HoldsWhole = (name: string, argumentType: number) => boolean;

/** `holds` for decideHead: the commands read whole are the interceptor's and the handshakes. */
export function holdsWhole(interceptor: Interceptor): HoldsWhole {
  return (name, argumentType) => interceptor.intercepts(name, argumentType) || isHandshakeCommand(name);
}

export interface QueuedFrame {
  kind: 'frame';
  frame: Buffer;
  /** What the peek found, if it ran and found a command. */
  peeked: PeekedCommand | undefined;
  /** The peek's decompressed message body, if it came compressed: decoded, never inflated twice. */
  decompressed: Buffer | undefined;
  claimed: boolean;
  /**
   * The client's authGeneration when this frame arrived (set by the connection): what a
   * claimed command learns of the client's privileges holds for that generation only,
   * not for one raised later by an authentication command queued behind it.
   */
  authGeneration?: number;
}

/**
 * The end of what the client will be served: a message we refuse (it could be one of
 * ours, so mongod must not see it unread) or the client's FIN. mongod would answer every
 * request before it first, so the connection closes only once those are answered.
 */
export interface QueuedClose {
  kind: 'close';
  reason: string;
  /** Set for a refusal (logged at warn); undefined for the client's own FIN. */
  err: unknown;
}

export type Queued = QueuedFrame | QueuedClose;

/**
 * Decides what to do with one client message held whole: claim it, forward it (possibly
 * with a rewritten handshake, see hello_compressors.ts and, with `refuseX509`,
 * x509_refusal.ts), or refuse it. Peeks only when there is an interceptor: without one
 * the proxy is a plain pipe.
 */
export function inspectClientMessage(frame: Buffer, interceptor: Interceptor | undefined, log: Logger, refuseX509 = false): Queued {
  const plain = { kind: 'frame', frame, peeked: undefined, decompressed: undefined, claimed: false } as const;
  if (interceptor === undefined) return plain;
  const peek = peekRequest(frame);
  if (peek.kind === 'undecodable') {
    // It could be one of ours, so it must not reach mongod unread. mongod itself ends
    // the session when it cannot decompress a message (service_state_machine.cpp:
    // uassertStatusOK on decompressMessage, then "Terminating session due to error"),
    // which it reaches only after answering everything sent before it.
    return { kind: 'close', reason: 'undecodable compressed message from client', err: peek.error };
  }
  if (peek.kind === 'unknown') return plain;
  const { command: peeked, decompressed } = peek;
  if (interceptor.intercepts(peeked.commandName, peeked.argumentType)) return { kind: 'frame', frame, peeked, decompressed, claimed: true };
  let forwarded = frame;
  if (refuseX509) {
    const withoutX509 = withoutSpeculativeX509(frame, peeked, decompressed);
    if (withoutX509 === 'refuse') return { kind: 'close', reason: 'undecodable handshake naming MONGODB-X509', err: new Error('cannot take MONGODB-X509 out of it') };
    if (withoutX509 !== undefined) {
      logStrippedSpeculativeX509(log);
      forwarded = withoutX509;
    }
  }
  const stripped = stripUnreadableCompressors(forwarded, peeked);
  if (stripped === undefined) return { ...plain, frame: forwarded, peeked };
  log.info({ removed: stripped.removed }, 'handshake: removed compressors the proxy cannot read');
  return { ...plain, frame: stripped.frame, peeked };
}
