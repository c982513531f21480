/**
 * hello / isMaster: the handshake every driver starts with, and the awaitable form
 * its monitor repeats. An awaitable hello waits `maxAwaitTimeMS`, or less when the
 * topology changes (replSetInitiate), and answers again; the connection layer turns
 * that into a moreToCome stream when the client allowed exhaust. With --replSet the
 * reply carries the replica set's fields (replication/replica_set.ts).
 */
import type { Document } from '../bson.js';
import type { Command, CommandContext } from './handler.js';
import { MAX_WIRE_VERSION, MIN_WIRE_VERSION } from '../state.js';
import { MAX_BSON_OBJECT_SIZE, MAX_MESSAGE_SIZE } from '../../wire/constants.js';
import { negotiateCompressors } from '../../wire/compression.js';
import { toNumber } from '../query/values.js';
import { DevServerError, DevServerCodes } from '../dev_server_errors.js';
import { CommandError } from '../../errors.js';
import { saslStart } from './auth_commands.js';

/**
 * mongod's default `net.compression.compressors` is "snappy,zstd,zlib" (`mongod --help`:
 * `--networkMessageCompressors arg (=snappy,zstd,zlib)`). It answers with the client's
 * compressors that it has, in the client's order (MessageCompressorManager::serverNegotiate).
 */
const MONGOD_DEFAULT_COMPRESSORS: readonly string[] = Object.freeze(['snappy', 'zstd', 'zlib']);

/** True when the request asks to wait for a topology change (the monitor's form). */
export function isAwaitableHello(cmd: Document): boolean {
  return cmd['topologyVersion'] !== undefined && cmd['maxAwaitTimeMS'] !== undefined;
}

async function waitForTopologyChange(cmd: Document, ctx: CommandContext): Promise<void> {
  const maxAwait = toNumber(cmd['maxAwaitTimeMS']);
  if (!Number.isFinite(maxAwait) || maxAwait < 0) {
    throw new DevServerError(DevServerCodes.BadValue, 'maxAwaitTimeMS must be a non-negative integer');
  }
  const version = cmd['topologyVersion'] as { processId?: unknown; counter?: unknown } | null;
  // A client holding another process's or an older topologyVersion learns of it at once;
  // otherwise the reply waits for a change (replSetInitiate makes one) or maxAwaitTimeMS.
  if (version === null || !ctx.state.topology.isCurrent(version.processId, toNumber(version.counter))) return;
  await ctx.state.topology.waitForChange(maxAwait, ctx.signal);
}

/**
 * `saslSupportedMechs: "<db>.<user>"`: the mechanisms that user has credentials for;
 * no field for a user that does not exist (src/mongo/db/repl/hello/hello_auth.cpp,
 * handleHelloAuth).
 */
function supportedMechs(value: unknown, ctx: CommandContext): string[] | undefined {
  if (typeof value !== 'string') return undefined;
  const dot = value.indexOf('.');
  if (dot <= 0) return undefined;
  const user = ctx.state.users.find(value.slice(dot + 1), value.slice(0, dot));
  return user === undefined ? undefined : Object.keys(user.credentials);
}

/**
 * `speculativeAuthenticate: {saslStart: 1, mechanism, payload, db}`: saslStart's first
 * step, answered inside hello's reply. A failure leaves the field out and the driver
 * authenticates the ordinary way (hello_auth.cpp, doSpeculativeSaslStart: errors are
 * swallowed).
 */
function speculativeAuthenticate(value: unknown, ctx: CommandContext): Document | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const spec = value as Document;
  if (spec['saslStart'] === undefined || typeof spec['db'] !== 'string') return undefined;
  try {
    const { ok: _ok, ...reply } = saslStart(spec, { ...ctx, db: spec['db'] }, spec['db']);
    return reply;
  } catch (err) {
    if (err instanceof CommandError) return undefined;
    throw err;
  }
}

async function hello(cmd: Document, ctx: CommandContext, legacy: boolean): Promise<Document> {
  if (isAwaitableHello(cmd)) await waitForTopologyChange(cmd, ctx);
  const client = cmd['client'];
  if (client !== null && typeof client === 'object' && ctx.connection.clientMetadata === undefined) {
    ctx.connection.clientMetadata = client as Document;
  }
  // A client that says hello, or helloOk, is told "not primary" rather than "not master"
  // (src/mongo/db/repl/replication_info.cpp, setSupportsHello).
  if (!legacy || cmd['helloOk'] === true) ctx.connection.supportsHello = true;
  const reply: Document = {};
  if (cmd['helloOk'] === true) reply['helloOk'] = true;
  const { replSet, oplog } = ctx.state;
  if (replSet === undefined) {
    if (legacy) reply['ismaster'] = true;
    else reply['isWritablePrimary'] = true;
    reply['topologyVersion'] = ctx.state.topology.toDocument();
  } else {
    reply['topologyVersion'] = ctx.state.topology.toDocument();
    Object.assign(reply, replSet.helloFields(oplog?.lastApplied(), legacy));
  }
  reply['maxBsonObjectSize'] = MAX_BSON_OBJECT_SIZE;
  reply['maxMessageSizeBytes'] = MAX_MESSAGE_SIZE;
  reply['maxWriteBatchSize'] = 100_000;
  reply['localTime'] = new Date();
  reply['logicalSessionTimeoutMinutes'] = 30;
  reply['connectionId'] = ctx.connection.id;
  reply['minWireVersion'] = MIN_WIRE_VERSION;
  reply['maxWireVersion'] = MAX_WIRE_VERSION;
  reply['readOnly'] = false;
  const offered = cmd['compression'];
  if (Array.isArray(offered)) {
    const names = offered.filter((c): c is string => typeof c === 'string');
    const agreed = negotiateCompressors(names, MONGOD_DEFAULT_COMPRESSORS);
    // The handshake spec: no overlap means no `compression` field at all.
    if (agreed.length > 0) reply['compression'] = agreed;
  }
  const mechs = supportedMechs(cmd['saslSupportedMechs'], ctx);
  if (mechs !== undefined) reply['saslSupportedMechs'] = mechs;
  const speculative = speculativeAuthenticate(cmd['speculativeAuthenticate'], ctx);
  if (speculative !== undefined) reply['speculativeAuthenticate'] = speculative;
  reply['ok'] = 1;
  return reply;
}

export const handshakeCommands: Command[] = [
  { names: ['hello'], run: (cmd, ctx) => hello(cmd, ctx, false) },
  { names: ['isMaster', 'ismaster'], run: (cmd, ctx) => hello(cmd, ctx, true) },
];

