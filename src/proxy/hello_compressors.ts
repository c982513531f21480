/**
 * Keeps the client from negotiating a compressor the proxy cannot read.
 *
 * Drivers list the compressors they can use in their first `hello`/`isMaster`, and
 * mongod picks from that list. If it picked one the proxy cannot decompress, every
 * later message would be opaque to it, backup commands included. So the proxy strips
 * such names from the handshake it forwards: mongod then never agrees to them and the
 * client never uses them. Everything else in the message is kept: the same requestID
 * and flags, the other sections byte for byte, a checksum recomputed if there was one.
 * A handshake with nothing to strip (the common case) is not touched at all.
 */
import { OpCode, OpMsgFlag } from '../wire/constants.js';
import { compressorIdFromName } from '../wire/compression.js';
import { decodeDocument, encodeDocument, type Document } from '../wire/command_message.js';
import { wrappedCommand } from '../wire/legacy_command.js';
import { decodeOpMsg, encodeOpMsg } from '../wire/op_msg.js';
import { decodeOpQuery, encodeOpQuery } from '../wire/op_query.js';
import type { PeekedCommand } from '../wire/peek.js';

/** The commands that negotiate compression (handshake spec, OP_COMPRESSED spec). */
const HANDSHAKE_COMMANDS: ReadonlySet<string> = new Set(['hello', 'isMaster', 'ismaster']);

/** Whether a command of this name may carry a `compression` list to strip: it must be read whole. */
export function isHandshakeCommand(commandName: string): boolean {
  return HANDSHAKE_COMMANDS.has(commandName);
}

export interface StrippedHandshake {
  /** The message to forward instead of the client's. */
  frame: Buffer;
  /** The compressor names taken out, in the client's order. */
  removed: string[];
}

/**
 * Returns the handshake in `frame` without the compressors we cannot decompress, or
 * undefined when there is nothing to strip: not a handshake, no such compressor, or a
 * message mongod will refuse anyway (bad checksum, malformed), which it should see as
 * the client sent it.
 */
export function stripUnreadableCompressors(frame: Buffer, peeked: PeekedCommand): StrippedHandshake | undefined {
  // The handshake is never compressed (OP_COMPRESSED spec); a compressed one comes after
  // negotiation and cannot change it.
  if (!isHandshakeCommand(peeked.commandName) || peeked.compressorId !== undefined) return undefined;
  try {
    const stripped = editHandshake(frame, peeked.opCode, stripCompression);
    return stripped && { frame: stripped.frame, removed: stripped.edited };
  } catch {
    return undefined;
  }
}

/**
 * Applies `edit` to the command document of an uncompressed handshake `frame` (OP_MSG,
 * or OP_QUERY wrapped or not) and re-encodes it; undefined when `edit` changed nothing
 * (it returned undefined). Everything else is kept: the same requestID and flags, the
 * other sections byte for byte, a checksum recomputed if there was one. Throws on a
 * malformed message.
 */
export function editHandshake<T>(frame: Buffer, opCode: number, edit: (command: Document) => T | undefined): EditedHandshake<T> | undefined {
  return opCode === OpCode.Msg ? editOpMsg(frame, edit) : editOpQuery(frame, edit);
}

export interface EditedHandshake<T> {
  frame: Buffer;
  /** What `edit` returned. */
  edited: T;
}

function editOpMsg<T>(frame: Buffer, edit: (command: Document) => T | undefined): EditedHandshake<T> | undefined {
  const msg = decodeOpMsg(frame);
  let edited: T | undefined;
  const sections = msg.sections.map((section) => {
    if (section.kind !== 0) return section;
    const body = decodeDocument(section.body);
    edited = edit(body);
    return edited === undefined ? section : { kind: 0 as const, body: encodeDocument(body) };
  });
  if (edited === undefined) return undefined;
  const checksum = (msg.flags & OpMsgFlag.ChecksumPresent) !== 0;
  return { frame: encodeOpMsg({ ...msg, sections }, { checksum }), edited };
}

function editOpQuery<T>(frame: Buffer, edit: (command: Document) => T | undefined): EditedHandshake<T> | undefined {
  const query = decodeOpQuery(frame);
  const outer = decodeDocument(query.query);
  // As in the peek: a command wrapped with a read preference is the inner document.
  const command = wrappedCommand(outer) ?? outer;
  const edited = edit(command);
  if (edited === undefined) return undefined;
  return { frame: encodeOpQuery({ ...query, query: encodeDocument(outer) }), edited };
}

/** Removes unreadable names from `command.compression` in place; undefined if none. */
function stripCompression(command: Document): string[] | undefined {
  const offered = command['compression'];
  if (!Array.isArray(offered)) return undefined;
  // Non-strings stay: mongod refuses them with its own error.
  const unreadable = (name: unknown): name is string => typeof name === 'string' && compressorIdFromName(name) === undefined;
  const removed = offered.filter(unreadable);
  if (removed.length === 0) return undefined;
  command['compression'] = offered.filter((name) => !unreadable(name));
  return removed;
}
