/**
 * replSetInitiate, replSetGetStatus and replSetGetConfig: what `rs.initiate()`,
 * `rs.status()` and `rs.conf()` send, answered as mongod answers them for a one-node
 * set (src/mongo/db/repl/repl_set_commands.cpp; replication_coordinator_impl.cpp,
 * processReplSetInitiate and checkReplEnabledForCommand).
 */
import type { Document } from '../bson.js';
import type { Command, CommandContext } from './handler.js';
import type { ReplicaSet } from '../replication/replica_set.js';
import { checkInitiateConfig, defaultConfig, hostAndPortForMe } from '../replication/replset_config.js';
import { replSetStatus } from '../replication/replset_status.js';
import { isDocumentValue } from '../query/bsontype.js';
import { DevServerError, DevServerCodes } from '../dev_server_errors.js';

/** The set, for a command that needs it initiated (checkReplEnabledForCommand). */
function initiatedSet(ctx: CommandContext): ReplicaSet {
  const set = ctx.state.replSet;
  if (set === undefined) throw new DevServerError(DevServerCodes.NoReplicationEnabled, 'not running with --replSet');
  if (!set.initiated) {
    throw new DevServerError(DevServerCodes.NotYetInitialized, 'no replset config has been received', {
      extra: { info: 'run rs.initiate(...) if not yet done for the set' },
    });
  }
  return set;
}

function alreadyInitialized(): DevServerError {
  return new DevServerError(DevServerCodes.AlreadyInitialized, 'already initialized', {
    extra: { info: 'try querying local.system.replset to see current configuration' },
  });
}

async function replSetInitiate(cmd: Document, ctx: CommandContext): Promise<Document> {
  const { state } = ctx;
  const set = state.replSet;
  if (set === undefined) throw new DevServerError(DevServerCodes.NoReplicationEnabled, 'This node was not started with replication enabled.');
  if (set.initiated) throw alreadyInitialized();
  const given = cmd['replSetInitiate'];
  const reply: Document = {};
  let config: Document;
  // No config, or an empty one (mongosh's rs.initiate() sends {}): the default.
  if (isDocumentValue(given) && Object.keys(given).length > 0) {
    config = await checkInitiateConfig(given, set.name, state.listeningPort);
  } else {
    const me = hostAndPortForMe(state.options.bind, state.listeningPort);
    reply['info2'] = 'no configuration specified. Using a default configuration for the set';
    reply['me'] = me;
    config = defaultConfig(set.name, me);
  }
  // Another initiate may have won while the config's hosts were being resolved.
  if (set.initiated) throw alreadyInitialized();
  state.oplog = set.initiate(config);
  state.log.info({ replSet: set.name, me: set.me }, 'replica set initiated; this node is primary');
  // Monitors waiting in an awaitable hello see the new primary now, not in maxAwaitTimeMS.
  state.topology.bump();
  reply['ok'] = 1;
  return reply;
}

function replSetGetStatus(ctx: CommandContext): Document {
  const set = initiatedSet(ctx);
  const lastApplied = ctx.state.oplog?.lastApplied();
  if (lastApplied === undefined) throw new DevServerError(DevServerCodes.InternalError, 'the replica set has no oplog entry');
  return replSetStatus(set, lastApplied, ctx.state.startedAt);
}

function replSetGetConfig(ctx: CommandContext): Document {
  return { config: initiatedSet(ctx).config, ok: 1 };
}

export const replicationCommands: Command[] = [
  { names: ['replSetInitiate'], adminOnly: true, run: replSetInitiate },
  { names: ['replSetGetStatus'], adminOnly: true, run: (_cmd, ctx) => replSetGetStatus(ctx) },
  { names: ['replSetGetConfig'], adminOnly: true, run: (_cmd, ctx) => replSetGetConfig(ctx) },
];
