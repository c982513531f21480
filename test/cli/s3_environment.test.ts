/**
 * `serve` reads the AWS environment at start, whether or not a backup ever goes to S3
 * (an s3:// destination needs no flag): a value that cannot be right is a start-up
 * error, one line on stderr, rather than a surprise at the first backupStart.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDevServer, type RunningDevServer } from '../helpers/dev_server.js';
import { startProxy } from '../helpers/proxy.js';

describe('serve and the AWS environment', () => {
  let server: RunningDevServer;

  before(async () => {
    server = await startDevServer();
  });

  after(async () => {
    await server?.stop();
    server?.cleanup();
  });

  it('refuses to start with an S3 endpoint that is not a URL, or that carries credentials, or a bad AWS_MAX_ATTEMPTS', async () => {
    await assert.rejects(startProxy(server, [], { AWS_ENDPOINT_URL_S3: 'radosgw:7480' }), /exited \(1\) before listening: hotbackup: the S3 endpoint must be http:\/\/ or https:\/\/, got radosgw:/);
    await assert.rejects(startProxy(server, [], { AWS_ENDPOINT_URL_S3: 'not a url' }), /exited \(1\) before listening: hotbackup: AWS_ENDPOINT_URL_S3 \/ AWS_ENDPOINT_URL is not a URL: not a url\n$/);
    await assert.rejects(startProxy(server, [], { AWS_ENDPOINT_URL_S3: 'http://key:s3cr3t@127.0.0.1:7480' }), (err: Error) => {
      assert.match(err.message, /the S3 endpoint URL must not carry credentials/);
      assert.ok(!err.message.includes('s3cr3t'), 'the secret is not repeated');
      return true;
    });
    await assert.rejects(startProxy(server, [], { AWS_MAX_ATTEMPTS: '0' }), /AWS_MAX_ATTEMPTS must be a positive integer, got 0/);
  });
});
