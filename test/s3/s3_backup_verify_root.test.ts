/**
 * `{backupVerify: "s3://…"}` stays inside the proxy's --backup-root, as every backupVerify
 * path must (docs/commands.md): a verify writes its record beside the manifest, so a
 * proxy under a local root verifies no S3 backup, and one under an s3:// root none outside
 * it. A URL carrying `key:secret@` is refused without being repeated, in the reply or the
 * log. Against a real radosgw and a real proxy, through the real driver.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { radosgwAvailable, startRadosgw, type Radosgw } from '../helpers/radosgw.js';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/paths.js';
import { keysUnder, putCrafted } from '../helpers/s3_backups.js';
import { VERIFICATION_FILENAME } from '../../src/backup/verification_record.js';

const available = radosgwAvailable();
const skip = available.ok ? false : available.reason;
const SECRET = 'wJalrXUtnFEMIK7MDENGbPxRfiCYSECRET';

/** The reply to backupVerify of `url`, or the error's codeName and errmsg, as one line. */
async function backupVerify(client: MongoClient, url: string): Promise<string> {
  return client
    .db('admin')
    .command({ backupVerify: url })
    .then(
      (reply) => `accepted: ${JSON.stringify(reply)}`,
      (err: { codeName?: string; errmsg?: string }) => `${err.codeName}: ${err.errmsg}`,
    );
}

describe('backupVerify of s3:// under a --backup-root', { skip }, () => {
  let rgw: Radosgw;
  let server: RunningDevServer;
  const scratch = tempDir('s3-verify-root');

  before(async () => {
    rgw = await startRadosgw();
    // Journal files of 2 MB, not mongod's 100 MB: the backup is then ~10 MB, not ~104 MB,
    // and every download, verify and restore of it takes a tenth of the time.
    server = await startDevServer({ args: ['--wiredTigerEngineConfigString', 'log=(file_max=2MB)'] });
  });
  after(async () => {
    await server?.stop();
    server?.cleanup();
    await rgw?.stop();
    scratch.remove();
  });

  async function withProxy(root: string, body: (client: MongoClient, logs: () => string) => Promise<void>): Promise<void> {
    const proxy = await startProxy(server, ['--backup-root', root], rgw.env());
    const client = await MongoClient.connect(proxy.uri);
    try {
      await body(client, () => JSON.stringify(proxy.logs) + proxy.stderr());
    } finally {
      await client.close();
      await proxy.stop();
    }
  }

  it('a local root refuses every s3:// URL, writes nothing there, and never repeats key:secret@', async () => {
    const bucket = await rgw.createBucket();
    await putCrafted(rgw.client(), bucket, 'elsewhere/b1', new Map([['x.wt', Buffer.from('x')]]));
    const root = path.join(scratch.dir, 'local-root');
    fs.mkdirSync(root);
    await withProxy(root, async (client, logs) => {
      const escaped = await backupVerify(client, `s3://${bucket}/elsewhere/b1`);
      assert.match(escaped, /^BadValue: backupVerify s3:\/\/\S+ is refused: this proxy's --backup-root is the directory .*, and every backupVerify path must lie in it$/);
      const leaked = await backupVerify(client, `s3://AKIAIOSFODNN7EXAMPLE:${SECRET}@${bucket}/x`);
      assert.match(leaked, /^BadValue: backupVerify path s3:\/\/…@… is not a valid S3 location: an s3:\/\/ URL carries no credentials/);
      assert.ok(!leaked.includes(SECRET) && !logs().includes(SECRET));
    });
    assert.deepEqual((await keysUnder(rgw.client(), bucket, 'elsewhere/b1/')).filter((k) => k.includes(VERIFICATION_FILENAME)), []);
  });

  it('an s3:// root verifies the backups below it and refuses those outside it (another prefix, another bucket)', async () => {
    const bucket = await rgw.createBucket();
    const other = await rgw.createBucket();
    await putCrafted(rgw.client(), bucket, 'nightly/b1', new Map([['x.wt', Buffer.from('x')]]));
    await putCrafted(rgw.client(), bucket, 'nightly-not/b1', new Map([['x.wt', Buffer.from('x')]]));
    await putCrafted(rgw.client(), other, 'nightly/b1', new Map([['x.wt', Buffer.from('x')]]));
    await withProxy(`s3://${bucket}/nightly`, async (client) => {
      assert.match(await backupVerify(client, `s3://${bucket}/nightly/b1`), /^accepted: /);
      for (const outside of [`s3://${bucket}/nightly-not/b1`, `s3://${other}/nightly/b1`, `s3://${bucket}/nightly`]) {
        assert.match(await backupVerify(client, outside), /^BadValue: backupVerify s3:\/\/\S+ is refused: it is not below this proxy's --backup-root s3:\/\//, outside);
      }
    });
    for (const [b, prefix] of [[bucket, 'nightly-not/b1/'], [other, 'nightly/b1/']] as const) {
      assert.deepEqual((await keysUnder(rgw.client(), b, prefix)).filter((k) => k.includes(VERIFICATION_FILENAME)), [], `${b}/${prefix}`);
    }
  });
});
