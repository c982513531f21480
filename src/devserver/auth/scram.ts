/**
 * The server side of SCRAM (RFC 5802; SCRAM-SHA-256: RFC 7677), as mongod runs it
 * (src/mongo/db/auth/sasl_scram_server_conversation.cpp), and the stored credentials it
 * checks against (src/mongo/db/auth/user.h, SCRAMCredentials; the document shape of
 * admin.system.users: `credentials.SCRAM-SHA-256: {iterationCount, salt, storedKey,
 * serverKey}`).
 *
 * Hand-written: no npm library implements the server side of SCRAM with mongod's
 * quirks (SCRAM-SHA-1 salts the MD5 "user:mongo:password" digest, not the password).
 * Every primitive (PBKDF2, HMAC, hashes, constant-time compare, random nonces) is
 * node:crypto's; SCRAM-SHA-256 passwords go through @mongodb-js/saslprep, as the
 * drivers prepare them.
 */
import crypto from 'node:crypto';
import { saslprep } from '@mongodb-js/saslprep';

export type ScramMechanism = 'SCRAM-SHA-1' | 'SCRAM-SHA-256';
export const SCRAM_MECHANISMS: readonly ScramMechanism[] = Object.freeze(['SCRAM-SHA-1', 'SCRAM-SHA-256']);

/** mongod's defaults: scramIterationCount 10000, scramSHA256IterationCount 15000 (auth/sasl_options.h). */
const DEFAULT_ITERATIONS: Record<ScramMechanism, number> = { 'SCRAM-SHA-1': 10_000, 'SCRAM-SHA-256': 15_000 };

/** One mechanism's stored credential, as in admin.system.users (base64 strings). */
export interface ScramCredential {
  iterationCount: number;
  salt: string;
  storedKey: string;
  serverKey: string;
}

interface Hash {
  readonly name: 'sha1' | 'sha256';
  readonly length: number;
}

function hashOf(mechanism: ScramMechanism): Hash {
  return mechanism === 'SCRAM-SHA-1' ? { name: 'sha1', length: 20 } : { name: 'sha256', length: 32 };
}

const hmac = (hash: Hash, key: Buffer, text: string | Buffer): Buffer => crypto.createHmac(hash.name, key).update(text).digest();
const digest = (hash: Hash, data: Buffer): Buffer => crypto.createHash(hash.name).update(data).digest();

/**
 * What the mechanism salts: for SCRAM-SHA-1 mongod's legacy digest, hex MD5 of
 * "user:mongo:password" (auth/sasl_mechanism_registry / createPasswordDigest); for
 * SCRAM-SHA-256 the SASLprep'd password itself.
 */
export function processedPassword(mechanism: ScramMechanism, user: string, password: string): string {
  if (mechanism === 'SCRAM-SHA-256') return saslprep(password);
  return crypto.createHash('md5').update(`${user}:mongo:${password}`, 'utf8').digest('hex');
}

/** A fresh credential, as createUser and updateUser store it. */
export function makeCredential(mechanism: ScramMechanism, user: string, password: string, iterationCount = DEFAULT_ITERATIONS[mechanism]): ScramCredential {
  const hash = hashOf(mechanism);
  // mongod's salt is the hash length in random bytes (scram.h, generateSecrets).
  const salt = crypto.randomBytes(mechanism === 'SCRAM-SHA-1' ? 16 : 28);
  const salted = crypto.pbkdf2Sync(processedPassword(mechanism, user, password), salt, iterationCount, hash.length, hash.name);
  const clientKey = hmac(hash, salted, 'Client Key');
  return {
    iterationCount,
    salt: salt.toString('base64'),
    storedKey: digest(hash, clientKey).toString('base64'),
    serverKey: hmac(hash, salted, 'Server Key').toString('base64'),
  };
}

/** A failure mongod reports to the client only as AuthenticationFailed (its reason goes to its log). */
export class ScramFailure extends Error {}

/** RFC 5802 §5.1: `=2C` and `=3D` stand for `,` and `=` in a username. */
function decodeSaslName(name: string): string {
  if (/=(?!2C|3D)/.test(name)) throw new ScramFailure('Invalid SCRAM username encoding');
  return name.replace(/=2C/g, ',').replace(/=3D/g, '=');
}

/** `k=v,k=v` attributes; values may contain `=`. */
function attributes(message: string): Array<[string, string]> {
  return message.split(',').map((part) => {
    const eq = part.indexOf('=');
    if (eq !== 1) throw new ScramFailure(`Invalid SCRAM attribute: ${part.slice(0, 20)}`);
    return [part.slice(0, 1), part.slice(2)];
  });
}

