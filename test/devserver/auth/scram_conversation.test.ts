/**
 * The SCRAM server conversation on its own, driven by a client written from RFC 5802
 * here (node:crypto), and checked against the stored-credential shape mongod uses.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { makeCredential, parseClientFirst, processedPassword, ScramFailure, ScramServerConversation, type ScramMechanism } from '../../../src/devserver/auth/scram.js';

function clientProof(mechanism: ScramMechanism, user: string, password: string, clientFirstBare: string, serverFirst: string): { final: string; serverSignature: string } {
  const hash = mechanism === 'SCRAM-SHA-1' ? 'sha1' : 'sha256';
  const attrs = Object.fromEntries(serverFirst.split(',').map((p) => [p[0], p.slice(2)]));
  const salted = crypto.pbkdf2Sync(processedPassword(mechanism, user, password), Buffer.from(attrs['s'] as string, 'base64'), Number(attrs['i']), hash === 'sha1' ? 20 : 32, hash);
  const clientKey = crypto.createHmac(hash, salted).update('Client Key').digest();
  const storedKey = crypto.createHash(hash).update(clientKey).digest();
  const withoutProof = `c=biws,r=${attrs['r'] as string}`;
  const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
  const signature = crypto.createHmac(hash, storedKey).update(authMessage).digest();
  const proof = Buffer.from(clientKey.map((b, i) => b ^ (signature[i] as number)));
  const serverKey = crypto.createHmac(hash, salted).update('Server Key').digest();
  return { final: `${withoutProof},p=${proof.toString('base64')}`, serverSignature: crypto.createHmac(hash, serverKey).update(authMessage).digest('base64') };
}

for (const mechanism of ['SCRAM-SHA-1', 'SCRAM-SHA-256'] as const) {
  describe(`${mechanism} server conversation`, () => {
    const credential = makeCredential(mechanism, 'alice', 'sécret', 4096);

    it('stores mongod-shaped credentials', () => {
      assert.deepEqual(Object.keys(credential).sort(), ['iterationCount', 'salt', 'serverKey', 'storedKey']);
      assert.equal(Buffer.from(credential.storedKey, 'base64').length, mechanism === 'SCRAM-SHA-1' ? 20 : 32);
    });

    it('accepts the right password and proves itself to the client', () => {
      const first = parseClientFirst('n,,n=alice,r=clientnonce');
      const conversation = new ScramServerConversation(mechanism, first, credential);
      assert.match(conversation.serverFirst, /^r=clientnonce[^,]+,s=[^,]+,i=4096$/);
      const { final, serverSignature } = clientProof(mechanism, 'alice', 'sécret', first.clientFirstBare, conversation.serverFirst);
      assert.equal(conversation.finish(final), `v=${serverSignature}`);
    });

    it('refuses a wrong password', () => {
      const first = parseClientFirst('n,,n=alice,r=clientnonce');
      const conversation = new ScramServerConversation(mechanism, first, credential);
      const { final } = clientProof(mechanism, 'alice', 'wrong', first.clientFirstBare, conversation.serverFirst);
      assert.throws(() => conversation.finish(final), ScramFailure);
    });

    it('refuses a nonce the server did not issue', () => {
      const first = parseClientFirst('n,,n=alice,r=clientnonce');
      const conversation = new ScramServerConversation(mechanism, first, credential);
      const { final } = clientProof(mechanism, 'alice', 'sécret', first.clientFirstBare, conversation.serverFirst.replace(/^r=[^,]+/, 'r=clientnonceFORGED'));
      assert.throws(() => conversation.finish(final), /Unmatched SCRAM nonce/);
    });
  });
}

describe('SCRAM client-first parsing', () => {
  it('refuses channel binding and a mismatched authzid, and decodes =2C and =3D', () => {
    assert.throws(() => parseClientFirst('p=tls-unique,,n=a,r=x'), /channel binding/);
    assert.throws(() => parseClientFirst('n,a=bob,n=alice,r=x'), /authzid/);
    assert.equal(parseClientFirst('n,,n=a=2Cb=3Dc,r=x').user, 'a,b=c');
    assert.throws(() => parseClientFirst('n,,n=a=ZZ,r=x'), ScramFailure);
  });
});
