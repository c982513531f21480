/**
 * Which backups may be an incremental backup's base, by their manifest's source: the same
 * dbpath and mongod, and, where both say, the same machine. Sidecar proxies on several
 * machines all reach 127.0.0.1:27017 with the same dbpath; in a root they share, one
 * machine's backup must never be another's base.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkBaseSource, isSameSource } from '../../src/backup/incremental.js';
import type { Manifest } from '../../src/backup/manifest.js';
import { CommandError, ErrorCodes } from '../../src/errors.js';

const here = { dbpath: '/data/db', host: '127.0.0.1:27017', hostname: 'db1' };
const manifestOf = (source: Manifest['source']): Manifest => ({ source }) as Manifest;

describe('an incremental base is a backup of this source', () => {
  it('compares the machine only when both the manifest and the proxy name one', () => {
    assert.equal(isSameSource({ ...here, serverVersion: '7.0.0' }, here), true);
    assert.equal(isSameSource({ dbpath: '/data/db/', host: here.host, serverVersion: '7.0.0' }, here), true, 'an older manifest without a hostname');
    assert.equal(isSameSource({ ...here, serverVersion: '7.0.0' }, { dbpath: here.dbpath, host: here.host }), true, 'a caller that does not know its machine');
    assert.equal(isSameSource({ ...here, hostname: 'db2', serverVersion: '7.0.0' }, here), false);
    assert.equal(isSameSource({ ...here, host: '127.0.0.1:27018', serverVersion: '7.0.0' }, here), false);
    assert.equal(isSameSource({ ...here, dbpath: '/data/other', serverVersion: '7.0.0' }, here), false);
  });

  it("refuses another machine's backup as the base, saying which machines", () => {
    assert.throws(
      () => checkBaseSource('s3://backups/nightly/a', manifestOf({ ...here, hostname: 'db2', serverVersion: '7.0.0' }), here),
      (err: unknown) => {
        assert.ok(err instanceof CommandError);
        assert.equal(err.code, ErrorCodes.BadValue);
        assert.equal(err.message, 'incrementalBase s3://backups/nightly/a cannot be used: it was taken on the machine db2, and this proxy runs on db1; take a full backup (no incrementalBase) first');
        return true;
      },
    );
    checkBaseSource('s3://backups/nightly/a', manifestOf({ ...here, serverVersion: '7.0.0' }), here);
  });
});
