/**
 * readObject's resumes against a small HTTP server that plays S3's GetObject and cuts
 * each body on demand: a resumed GET answered with the whole object (a server ignoring
 * Range, 200) must not be spliced after the bytes received, and a large object on a link
 * that keeps cutting is read whole as long as each GET makes progress.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { S3Client } from '@aws-sdk/client-s3';
import { readObject } from '../../src/s3/s3_download.js';
import { startChecksum } from '../../src/backup/checksum.js';

const OBJECT = Buffer.from(Array.from({ length: 64 * 1024 }, (_, i) => i % 251));
const unlimited = { take: async () => {} };

interface Behaviour {
  /** Bytes each GET sends before its connection is destroyed (the last part of the object is always sent whole). */
  cutAfter: number;
  /** Whether the server ignores Range (answers 200 with the whole object). */
  ignoreRange: boolean;
}

describe('readObject resumes a cut download only with the part it asked for', () => {
  let server: http.Server;
  let behaviour: Behaviour = { cutAfter: 0, ignoreRange: false };
  let gets = 0;
  let client: S3Client;

  before(async () => {
    server = http.createServer((req, res) => {
      gets++;
      const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      const from = range === null || behaviour.ignoreRange ? 0 : Number(range[1]);
      const part = OBJECT.subarray(from);
      res.writeHead(from === 0 ? 200 : 206, {
        'content-length': String(part.length),
        etag: '"e"',
        ...(from === 0 ? {} : { 'content-range': `bytes ${from}-${OBJECT.length - 1}/${OBJECT.length}` }),
      });
      if (part.length <= behaviour.cutAfter) {
        res.end(part);
        return;
      }
      res.write(part.subarray(0, behaviour.cutAfter), () => setImmediate(() => res.socket?.destroy()));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    client = new S3Client({
      endpoint: `http://127.0.0.1:${port}`,
      forcePathStyle: true,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      maxAttempts: 1,
    });
  });
  after(async () => {
    client?.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const read = (retry = { attempts: 5, total: 50, firstDelayMs: 1 }) => {
    const received: Buffer[] = [];
    const result = readObject(client, 'b', 'k.wt', { limiter: unlimited, expectedSize: OBJECT.length, retry, sink: (chunk) => void received.push(chunk) });
    return { result, received };
  };

  it('a resumed GET answered 200 with the whole object fails as a transfer, without hashing or writing the object after the bytes received', async () => {
    behaviour = { cutAfter: 1000, ignoreRange: true };
    gets = 0;
    const { result, received } = read();
    await assert.rejects(result, /could not be resumed: the server answered the request for the rest with HTTP 200/);
    assert.equal(gets, 2, 'not tried again: the server will ignore Range again');
    assert.ok(Buffer.concat(received).length < OBJECT.length, 'nothing of the 200 reply reached the sink');
  });

  it('a link that cuts every GET after a few KiB still reads the object whole: each resume that makes progress starts the count of tries again', async () => {
    behaviour = { cutAfter: 4096, ignoreRange: false };
    gets = 0;
    const { result, received } = read();
    const whole = await result;
    assert.equal(gets, Math.ceil(OBJECT.length / 4096));
    assert.ok(gets > 5);
    const checksum = startChecksum();
    checksum.update(OBJECT);
    assert.deepEqual(whole, { size: OBJECT.length, checksum: checksum.hex() });
    assert.ok(Buffer.concat(received).equals(OBJECT));
  });

  it('the total bound still stops a link that keeps cutting', async () => {
    behaviour = { cutAfter: 4096, ignoreRange: false };
    gets = 0;
    await assert.rejects(read({ attempts: 5, total: 3, firstDelayMs: 1 }).result);
    assert.equal(gets, 3);
  });
});