export interface ScramStart {
  /** The user the client names (decoded). */
  readonly user: string;
  readonly clientNonce: string;
  readonly clientFirstBare: string;
}

/**
 * Parses client-first-message: `gs2-header client-first-message-bare`. mongod refuses
 * channel binding (`p=`) and an authzid other than the user
 * (sasl_scram_server_conversation.cpp, _firstStep).
 */
export function parseClientFirst(payload: string): ScramStart {
  const match = /^([ny]|p=[^,]*),(a=[^,]*)?,(.*)$/s.exec(payload);
  if (match === null) throw new ScramFailure('Incorrect SCRAM client first message');
  if ((match[1] as string).startsWith('p=')) throw new ScramFailure('Server does not support channel binding');
  const bare = match[3] as string;
  const attrs = attributes(bare);
  const [n, r] = attrs;
  if (n === undefined || n[0] !== 'n' || r === undefined || r[0] !== 'r') throw new ScramFailure('Incorrect SCRAM client first message');
  const user = decodeSaslName(n[1]);
  const authzid = match[2];
  if (authzid !== undefined && decodeSaslName(authzid.slice(2)) !== user) throw new ScramFailure('SCRAM user name and authzid do not match');
  if (r[1].length === 0) throw new ScramFailure('SCRAM client nonce is empty');
  return { user, clientNonce: r[1], clientFirstBare: bare };
}

/**
 * One conversation, after the client's first message names its user and that user's
 * stored credential for the mechanism was found (mongod fails a missing user, or one
 * without credentials for the mechanism, at this first step, with the same
 * AuthenticationFailed as a wrong password: sasl_scram_server_conversation.cpp).
 */
export class ScramServerConversation {
  readonly #hash: Hash;
  readonly #credential: ScramCredential;
  readonly #start: ScramStart;
  readonly #nonce: string;
  readonly #serverFirst: string;
  #done = false;

  constructor(readonly mechanism: ScramMechanism, start: ScramStart, credential: ScramCredential) {
    this.#hash = hashOf(mechanism);
    this.#start = start;
    this.#credential = credential;
    // mongod appends 24 random bytes, base64, to the client's nonce.
    this.#nonce = start.clientNonce + crypto.randomBytes(24).toString('base64');
    this.#serverFirst = `r=${this.#nonce},s=${this.#credential.salt},i=${this.#credential.iterationCount}`;
  }

  get user(): string {
    return this.#start.user;
  }

  /** server-first-message. */
  get serverFirst(): string {
    return this.#serverFirst;
  }

  /**
   * Checks client-final-message (`c=biws,r=<nonce>,p=<proof>`) and answers
   * server-final-message (`v=<signature>`). Throws ScramFailure on anything wrong.
   */
  finish(clientFinal: string): string {
    if (this.#done) throw new ScramFailure('SCRAM conversation already finished');
    this.#done = true;
    const attrs = attributes(clientFinal);
    const c = attrs[0];
    const r = attrs[1];
    const p = attrs[attrs.length - 1];
    if (c === undefined || c[0] !== 'c' || r === undefined || r[0] !== 'r' || p === undefined || p[0] !== 'p' || attrs.length < 3) {
      throw new ScramFailure('Incorrect SCRAM client final message');
    }
    // No channel binding: the GS2 header base64'd, "n,," or "y,,".
    if (c[1] !== 'biws' && c[1] !== 'eSws') throw new ScramFailure('Unexpected SCRAM channel binding attribute');
    if (r[1] !== this.#nonce) throw new ScramFailure('Unmatched SCRAM nonce received from client in second step');
    const withoutProof = clientFinal.slice(0, clientFinal.lastIndexOf(',p='));
    const authMessage = `${this.#start.clientFirstBare},${this.#serverFirst},${withoutProof}`;
    const storedKey = Buffer.from(this.#credential.storedKey, 'base64');
    const proof = Buffer.from(p[1], 'base64');
    const signature = hmac(this.#hash, storedKey, authMessage);
    if (proof.length !== signature.length) throw new ScramFailure('SCRAM authentication failed, storedKey mismatch');
    const clientKey = Buffer.alloc(proof.length);
    for (let i = 0; i < proof.length; i++) clientKey[i] = (proof[i] as number) ^ (signature[i] as number);
    if (!crypto.timingSafeEqual(digest(this.#hash, clientKey), storedKey)) {
      throw new ScramFailure('SCRAM authentication failed, storedKey mismatch');
    }
    const serverSignature = hmac(this.#hash, Buffer.from(this.#credential.serverKey, 'base64'), authMessage);
    return `v=${serverSignature.toString('base64')}`;
  }
}
