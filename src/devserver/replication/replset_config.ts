/**
 * The replica set configuration of a single-node set: the default one replSetInitiate
 * builds when given none, and the checks mongod makes on one it is given, with
 * mongod's wording. Every refusal is InvalidReplicaSetConfig (93), as
 * processReplSetInitiate reports a parse or validation failure
 * (src/mongo/db/repl/replication_coordinator_impl.cpp).
 */
import dns from 'node:dns/promises';
import os from 'node:os';
import net from 'node:net';
import { Long, ObjectId } from 'bson';
import type { Document } from '../bson.js';
import { isDocumentValue, typeName } from '../query/bsontype.js';
import { isNumeric, toNumber } from '../query/values.js';
import { DevServerError, DevServerCodes } from '../dev_server_errors.js';

/** mongod's default port, which a member host without one means (HostAndPort::parse). */
const DEFAULT_PORT = 27017;

function invalid(message: string): DevServerError {
  return new DevServerError(DevServerCodes.InvalidReplicaSetConfig, message);
}

/**
 * The host:port replSetInitiate puts in a default config (someHostAndPortForMe in
 * src/mongo/db/repl/repl_set_commands.cpp): the bind address a client can reach, or the
 * machine's hostname when bound to every interface.
 */
export function hostAndPortForMe(bind: string, port: number): string {
  if (bind === '0.0.0.0' || bind === '::' || bind === '') return `${os.hostname()}:${port}`;
  return `${net.isIPv6(bind) ? `[${bind}]` : bind}:${port}`;
}

export function splitHostAndPort(host: string): { host: string; port: number } {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(host);
  if (bracketed !== null) return { host: bracketed[1] as string, port: bracketed[2] === undefined ? DEFAULT_PORT : Number(bracketed[2]) };
  const colon = host.lastIndexOf(':');
  if (colon < 0 || net.isIPv6(host)) return { host, port: DEFAULT_PORT };
  return { host: host.slice(0, colon), port: Number(host.slice(colon + 1)) };
}

/**
 * Whether `host` names this process: same port, and an address of one of this
 * machine's interfaces, as mongod's isSelf decides it first
 * (src/mongo/db/repl/isself.cpp).
 */
export async function isSelf(host: string, port: number): Promise<boolean> {
  const parsed = splitHostAndPort(host);
  if (parsed.port !== port) return false;
  let addresses: string[];
  try {
    addresses = (await dns.lookup(parsed.host, { all: true })).map((a) => a.address);
  } catch {
    return false;
  }
  const local = new Set(Object.values(os.networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address)));
  return addresses.some((a) => local.has(a) || a === '127.0.0.1' || a === '::1');
}

/** One member as mongod 7.0 stores and shows it (rs.conf()). */
function memberDocument(id: number, host: string): Document {
  return {
    _id: id,
    host,
    arbiterOnly: false,
    buildIndexes: true,
    hidden: false,
    priority: 1,
    tags: {},
    secondaryDelaySecs: Long.fromNumber(0),
    votes: 1,
  };
}

/** The whole config as mongod 7.0 stores it in local.system.replset after initiate. */
function configDocument(name: string, memberId: number, host: string): Document {
  return {
    _id: name,
    version: 1,
    term: 1,
    members: [memberDocument(memberId, host)],
    protocolVersion: Long.fromNumber(1),
    writeConcernMajorityJournalDefault: true,
    settings: {
      chainingAllowed: true,
      heartbeatIntervalMillis: 2000,
      heartbeatTimeoutSecs: 10,
      electionTimeoutMillis: 10000,
      catchUpTimeoutMillis: -1,
      catchUpTakeoverDelayMillis: 30000,
      getLastErrorModes: {},
      getLastErrorDefaults: { w: 1, wtimeout: 0 },
      replicaSetId: new ObjectId(),
    },
  };
}

/** replSetInitiate without a config: this node alone (repl_set_commands.cpp, CmdReplSetInitiate). */
export function defaultConfig(name: string, me: string): Document {
  return configDocument(name, 0, me);
}

function requiredField(config: Document, field: string): unknown {
  const value = config[field];
  // The IDL parser's wording (src/mongo/idl/idl_parser.cpp, throwMissingField).
  if (value === undefined) throw invalid(`BSON field 'ReplSetConfig.${field}' is missing but a required field`);
  return value;
}

function wrongType(field: string, value: unknown, expected: string): DevServerError {
  return invalid(`BSON field '${field}' is the wrong type '${typeName(value)}', expected type '${expected}'`);
}

/**
 * A config given to replSetInitiate, checked as mongod checks it, then completed with
 * mongod's defaults. The dev server is one node: a config naming other members is
 * refused rather than left waiting for members that will never answer.
 */
export async function checkInitiateConfig(config: Document, setName: string, port: number): Promise<Document> {
  const id = requiredField(config, '_id');
  if (typeof id !== 'string') throw wrongType('ReplSetConfig._id', id, 'string');
  const version = config['version'] ?? 1;
  if (!isNumeric(version)) throw wrongType('ReplSetConfig.version', version, 'int');
  const members = requiredField(config, 'members');
  if (!Array.isArray(members)) throw wrongType('ReplSetConfig.members', members, 'array');
  // processReplSetInitiate compares the set name with --replSet before anything else.
  if (id !== setName) {
    throw invalid(`Rejecting initiate with a set name that differs from command line set name, initiate set name: ${id}, command line set name: ${setName}`);
  }
  // validateConfigForInitiate (src/mongo/db/repl/repl_set_config_checks.cpp); the double
  // space is mongod's.
  if (toNumber(version) !== 1) {
    throw invalid(`Configuration used to initiate a replica set must  have version 1, but found ${toNumber(version)}`);
  }
  const hosts: Array<{ id: number; host: string }> = [];
  for (const [index, member] of (members as unknown[]).entries()) {
    if (!isDocumentValue(member)) throw wrongType(`ReplSetConfig.members.${index}`, member, 'object');
    const memberId = requiredMemberField(member, '_id');
    const host = requiredMemberField(member, 'host');
    if (!isNumeric(memberId) || !Number.isInteger(toNumber(memberId))) throw wrongType('MemberConfig._id', memberId, 'int');
    if (typeof host !== 'string') throw wrongType('MemberConfig.host', host, 'string');
    hosts.push({ id: toNumber(memberId), host });
  }
  if (hosts.length === 0) throw invalid('Replica set configuration must contain at least one non-arbiter member with priority > 0');
  const selves: typeof hosts = [];
  for (const member of hosts) if (await isSelf(member.host, port)) selves.push(member);
  const self = selves[0];
  // findSelfInConfig (repl_set_config_checks.cpp).
  if (self === undefined) {
    throw invalid(`No host described in new configuration with {version: 1, term: 0} for replica set ${setName} maps to this node`);
  }
  if (hosts.length > 1) {
    throw invalid(
      `the hotbackup dev server is a single-node replica set: the configuration must have one member, this node (${self.host}), but it has ${hosts.length}`,
    );
  }
  return configDocument(setName, self.id, self.host);
}

function requiredMemberField(member: Document, field: string): unknown {
  const value = member[field];
  if (value === undefined) throw invalid(`BSON field 'MemberConfig.${field}' is missing but a required field`);
  return value;
}
