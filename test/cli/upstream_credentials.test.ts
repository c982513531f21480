/** Where the proxy's upstream password may come from, and how a URI is shown. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { redactUri, resolveUpstreamUri } from '../../src/cli/upstream_credentials.js';
import { tempDir } from '../helpers/paths.js';

const userOf = (uri: string) => new MongoClient(uri).options.credentials;

describe('upstream credentials', () => {
  it('takes the whole URI from HOTBACKUP_UPSTREAM_URI when --upstream is absent', () => {
    const r = resolveUpstreamUri({ flag: undefined, passwordFile: undefined, env: { HOTBACKUP_UPSTREAM_URI: 'mongodb://u:p%40ss@h:1/?authSource=admin' } });
    assert.equal(userOf(r!.uri)?.password, 'p@ss');
    assert.equal(r!.passwordOnCommandLine, false);
  });

  it('adds the password from a file or HOTBACKUP_UPSTREAM_PASSWORD to the user the URI names', () => {
    const dir = tempDir('upstream-pw');
    try {
      const file = path.join(dir.dir, 'pw');
      fs.writeFileSync(file, 's3:cr/et@\n', { mode: 0o600 });
      const fromFile = resolveUpstreamUri({ flag: 'mongodb://backup@h:1/', passwordFile: file, env: {} });
      assert.deepEqual([userOf(fromFile!.uri)?.username, userOf(fromFile!.uri)?.password], ['backup', 's3:cr/et@']);
      const fromEnv = resolveUpstreamUri({ flag: 'mongodb://backup@h:1/', passwordFile: undefined, env: { HOTBACKUP_UPSTREAM_PASSWORD: 'x y' } });
      assert.equal(userOf(fromEnv!.uri)?.password, 'x y');
      assert.throws(() => resolveUpstreamUri({ flag: 'mongodb://h:1/', passwordFile: file, env: {} }), /names no user/);
      assert.throws(() => resolveUpstreamUri({ flag: 'mongodb://a:b@h:1/', passwordFile: file, env: {} }), /one place only/);
    } finally {
      dir.remove();
    }
  });

  it('refuses a password file group or others may read, as mongod refuses such a keyFile', () => {
    const dir = tempDir('upstream-pw');
    try {
      const file = path.join(dir.dir, 'pw');
      fs.writeFileSync(file, 'secret\n', { mode: 0o600 });
      for (const mode of [0o640, 0o604, 0o620]) {
        fs.chmodSync(file, mode);
        assert.throws(() => resolveUpstreamUri({ flag: 'mongodb://backup@h:1/', passwordFile: file, env: {} }), /permissions on --upstream-password-file .* are too open/, mode.toString(8));
      }
      fs.chmodSync(file, 0o400);
      assert.equal(userOf(resolveUpstreamUri({ flag: 'mongodb://backup@h:1/', passwordFile: file, env: {} })!.uri)?.password, 'secret');
    } finally {
      dir.remove();
    }
  });

  it('flags a password given with --upstream, and never shows one', () => {
    assert.equal(resolveUpstreamUri({ flag: 'mongodb://a:secret@h:1/', passwordFile: undefined, env: {} })!.passwordOnCommandLine, true);
    assert.equal(redactUri('mongodb://a:secret@h:1/?authSource=admin'), 'mongodb://a:****@h:1/?authSource=admin');
    // URIs the parser refuses: the password with an unescaped '/', '@', '?' or '#'.
    for (const uri of ['mongodb://a:secret@[bad', 'mongodb://a:sec/ret@h:1/', 'mongodb://a:sec/ret@h:1/?x=1', 'mongodb+srv://a:sec/ret@c.example.com/', 'mongodb://a:sec@ret@h:1/', 'mongodb://a:sec?ret@h/']) {
      const shown = redactUri(uri);
      assert.ok(!shown.includes('sec') && !shown.includes('ret@'), `${uri} shown as ${shown}`);
    }
  });
});
