/**
 * SCRAM-SHA-256 on a RawClient (RFC 5802, RFC 7677), so a test can authenticate a raw
 * connection and then send exact bytes on it (pipelined commands no driver sends).
 * Written from the RFCs with node:crypto; the driver's own implementation is not exported.
 */
import crypto from 'node:crypto';
import assert from 'node:assert/strict';
import { Binary } from 'bson';
import { saslprep } from '@mongodb-js/saslprep';
import { opMsg, type RawClient } from './raw_client.js';

const hmac = (key: Buffer, text: string | Buffer): Buffer => crypto.createHmac('sha256', key).update(text).digest();

/** Authenticates `raw` as `user` (on `db`), or fails the test with mongod's reply. */
export async function scramSha256(raw: RawClient, user: string, password: string, db = 'admin'): Promise<void> {
  const clientFirstBare = `n=${user.replace(/=/g, '=3D').replace(/,/g, '=2C')},r=${crypto.randomBytes(18).toString('base64')}`;
  const start = await raw.command(opMsg({ saslStart: 1, mechanism: 'SCRAM-SHA-256', payload: new Binary(Buffer.from(`n,,${clientFirstBare}`)), autoAuthorize: 1, $db: db }));
  assert.equal(start.doc['ok'], 1, JSON.stringify(start.doc));
  const serverFirst = Buffer.from((start.doc['payload'] as Binary).buffer).toString('utf8');
  const attrs = Object.fromEntries(serverFirst.split(',').map((p) => [p[0], p.slice(2)]));
  const salted = crypto.pbkdf2Sync(saslprep(password), Buffer.from(attrs['s'] as string, 'base64'), Number(attrs['i']), 32, 'sha256');
  const clientKey = hmac(salted, 'Client Key');
  const storedKey = crypto.createHash('sha256').update(clientKey).digest();
  const withoutProof = `c=biws,r=${attrs['r'] as string}`;
  const signature = hmac(storedKey, `${clientFirstBare},${serverFirst},${withoutProof}`);
  const proof = Buffer.from(clientKey.map((b, i) => b ^ (signature[i] as number))).toString('base64');
  let reply = await raw.command(opMsg({ saslContinue: 1, conversationId: start.doc['conversationId'], payload: new Binary(Buffer.from(`${withoutProof},p=${proof}`)), $db: db }));
  assert.equal(reply.doc['ok'], 1, JSON.stringify(reply.doc));
  while (reply.doc['done'] !== true) {
    reply = await raw.command(opMsg({ saslContinue: 1, conversationId: start.doc['conversationId'], payload: new Binary(Buffer.alloc(0)), $db: db }));
    assert.equal(reply.doc['ok'], 1, JSON.stringify(reply.doc));
  }
}
