/**
 * What a listener needs to speak TLS to its clients, read from files once at start:
 * the proxy (`--tls-cert`, `--tls-key`, `--tls-ca`, `--tls-mode`) and the dev server
 * (`--tls-cert-key-file`, `--tls-ca-file`, `--tls-mode`) load it here, and
 * client_acceptor.ts uses it for each connection.
 *
 * The modes are mongod's `net.tls.mode` without the outgoing half: mongod's `allowTLS`
 * and `preferTLS` differ only in what mongod itself uses towards other members, and
 * both accept TLS and plain clients on one port; here that is `allow`.
 */
import fs from 'node:fs/promises';
import tls from 'node:tls';

export const TLS_MODES = ['disabled', 'allow', 'require'] as const;
export type TlsMode = (typeof TLS_MODES)[number];

/**
 * How long a new connection may take to show whether it is TLS or plain (its first 16
 * bytes), and then, if TLS, to finish its handshake: each phase gets this long. mongod
 * has no such deadline (src/mongo/transport/asio/asio_session_impl.cpp, `read` before
 * `maybeHandshakeSSLForIngress`, and `sourceMessageImpl`: no timeout on either read);
 * here a client that connects and sends nothing would hold its descriptor forever. A
 * driver sends its hello, or its ClientHello, as soon as it has connected: 20 s is
 * generous even over a poor link.
 */
export const DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS = 20_000;

/** The files as given on the command line, and the flag names to quote back in errors. */
export interface ServerTlsFiles {
  mode: TlsMode;
  certFile?: string | undefined;
  /** Absent: the key is in the certificate's PEM (as mongod's tlsCertificateKeyFile holds both). */
  keyFile?: string | undefined;
  caFile?: string | undefined;
  /** mongod's `net.tls.allowConnectionsWithoutCertificates`; only meaningful with a CA. */
  allowConnectionsWithoutCertificates: boolean;
  /** Default DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS. */
  handshakeTimeoutMS?: number | undefined;
  /** `key` absent: the listener has no key flag of its own (the dev server's one PEM). */
  flags: { cert: string; key?: string; ca: string; mode: string };
}

export interface ServerTls {
  mode: 'allow' | 'require';
  /** For tls.createServer: the identity, and the CA that client certificates must chain to. */
  options: tls.TlsOptions;
  /** Client certificates are asked for and checked (a CA was given). */
  verifyClients: boolean;
  allowConnectionsWithoutCertificates: boolean;
  /** For telling TLS from plain; the TLS handshake's own is in `options` (handshakeTimeout). */
  handshakeTimeoutMS: number;
}

/** One line that names the flag and the file, and OpenSSL's own reason where there is one. */
function reasonOf(err: unknown): string {
  const e = err as { code?: unknown; reason?: unknown; message?: unknown };
  if (typeof e.reason === 'string') return e.reason;
  if (typeof e.code === 'string' && e.code.startsWith('E')) return e.code;
  return String(e.message ?? err);
}

async function readFlagFile(flag: string, file: string): Promise<Buffer> {
  try {
    return await fs.readFile(file);
  } catch (err) {
    throw new Error(`${flag} ${file} cannot be read (${reasonOf(err)})`, { cause: err });
  }
}

/**
 * Checks the flags and reads the files; undefined when TLS is disabled. Every mistake
 * (a missing file, a key that is not the certificate's, a CA file with no certificate)
 * is a start-up error here, never a failed handshake later.
 */
export async function loadServerTls(files: ServerTlsFiles): Promise<ServerTls | undefined> {
  const { flags } = files;
  const given = [files.certFile === undefined ? '' : flags.cert, files.keyFile === undefined ? '' : flags.key, files.caFile === undefined ? '' : flags.ca].filter((f) => f !== '');
  if (files.mode === 'disabled') {
    if (given.length > 0) throw new Error(`${[...new Set(given)].join(', ')} given with ${flags.mode} disabled: drop ${given.length === 1 ? 'it' : 'them'}, or choose ${flags.mode} allow or require`);
    return undefined;
  }
  if (files.certFile === undefined) {
    const what = flags.key === undefined ? "the server's certificate and private key (PEM)" : `the server's certificate (PEM), with its private key in the same file or in ${flags.key}`;
    throw new Error(`${flags.mode} ${files.mode} needs ${flags.cert}: ${what}`);
  }
  if (files.allowConnectionsWithoutCertificates && files.caFile === undefined) {
    throw new Error(`--tls-allow-connections-without-certificates needs ${flags.ca}: without a CA no client certificate is asked for`);
  }
  const cert = await readFlagFile(flags.cert, files.certFile);
  const key = files.keyFile === undefined ? cert : await readFlagFile(flags.key ?? flags.cert, files.keyFile);
  const ca = files.caFile === undefined ? undefined : await readFlagFile(flags.ca, files.caFile);
  const handshakeTimeoutMS = files.handshakeTimeoutMS ?? DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS;
  const options: tls.TlsOptions = { cert, key, handshakeTimeout: handshakeTimeoutMS, ...(ca === undefined ? {} : { ca, requestCert: true, rejectUnauthorized: false }) };
  try {
    // The same parse tls.createServer does; done now so that a bad file stops the start.
    tls.createSecureContext({ cert, key });
  } catch (err) {
    const which = files.keyFile === undefined ? `${flags.cert} ${files.certFile}` : `${flags.cert} ${files.certFile} with ${flags.key ?? flags.cert} ${files.keyFile}`;
    throw new Error(`${which} is not a usable certificate and private key (${reasonOf(err)})`, { cause: err });
  }
  if (ca !== undefined) {
    try {
      tls.createSecureContext({ ca });
    } catch (err) {
      throw new Error(`${flags.ca} ${files.caFile as string} holds no usable CA certificate (${reasonOf(err)})`, { cause: err });
    }
    // A file that parses yet holds no certificate at all (an empty file, a key) would
    // make every client certificate fail; say so now.
    if (!ca.toString('latin1').includes('-----BEGIN CERTIFICATE-----')) throw new Error(`${flags.ca} ${files.caFile as string} holds no PEM certificate`);
  }
  return {
    mode: files.mode,
    options,
    verifyClients: ca !== undefined,
    allowConnectionsWithoutCertificates: files.allowConnectionsWithoutCertificates,
    handshakeTimeoutMS,
  };
}
