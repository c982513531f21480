/**
 * A client's own connection to mongod: plain TCP, or TLS with the upstream URI's options
 * (src/tls/upstream_tls.ts). Both read into the caller's buffer (`onread`, which
 * tls.connect takes as net.connect does), so the forwarding path is the same either way.
 * Until it is connected (over TLS, the handshake done) it has a deadline: a silent
 * upstream would otherwise hold the client for the OS's connect timeout (minutes); once
 * connected, idle is normal (exhaust streams, pools).
 */
import net from 'node:net';
import tls from 'node:tls';

export interface UpstreamAddress {
  host: string;
  port: number;
}

/** The connect deadline: `timedOut` is called if `timeoutMS` pass before bytes can flow. */
export interface ConnectDeadline {
  timeoutMS: number;
  timedOut: () => void;
}

export function connectUpstream(address: UpstreamAddress, tlsOptions: tls.ConnectionOptions | undefined, onread: net.OnReadOpts, deadline: ConnectDeadline): net.Socket {
  const { socket, ready } = open(address, tlsOptions, onread);
  socket.setTimeout(deadline.timeoutMS, deadline.timedOut);
  socket.once(ready, () => socket.setTimeout(0));
  return socket;
}

/** The socket, and the event after which bytes flow: 'connect', or 'secureConnect' once the handshake is done. */
function open(address: UpstreamAddress, tlsOptions: tls.ConnectionOptions | undefined, onread: net.OnReadOpts): { socket: net.Socket; ready: 'connect' | 'secureConnect' } {
  if (tlsOptions === undefined) {
    return { socket: net.connect({ host: address.host, port: address.port, noDelay: true, onread }), ready: 'connect' };
  }
  // tls.connect takes `onread` (Node's docs for tls.connect; _tls_wrap.js passes it to
  // the TLSSocket), though @types/node's ConnectionOptions does not list it.
  const options: tls.ConnectionOptions & { onread: net.OnReadOpts } = {
    // SNI carries a host name only, as the driver sends it (cmap/connect.ts, parseSslOptions).
    ...(net.isIP(address.host) === 0 ? { servername: address.host } : {}),
    ...tlsOptions,
    host: address.host,
    port: address.port,
    onread,
  };
  const socket = tls.connect(options);
  socket.setNoDelay(true);
  return { socket, ready: 'secureConnect' };
}
