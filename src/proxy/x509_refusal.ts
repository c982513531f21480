/**
 * MONGODB-X509 is refused when the proxy's forwarding sockets carry a client certificate.
 *
 * mongod takes the identity of an X.509 authentication from the certificate the TLS
 * peer presented (src/mongo/db/commands/authentication_commands.cpp, `_authenticateX509`:
 * the user is the peer certificate's subject). When the upstream URI has
 * `tlsCertificateKeyFile`, every client's own connection to mongod presents the proxy's
 * certificate, so any client could log in as the proxy's own x.509 user by asking for
 * MONGODB-X509. The proxy therefore answers that request itself, as mongod answers a
 * failed one, and never forwards it: an `authenticate` command with that mechanism, or a
 * handshake's `speculativeAuthenticate` (hello_auth.cpp: a `{authenticate: 1, mechanism:
 * 'MONGODB-X509'}` inside hello runs as that command). The latter is taken out of the
 * forwarded hello: the driver, seeing no `speculativeAuthenticate` in the reply, sends an
 * explicit `authenticate` (mongodb's cmap/auth/x509.ts, `auth`), which is refused.
 */
import type tls from 'node:tls';
import type { Logger } from 'pino';
import { ErrorCodes } from '../errors.js';
import type { Document } from '../wire/command_message.js';
import { decodeOpCompressed } from '../wire/compression.js';
import type { PeekedCommand } from '../wire/peek.js';
import { editHandshake, isHandshakeCommand } from './hello_compressors.js';
import { FORWARD, type Interceptor } from './interceptor.js';

export const X509_MECHANISM = 'MONGODB-X509';

const AUTHENTICATE = 'authenticate';

/** Why, for the log: the client must not take the proxy's identity. */
const REFUSED_BECAUSE = "the proxy's own client certificate (the upstream URI's tlsCertificateKeyFile) would be taken as the client's identity";

/** Whether sockets opened with these options present a client certificate to mongod. */
export function presentsClientCertificate(options: tls.ConnectionOptions | undefined): boolean {
  return options !== undefined && (options.cert !== undefined || options.pfx !== undefined);
}

/** Logged once at start when the forwarding sockets present a certificate. */
export function warnClientCertificate(log: Logger): void {
  log.warn(
    { refused: X509_MECHANISM },
    "the upstream URI has a client certificate, which mongod sees on every client's connection: clients' MONGODB-X509 authentication is refused, since the proxy's certificate would be taken as their identity; mongod's own requirement of a client certificate is met by the proxy's for every client",
  );
}

/**
 * mongod's answer to an authentication that failed, whatever the reason, so as not to
 * tell a client why (authentication_commands.cpp, `CmdAuthenticate`: the status is
 * logged and the client gets AuthenticationFailed "Authentication failed.").
 */
export function authenticationFailed(): Document {
  return { ok: 0, errmsg: 'Authentication failed.', code: ErrorCodes.AuthenticationFailed, codeName: 'AuthenticationFailed' };
}

/**
 * `interceptor` (or none) that also claims `authenticate` and refuses it when its
 * mechanism is MONGODB-X509; any other mechanism goes on to mongod untouched, which
 * answers it as it would any client.
 */
export function refusingX509(interceptor: Interceptor | undefined, log: Logger): Interceptor {
  return {
    intercepts: (name, argumentType) => name === AUTHENTICATE || interceptor?.intercepts(name, argumentType) === true,
    run: async (request, client, upstream) => {
      if (request.name !== AUTHENTICATE) return interceptor === undefined ? FORWARD : interceptor.run(request, client, upstream);
      if (request.command['mechanism'] !== X509_MECHANISM) return FORWARD;
      log.warn({ connectionId: client.id, remoteAddress: client.remoteAddress, via: AUTHENTICATE, reason: REFUSED_BECAUSE }, 'refused MONGODB-X509 authentication');
      return authenticationFailed();
    },
  };
}

/**
 * A handshake without its MONGODB-X509 `speculativeAuthenticate`, to forward instead of
 * the client's; undefined when it has none (the common case: the bytes are searched for
 * the mechanism's name before anything is decoded). A compressed one is forwarded
 * uncompressed, which mongod accepts on any connection. 'refuse': one that names the
 * mechanism but cannot be decoded here; mongod might read it otherwise, so it must not
 * see it.
 */
export function withoutSpeculativeX509(frame: Buffer, peeked: PeekedCommand, decompressed: Buffer | undefined): Buffer | 'refuse' | undefined {
  if (!isHandshakeCommand(peeked.commandName)) return undefined;
  if (!(decompressed ?? frame).includes(X509_MECHANISM)) return undefined;
  try {
    const plain = peeked.compressorId === undefined ? frame : decodeOpCompressed(frame, decompressed);
    return editHandshake(plain, peeked.opCode, stripSpeculativeX509)?.frame;
  } catch {
    return 'refuse';
  }
}

function stripSpeculativeX509(command: Document): true | undefined {
  const speculative = command['speculativeAuthenticate'];
  if (speculative === null || typeof speculative !== 'object' || (speculative as Document)['mechanism'] !== X509_MECHANISM) return undefined;
  delete command['speculativeAuthenticate'];
  return true;
}

/** The log line for a stripped speculativeAuthenticate. */
export function logStrippedSpeculativeX509(log: Logger): void {
  log.warn({ via: 'speculativeAuthenticate', reason: REFUSED_BECAUSE }, 'refused MONGODB-X509 authentication');
}
