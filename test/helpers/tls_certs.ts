/**
 * Certificates made with `openssl` at test time (scripts/install.sh installs it): a CA,
 * a server certificate for 127.0.0.1 and localhost, a client certificate from the same
 * CA, and a client certificate from another CA (one the server must refuse).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { tempDir } from './paths.js';

export interface TestCerts {
  readonly dir: string;
  /** The CA's certificate: what clients trust, and what client certificates chain to. */
  readonly caFile: string;
  /** The server's certificate alone, and its key alone (the proxy's --tls-cert, --tls-key). */
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  /** Both in one PEM (the dev server's --tls-cert-key-file, mongod's tlsCertificateKeyFile). */
  readonly serverPemFile: string;
  /** A client's certificate and key in one PEM, signed by the CA (tlsCertificateKeyFile). */
  readonly clientPemFile: string;
  /** The same, signed by another CA. */
  readonly rogueClientPemFile: string;
  remove(): void;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A key and a certificate for `subject`, signed by the CA `ca` (its .pem and .key in `dir`). */
function issue(dir: string, name: string, ca: string, subject: string, extensions: string): void {
  fs.writeFileSync(path.join(dir, `${name}.ext`), extensions);
  openssl(dir, ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject]);
  openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`]);
}

function selfSignedCa(dir: string, name: string): void {
  openssl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=hotbackup test ${name}`]);
}

function combine(dir: string, name: string): string {
  const file = path.join(dir, `${name}-combined.pem`);
  fs.writeFileSync(file, fs.readFileSync(path.join(dir, `${name}.pem`), 'utf8') + fs.readFileSync(path.join(dir, `${name}.key`), 'utf8'));
  return file;
}

export function makeTestCerts(): TestCerts {
  const { dir, remove } = tempDir('tls');
  try {
    selfSignedCa(dir, 'ca');
    selfSignedCa(dir, 'rogue-ca');
    issue(dir, 'server', 'ca', '/CN=localhost', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
    issue(dir, 'client', 'ca', '/CN=hotbackup test client', 'extendedKeyUsage=clientAuth\n');
    issue(dir, 'rogue-client', 'rogue-ca', '/CN=hotbackup rogue client', 'extendedKeyUsage=clientAuth\n');
    return {
      dir,
      caFile: path.join(dir, 'ca.pem'),
      serverCertFile: path.join(dir, 'server.pem'),
      serverKeyFile: path.join(dir, 'server.key'),
      serverPemFile: combine(dir, 'server'),
      clientPemFile: combine(dir, 'client'),
      rogueClientPemFile: combine(dir, 'rogue-client'),
      remove,
    };
  } catch (err) {
    remove();
    throw err;
  }
}
