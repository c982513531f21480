/**
 * `--advertise host:port`: mongod's answers to a handshake name the proxy instead of the
 * member behind it.
 *
 * A driver given `replicaSet=` checks every `hello` it gets: a reply whose `me` is not
 * the address it dialled makes it drop that address and dial the members the reply
 * lists (mongodb/specifications, server-discovery-and-monitoring tests
 * rs/primary_mismatched_me and rs/secondary_mismatched_me). Behind a proxy those are the server's own addresses, so the
 * driver would leave the proxy at its first handshake. Here the member the proxy relays
 * to (the reply's `me`) becomes the advertised address wherever it is named: `me`,
 * `hosts`, `passives`, `arbiters`, `primary`. The other members are left out: the proxy
 * reaches only its own, and a driver told of the others would dial them directly,
 * around the proxy.
 *
 * Only whole replies to a handshake come here (reply_splicer.ts decides from the header
 * which those are); everything else mongod sends passes untouched.
 */
import { deserialize, serialize, type Document as BsonDocument } from 'bson';
import { OpCode, OpMsgFlag } from '../wire/constants.js';
import { decodeOpCompressed, encodeOpCompressed, readOpCompressedHeader } from '../wire/compression.js';
import { decodeOpMsg, encodeOpMsg, type OpMsgSection } from '../wire/op_msg.js';
import { decodeOpReply, encodeOpReply } from '../wire/op_reply.js';

type Document = Record<string, unknown>;

/** What became of one handshake reply. */
export interface AdvertisedReply {
  /** The message to pass on: mongod's own bytes when nothing was to change. */
  readonly frame: Buffer;
  /** Whether mongod flagged it moreToCome: the next reply on the stream answers it (awaitable hello). */
  readonly moreToCome: boolean;
  readonly rewritten: boolean;
}

/** Lossless: numbers keep their BSON types and regexes stay BSONRegExp, so what is not edited is re-encoded as it came. */
const LOSSLESS = { promoteValues: false, promoteBuffers: false, bsonRegExp: true } as const;

/**
 * Rewrites the addresses in one whole reply of mongod's to a handshake: an OP_MSG, an
 * OP_REPLY (legacy `isMaster` over OP_QUERY), or either inside an OP_COMPRESSED (mongod
 * answers a compressed request compressed with the same compressor, whatever the
 * command: src/mongo/transport/service_state_machine.cpp, `compressorMgr.compressMessage`
 * with the request's compressor id). A reply that names no member (a standalone, or a
 * member whose set is not initiated: no `me`) or that does not decode passes as it came.
 */
export function advertiseInReply(message: Buffer, advertised: string): AdvertisedReply {
  try {
    if (message.readInt32LE(12) !== OpCode.Compressed) return advertiseUncompressed(message, advertised);
    const { compressorId } = readOpCompressedHeader(message);
    const inner = advertiseUncompressed(decodeOpCompressed(message), advertised);
    if (!inner.rewritten) return { ...inner, frame: message };
    return { ...inner, frame: encodeOpCompressed(inner.frame, compressorId) };
  } catch {
    // Not ours to judge: the client gets mongod's bytes and its own driver's verdict on them.
    return { frame: message, moreToCome: moreToComeOf(message), rewritten: false };
  }
}

function advertiseUncompressed(message: Buffer, advertised: string): AdvertisedReply {
  const opCode = message.readInt32LE(12);
  if (opCode === OpCode.Msg) {
    const msg = decodeOpMsg(message);
    const moreToCome = (msg.flags & OpMsgFlag.MoreToCome) !== 0;
    let rewritten = false;
    const sections = msg.sections.map((section): OpMsgSection => {
      if (section.kind !== 0) return section;
      const body = advertiseInDocument(section.body, advertised);
      if (body === undefined) return section;
      rewritten = true;
      return { kind: 0, body };
    });
    if (!rewritten) return { frame: message, moreToCome, rewritten };
    const checksum = (msg.flags & OpMsgFlag.ChecksumPresent) !== 0;
    return { frame: encodeOpMsg({ ...msg, sections }, { checksum }), moreToCome, rewritten };
  }
  if (opCode === OpCode.Reply) {
    const reply = decodeOpReply(message);
    const [first, ...rest] = reply.documents;
    const body = first && advertiseInDocument(first, advertised);
    if (body === undefined) return { frame: message, moreToCome: false, rewritten: false };
    return { frame: encodeOpReply({ ...reply, documents: [body, ...rest] }), moreToCome: false, rewritten: true };
  }
  return { frame: message, moreToCome: false, rewritten: false };
}

/** The re-encoded reply document, or undefined when it names no member to rewrite. */
function advertiseInDocument(bytes: Buffer, advertised: string): Buffer | undefined {
  const doc = deserialize(bytes, LOSSLESS) as Document;
  if (!advertiseAddresses(doc, advertised)) return undefined;
  return Buffer.from(serialize(doc as BsonDocument, { ignoreUndefined: false }));
}

/**
 * Rewrites a hello/isMaster reply document in place; returns whether it named a member.
 * The member is the reply's own `me`; every list keeps it, as the advertised address,
 * and drops the others; `primary` is kept only when it is that member.
 */
export function advertiseAddresses(doc: Document, advertised: string): boolean {
  const me = doc['me'];
  if (typeof me !== 'string') return false;
  doc['me'] = advertised;
  for (const field of ['hosts', 'passives', 'arbiters']) {
    const list = doc[field];
    if (Array.isArray(list)) doc[field] = list.includes(me) ? [advertised] : [];
  }
  if (doc['primary'] === me) doc['primary'] = advertised;
  else if ('primary' in doc) delete doc['primary'];
  return true;
}

function moreToComeOf(message: Buffer): boolean {
  return message.length >= 20 && message.readInt32LE(12) === OpCode.Msg && (message.readUInt32LE(16) & OpMsgFlag.MoreToCome) !== 0;
}
