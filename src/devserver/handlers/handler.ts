/** The contract between the dispatcher and each command implementation. */
import type { Document } from '../bson.js';
import type { ServerState } from '../state.js';
import type { SessionId } from '../sessions.js';
import type { AuthSession } from '../auth/session.js';

export interface ConnectionInfo {
  readonly id: number;
  readonly remoteAddress: string;
  readonly localAddress: string;
  /** The `client` document from the handshake, when the driver sent one. */
  clientMetadata: Document | undefined;
  /** The client said hello (or helloOk): errors say "not primary", not "not master". */
  supportsHello: boolean;
  /** Who is authenticated on the connection (only consulted with `--auth`). */
  readonly auth: AuthSession;
}

export interface CommandContext {
  readonly state: ServerState;
  readonly connection: ConnectionInfo;
  /** The database the command runs against (`$db`, or the OP_QUERY namespace). */
  readonly db: string;
  /** Aborted when the client disconnects or the server shuts down. */
  readonly signal: AbortSignal;
  /** The command's session (`lsid.id`), set by the dispatcher; undefined outside any session. */
  readonly lsid?: SessionId;
}

export interface Command {
  /** Every spelling the command answers to (isMaster and ismaster are both real). */
  readonly names: readonly string[];
  /** mongod refuses these outside `admin` with code 13. */
  readonly adminOnly?: boolean;
  /** Writers wait while the server is fsync-locked. */
  readonly isWrite?: boolean;
  run(cmd: Document, ctx: CommandContext): Document | Promise<Document>;
}
