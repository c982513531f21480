/**
 * An abort does not wait for the requests in flight: every part request is aborted at
 * once, and the multipart upload is aborted, before uploadFiles rejects. radosgw cannot
 * be made to hold a part on cue, so the server here is a stand-in that answers
 * CreateMultipartUpload and AbortMultipartUpload as S3 does and never answers a part
 * (the S3 API reference's XML: https://docs.aws.amazon.com/AmazonS3/latest/API/API_CreateMultipartUpload.html).
 * Without the abort reaching the copy threads, the parts would wait for the socket's
 * idle timeout (set to an hour here), and the test would time out.
 */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { tempDir } from '../helpers/paths.js';
import { until } from '../helpers/poll.js';
import { uploadFiles } from '../../src/s3/upload_files.js';
import { s3SettingsFromEnvironment } from '../../src/s3/s3_client.js';
import { TokenBucket } from '../../src/backup/throttle.js';
import { CommandError, ErrorCodes } from '../../src/errors.js';

const PART = 5 * 1024 * 1024;
const UPLOAD_ID = 'held-upload-1';

const scratch = tempDir('s3-upload-abort');
const requests: string[] = [];
const heldParts = new Set<http.ServerResponse>();
let closedParts = 0;
const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://stand-in');
  requests.push(`${req.method} ${url.pathname}${url.search}`);
  if (req.method === 'POST' && url.searchParams.has('uploads')) {
    res.writeHead(200, { 'content-type': 'application/xml' });
    res.end(`<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>stand-in</Bucket><Key>p/big</Key><UploadId>${UPLOAD_ID}</UploadId></InitiateMultipartUploadResult>`);
  } else if (req.method === 'PUT' && url.searchParams.has('partNumber')) {
    // Read the body, never answer: a server that stopped replying.
    req.resume();
    heldParts.add(res);
    res.on('close', () => {
      closedParts += 1;
      heldParts.delete(res);
    });
  } else if (req.method === 'DELETE' && url.searchParams.get('uploadId') === UPLOAD_ID) {
    res.writeHead(204).end();
  } else {
    res.writeHead(501).end();
  }
});
const savedEnv = { ...process.env };

before(async () => {
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  // Any keys: the stand-in does not check signatures.
  process.env['AWS_ACCESS_KEY_ID'] = 'stand-in';
  process.env['AWS_SECRET_ACCESS_KEY'] = 'stand-in';
});

after(async () => {
  for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
  Object.assign(process.env, savedEnv);
  for (const res of heldParts) res.destroy();
  await new Promise((resolve) => server.close(resolve));
  scratch.remove();
});

it('aborts the part requests in flight and the multipart upload before it rejects', async () => {
  const file = path.join(scratch.dir, 'big');
  fs.writeFileSync(file, Buffer.alloc(3 * PART, 7));
  const { port } = server.address() as AddressInfo;
  const settings = { ...s3SettingsFromEnvironment({ AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${port}`, AWS_MAX_ATTEMPTS: '1' }), requestTimeoutMs: 3_600_000 };
  const abort = new AbortController();
  const reason = new CommandError(ErrorCodes.Interrupted, 'backup aborted');
  const upload = uploadFiles([{ path: file, relativePath: 'big', size: 3 * PART }], { bucket: 'stand-in', prefix: 'p' }, {
    settings,
    limiter: new TokenBucket(0),
    minPartSize: PART,
    partsInFlight: 2,
    signal: abort.signal,
  });
  // Two parts sent and held; the third waits for a buffer.
  await until(() => heldParts.size === 2);
  abort.abort(reason);
  await assert.rejects(upload, (err) => err === reason);
  // The server sees the sockets close a moment after the client dropped them.
  await until(() => closedParts === 2);
  assert.deepEqual(
    requests,
    [
      'POST /stand-in/p/big?uploads=',
      `PUT /stand-in/p/big?partNumber=1&uploadId=${UPLOAD_ID}&x-id=UploadPart`,
      `PUT /stand-in/p/big?partNumber=2&uploadId=${UPLOAD_ID}&x-id=UploadPart`,
      `DELETE /stand-in/p/big?uploadId=${UPLOAD_ID}&x-id=AbortMultipartUpload`,
    ],
    'the upload was aborted after its parts, and nothing else was sent',
  );
});
