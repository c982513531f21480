/**
 * Drops a client that stops sending in the middle of a message: half a header, or a
 * body that stalls. A connection idle *between* messages is never timed out: a driver's
 * pooled connection may sit idle for minutes, and mongod never closes one for it.
 *
 * mongod itself has no such timeout: an ingress session reads the 16-byte header, then
 * allocates the whole messageLength and reads the body, with no deadline on either read
 * (src/mongo/transport/asio/asio_session_impl.cpp, `sourceMessageImpl`; socket timeouts
 * apply to synchronous egress sessions only, see `ensureAsync`). The proxy adds one
 * because a stalled client costs it a socket and an upstream connection: an inactivity
 * timeout as the driver's `socketTimeoutMS` is one, restarted by every byte, so a slow
 * but live client (a large insert over a poor link) is never cut.
 *
 * It is Node's own socket timeout (`socket.setTimeout`), which Node already restarts on
 * each read and write: nothing is added per message. When it fires between messages, or
 * while the proxy itself has stopped reading the client (backpressure), it is ignored;
 * the next read, or `rearm()` when the proxy reads again, starts it anew.
 */
import type net from 'node:net';

export class PartialMessageTimeout {
  readonly #socket: net.Socket;
  readonly #timeoutMS: number;

  /**
   * `stalled()` says whether the client is the one holding things up: in the middle of a
   * message, and read by the proxy. `onStall` closes the connection.
   */
  constructor(socket: net.Socket, timeoutMS: number, stalled: () => boolean, onStall: (timeoutMS: number) => void) {
    this.#socket = socket;
    this.#timeoutMS = timeoutMS;
    socket.setTimeout(timeoutMS, () => {
      if (stalled()) onStall(timeoutMS);
    });
  }

  /** The proxy reads the client again: the client's time starts now, not at its last byte. */
  rearm(): void {
    this.#socket.setTimeout(this.#timeoutMS);
  }
}
