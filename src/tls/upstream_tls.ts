/**
 * The upstream URI's TLS options (`tls=true`/`ssl=true`, `tlsCAFile`,
 * `tlsCertificateKeyFile`, `tlsCertificateKeyFilePassword`, `tlsCRLFile`,
 * `tlsAllowInvalidCertificates`, `tlsAllowInvalidHostnames`, `tlsInsecure`) as
 * node:tls options for the raw sockets the proxy opens to mongod, one per client.
 *
 * They are taken from the driver's own parse of the URI (MongoClient#options), not
 * parsed again: the proxy's driver connection and its forwarding sockets then cannot
 * read one URI two ways (the `ssl` alias, `tlsInsecure` against its two halves, a
 * `mongodb+srv` URI's TLS by default). The files are read as the driver reads them
 * (mongodb's mongo_client.ts, `_connect`: the CA, the CRL, and one PEM for key and
 * certificate), and the options kept are those the driver passes to tls.connect
 * (its cmap/connect.ts, `LEGAL_TLS_SOCKET_OPTIONS`).
 */
import fs from 'node:fs/promises';
import type tls from 'node:tls';
import type { LEGAL_TLS_SOCKET_OPTIONS, MongoClient } from 'mongodb';

/**
 * The driver's LEGAL_TLS_SOCKET_OPTIONS (mongodb 7.9), which its typings declare but its
 * package does not export at run time; checked against that declaration.
 */
const TLS_SOCKET_OPTIONS = [
  'allowPartialTrustChain', 'ALPNProtocols', 'ca', 'cert', 'checkServerIdentity', 'ciphers', 'crl', 'ecdhCurve',
  'key', 'minDHSize', 'passphrase', 'pfx', 'rejectUnauthorized', 'secureContext', 'secureProtocol', 'servername', 'session',
] as const satisfies ReadonlyArray<(typeof LEGAL_TLS_SOCKET_OPTIONS)[number]>;

async function readUriFile(option: string, file: string): Promise<Buffer> {
  try {
    return await fs.readFile(file);
  } catch (err) {
    // The file's path only: the URI may hold a password.
    throw new Error(`--upstream's ${option} ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
  }
}

/** undefined when the URI does not ask for TLS. */
export async function upstreamTlsOptions(client: MongoClient): Promise<tls.ConnectionOptions | undefined> {
  const options = client.options;
  if (!options.tls) return undefined;
  const files: Record<string, unknown> = {};
  if (typeof options.tlsCAFile === 'string') files['ca'] = options.ca ?? (await readUriFile('tlsCAFile', options.tlsCAFile));
  if (typeof options.tlsCRLFile === 'string') files['crl'] = options.crl ?? (await readUriFile('tlsCRLFile', options.tlsCRLFile));
  if (typeof options.tlsCertificateKeyFile === 'string') {
    const pem = await readUriFile('tlsCertificateKeyFile', options.tlsCertificateKeyFile);
    files['key'] = options.key ?? pem;
    files['cert'] = options.cert ?? pem;
  }
  const picked: Record<string, unknown> = {};
  for (const name of TLS_SOCKET_OPTIONS) {
    const value = (options as unknown as Record<string, unknown>)[name];
    if (value !== undefined && value !== null) picked[name] = value;
  }
  return { ...picked, ...files } as tls.ConnectionOptions;
}
