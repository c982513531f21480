/**
 * Why a stream cannot go on, each a kind the CLI maps to its own exit code
 * (src/cli/oplog_command.ts, docs/commands.md).
 */

/** The output directory disagrees with the request (--from against its last entry), or is not a stream. */
export class StreamRefusal extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StreamRefusal';
  }
}

/**
 * The oplog no longer holds the entry the stream must resume from: entries between it and
 * the oldest still there are lost (the capped oplog rolled over them, or a failover rolled
 * them back), so the stream cannot continue without a gap; a new full backup is needed.
 */
export class OplogGap extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OplogGap';
  }
}

/** The server has no oplog to stream: a standalone, or a replica-set member not yet initiated. */
export class NoOplog extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NoOplog';
  }
}
