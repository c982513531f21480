/** The scheduled job's flags of `serve` and `start`: all of them or none, each checked before anything starts. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { parseProxyFlags } from '../../src/cli/proxy_flags.js';

function job(args: string[]) {
  const parsed = parseProxyFlags(args, { own: {} });
  assert.equal(parsed.help, false);
  return parsed.help ? undefined : parsed.proxy.job;
}

describe('scheduled job flags', () => {
  it('gives no job without --schedule, and the job with it, the root made absolute', () => {
    assert.equal(job([]), undefined);
    assert.deepEqual(job(['--schedule', 'every 6h', '--backup-root', 'backups', '--keep', '7']), {
      schedule: 'every 6h',
      backupRoot: path.resolve('backups'),
      keep: 7,
      fullEvery: undefined,
      streamOplog: false,
    });
    assert.equal(job(['--schedule', '0 2 * * *', '--backup-root', '/b', '--keep', '7', '--full-every', '7'])?.fullEvery, 7);
    assert.equal(job(['--schedule', 'every 6h', '--backup-root', '/b', '--keep', '7', '--stream-oplog'])?.streamOplog, true);
  });

  it('refuses a job flag without --schedule, and --schedule without its root or retention', () => {
    assert.throws(() => job(['--keep', '2', '--full-every', '3', '--backup-root', '/b']), { message: "--keep, --full-every belong to a scheduled job: add --schedule (e.g. --schedule 'every 6h')" });
    assert.throws(() => job(['--full-every', '2']), { message: "--full-every belongs to a scheduled job: add --schedule (e.g. --schedule 'every 6h')" });
    assert.throws(() => job(['--stream-oplog']), { message: "--stream-oplog belongs to a scheduled job: add --schedule (e.g. --schedule 'every 6h')" });
    assert.throws(() => job(['--schedule', 'every 2s', '--keep', '2']), /--schedule needs --backup-root DIR/);
    assert.throws(() => job(['--schedule', 'every 2s', '--backup-root', '/b']), /--schedule needs --keep N/);
  });

  it('takes --keep and --full-every as whole numbers of at least 1', () => {
    for (const bad of ['0', '-1', '1.5', 'seven', '']) {
      assert.throws(() => job(['--schedule', 'every 2s', '--backup-root', '/b', `--keep=${bad}`]), new RegExp(`--keep must be a whole number of at least 1 .*got '${bad}'`));
      assert.throws(() => job(['--schedule', 'every 2s', '--backup-root', '/b', '--keep', '2', `--full-every=${bad}`]), /--full-every must be a whole number of at least 1/);
    }
  });
});

describe('--backup-root', () => {
  const root = (args: string[]) => {
    const parsed = parseProxyFlags(args, { own: {} });
    assert.equal(parsed.help, false);
    return parsed.help ? undefined : parsed.proxy.backupRoot;
  };

  it('stands alone (a destination policy, no job), made absolute; none by default', () => {
    assert.equal(root([]), undefined);
    assert.equal(root(['--backup-root', 'backups']), path.resolve('backups'));
    assert.equal(job(['--backup-root', '/b']), undefined);
    assert.throws(() => root(['--backup-root', '']), { message: '--backup-root must name a directory or an s3:// URL' });
  });

  it('takes an s3:// URL as it is (not as a relative path), in its canonical form; refuses a malformed one, and a schedule to it', () => {
    assert.equal(root(['--backup-root', 's3://backups/proxy-1/']), 's3://backups/proxy-1');
    assert.equal(root(['--backup-root', 'S3://backups']), 's3://backups');
    assert.throws(() => root(['--backup-root', 's3://Bad_Bucket/x']), /^Error: --backup-root s3:\/\/Bad_Bucket\/x is not a valid S3 location: 'Bad_Bucket' is not a valid bucket name/);
    assert.throws(() => root(['--backup-root', 's3://backups//x']), /is not a valid S3 location: the path has an empty segment/);
    assert.throws(() => job(['--schedule', 'every 6h', '--backup-root', 's3://backups/r', '--keep', '2']), {
      message: '--schedule needs a local --backup-root directory: scheduled backups to S3 (s3://backups/r) are not supported yet',
    });
  });
});

describe('--partial-message-timeout-ms', () => {
  const timeout = (args: string[]) => {
    const parsed = parseProxyFlags(args, { own: {} });
    assert.equal(parsed.help, false);
    return parsed.help ? undefined : parsed.proxy.partialMessageTimeoutMS;
  };

  it('defaults to 60 s, takes 0 for never, and refuses anything but whole milliseconds', () => {
    assert.equal(timeout([]), 60_000);
    assert.equal(timeout(['--partial-message-timeout-ms', '250']), 250);
    assert.equal(timeout(['--partial-message-timeout-ms', '0']), 0);
    for (const bad of ['-1', '1.5', 'soon', '']) {
      assert.throws(() => timeout([`--partial-message-timeout-ms=${bad}`]), new RegExp(`--partial-message-timeout-ms must be a whole number of milliseconds \\(0: never\\), got '${bad}'`));
    }
  });
});

describe('--advertise', () => {
  const advertise = (args: string[]) => {
    const parsed = parseProxyFlags(args, { own: {} });
    assert.equal(parsed.help, false);
    return parsed.help ? undefined : parsed.proxy.advertise;
  };

  it('takes HOST:PORT as a replica-set config names a member; none by default', () => {
    assert.equal(advertise([]), undefined);
    for (const good of ['backup-proxy.example:27018', '10.0.0.7:1', '[::1]:27018', 'localhost:65535']) assert.equal(advertise(['--advertise', good]), good);
  });

  it('refuses what no driver could dial as a member', () => {
    for (const bad of ['', 'host', 'host:', ':27018', 'host:0', 'host:65536', 'mongodb://host:27018', 'a,b:1', '::1:27018', 'host:27018/x']) {
      assert.throws(() => advertise([`--advertise=${bad}`]), new RegExp(`--advertise must be HOST:PORT .*got '${bad.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}'`), bad);
    }
  });

  it('takes --source-name as the name manifests record, and refuses an empty one', () => {
    const parse = (args: string[]) => {
      const parsed = parseProxyFlags(args, { own: {} });
      return parsed.help ? undefined : parsed.proxy.sourceName;
    };
    assert.equal(parse([]), undefined);
    assert.equal(parse(['--source-name', 'mongo-0']), 'mongo-0');
    assert.throws(() => parse(['--source-name', ' ']), /--source-name must be a non-empty name/);
  });
});
