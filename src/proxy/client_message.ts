/**
 * What the proxy does with one message from a client, decided from a cheap peek:
 * forward it untouched, forward a handshake rewritten (handshake.ts), claim it for the
 * interceptor, or refuse it and close the connection once what came before is answered.
 */
import type { Logger } from 'pino';
import { peekRequest, type PeekedCommand } from '../wire/peek.js';
import { stripUnreadableCompressors } from './hello_compressors.js';
import type { Interceptor } from './interceptor.js';

export interface QueuedFrame {
  kind: 'frame';
  frame: Buffer;
  /** What the peek found, if it ran and found a command. */
  peeked: PeekedCommand | undefined;
  /** The peek's decompressed message body, if it came compressed: decoded, never inflated twice. */
  decompressed: Buffer | undefined;
  claimed: boolean;
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
 * Decides what to do with one client message: claim it, forward it (possibly with a
 * rewritten handshake, see handshake.ts), or refuse it. Peeks only when there is an
 * interceptor: without one the proxy is a plain pipe.
 */
export function inspectClientMessage(frame: Buffer, interceptor: Interceptor | undefined, log: Logger): Queued {
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
  if (interceptor.intercepts(peeked.commandName)) return { kind: 'frame', frame, peeked, decompressed, claimed: true };
  const stripped = stripUnreadableCompressors(frame, peeked);
  if (stripped === undefined) return { ...plain, peeked };
  log.info({ removed: stripped.removed }, 'handshake: removed compressors the proxy cannot read');
  return { ...plain, frame: stripped.frame, peeked };
}
