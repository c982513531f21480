/**
 * A certificate, key or CA file that cannot be used stops `serve` and `dev-server` at
 * start: one line on stderr naming the flag and the file, exit code 1, before anything
 * listens or connects (the upstream below does not exist).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { runCli } from '../helpers/cli_run.js';
import { makeTestCerts, type TestCerts } from '../helpers/tls_certs.js';
import { tempDir } from '../helpers/paths.js';

/** Nothing listens there: a start that got as far as connecting would fail differently. */
const NOWHERE = 'mongodb://127.0.0.1:9/?directConnection=true';

describe('TLS flags at start', () => {
  let certs: TestCerts;
  let scratch: { dir: string; remove: () => void };
  before(() => {
    certs = makeTestCerts();
    scratch = tempDir('tls-flags');
  });
  after(() => {
    certs?.remove();
    scratch?.remove();
  });

  async function serveFails(args: string[], upstream = NOWHERE): Promise<string> {
    const run = await runCli(['serve', '--upstream', upstream, '--port', '0', '--dbpath', scratch.dir, '--state-dir', path.join(scratch.dir, 'state'), '--log-format', 'json', ...args]);
    assert.equal(run.code, 1, `exit code, stderr: ${run.stderr}`);
    assert.equal(run.stdout.includes('proxy listening'), false);
    const lines = run.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `one line: ${run.stderr}`);
    return lines[0] as string;
  }

  it('a missing key file', async () => {
    const missing = path.join(scratch.dir, 'absent.key');
    assert.equal(await serveFails(['--tls-cert', certs.serverCertFile, '--tls-key', missing]), `hotbackup: --tls-key ${missing} cannot be read (ENOENT)`);
  });

  it('a key that is not the certificate\'s', async () => {
    const clientKey = path.join(certs.dir, 'client.key');
    const line = await serveFails(['--tls-cert', certs.serverCertFile, '--tls-key', clientKey]);
    assert.equal(line, `hotbackup: --tls-cert ${certs.serverCertFile} with --tls-key ${clientKey} is not a usable certificate and private key (key values mismatch)`);
  });

  it('a certificate file that holds no certificate', async () => {
    const line = await serveFails(['--tls-cert', certs.serverKeyFile]);
    assert.equal(line, `hotbackup: --tls-cert ${certs.serverKeyFile} is not a usable certificate and private key (no start line)`);
  });

  it('a CA file that holds no certificate', async () => {
    const empty = path.join(scratch.dir, 'empty.pem');
    fs.writeFileSync(empty, '');
    const line = await serveFails(['--tls-cert', certs.serverPemFile, '--tls-ca', empty]);
    assert.equal(line, `hotbackup: --tls-ca ${empty} holds no PEM certificate`);
  });

  it('a TLS mode without a certificate, and TLS files with TLS disabled', async () => {
    assert.equal(await serveFails(['--tls-mode', 'allow']), "hotbackup: --tls-mode allow needs --tls-cert: the server's certificate (PEM), with its private key in the same file or in --tls-key");
    assert.equal(await serveFails(['--tls-mode', 'disabled', '--tls-cert', certs.serverPemFile]), 'hotbackup: --tls-cert given with --tls-mode disabled: drop it, or choose --tls-mode allow or require');
    assert.equal(await serveFails(['--tls-mode', 'preferTLS']), "hotbackup: --tls-mode must be disabled, allow, require, got 'preferTLS'");
    assert.match(await serveFails(['--tls-cert', certs.serverPemFile, '--tls-allow-connections-without-certificates']), /--tls-allow-connections-without-certificates needs --tls-ca/);
  });

  it("the upstream URI's tlsCAFile missing, without the URI's password in the message", async () => {
    const missing = path.join(scratch.dir, 'absent-ca.pem');
    const line = await serveFails([], `mongodb://backup:s3cret@127.0.0.1:9/?directConnection=true&tls=true&tlsCAFile=${encodeURIComponent(missing)}`);
    assert.equal(line, `hotbackup: --upstream's tlsCAFile ${missing} cannot be read (ENOENT)`);
  });

  it('a --tls-handshake-timeout-ms that is not a whole number of milliseconds', async () => {
    for (const bad of ['0', 'soon', '1.5']) {
      assert.equal(await serveFails(['--tls-cert', certs.serverPemFile, '--tls-handshake-timeout-ms', bad]), `hotbackup: --tls-handshake-timeout-ms must be a whole number of milliseconds, at least 1, got '${bad}'`);
    }
  });

  it('dev-server: a missing --tls-cert-key-file', async () => {
    const missing = path.join(scratch.dir, 'absent.pem');
    const run = await runCli(['dev-server', '--dbpath', path.join(scratch.dir, 'db'), '--port', '0', '--tls-mode', 'require', '--tls-cert-key-file', missing]);
    assert.equal(run.code, 1);
    assert.equal(run.stderr.trim(), `hotbackup: --tls-cert-key-file ${missing} cannot be read (ENOENT)`);
    assert.equal(fs.existsSync(path.join(scratch.dir, 'db')), false, 'nothing was opened');
  });

  it('dev-server: TLS files without --tls-mode (or with it disabled) stop the start, as mongod does', async () => {
    // mongod: src/mongo/util/net/ssl_options_server.cpp, storeSSLServerOptions.
    const attempts = [
      ['--tls-cert-key-file', certs.serverPemFile],
      ['--tls-ca-file', certs.caFile],
      ['--tls-mode', 'disabled', '--tls-cert-key-file', certs.serverPemFile],
      ['--tls-allow-connections-without-certificates'],
    ];
    for (const args of attempts) {
      const run = await runCli(['dev-server', '--dbpath', path.join(scratch.dir, 'db'), '--port', '0', ...args]);
      assert.equal(run.code, 1, args.join(' '));
      assert.equal(run.stderr.trim(), 'hotbackup: need to enable TLS via the --tls-mode flag when using TLS configuration parameters');
      assert.equal(fs.existsSync(path.join(scratch.dir, 'db')), false, 'nothing was opened');
    }
  });
});
