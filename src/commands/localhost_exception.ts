/**
 * mongod's localhost exception, kept to the clients it was meant for.
 *
 * While mongod --auth has no user, it lets a client connected from the same machine
 * create the first one without authenticating (src/mongo/db/auth/
 * authz_session_external_state_server_common.cpp, `_checkShouldAllowLocalhost` and
 * `shouldAllowLocalhost`: `client->getIsLocalHostConnection()` and no privilege
 * document yet; authorization_session_impl.cpp grants such a client createUser and
 * createRole on admin). Every connection the proxy opens to mongod comes from
 * 127.0.0.1, so mongod would grant that to any client that reaches the proxy, from
 * anywhere. The proxy holds `createUser` and `createRole` whole (rare commands: nothing
 * else is read on their account) and, for a client that is not itself on loopback,
 * answers what mongod answers a remote client that has not authenticated: 13, "Command
 * createUser requires authentication" (src/mongo/db/commands.cpp, checkAuthorization).
 * Everything else about them is mongod's: a loopback client, an authenticated one, a
 * mongod without --auth, all go on untouched.
 */
import type { ClientInfo, Upstream } from '../proxy/interceptor.js';
import type { Authorization } from './authorization.js';

/** The commands the localhost exception lets an unauthenticated local client run. */
export const FIRST_USER_COMMANDS: ReadonlySet<string> = new Set(['createUser', 'createRole']);

/**
 * Whether `host:port` (ClientInfo.remoteAddress) is a loopback address, as mongod's
 * isLocalHostConnection sees it: 127.0.0.0/8, ::1, and 127.x mapped into IPv6. An
 * address that cannot be read is not loopback (fail closed).
 */
export function isLoopbackClient(remoteAddress: string): boolean {
  const colon = remoteAddress.lastIndexOf(':');
  const host = colon === -1 ? remoteAddress : remoteAddress.slice(0, colon);
  return host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host) || /^::ffff:127\.\d+\.\d+\.\d+$/i.test(host);
}

/** Resolves when mongod may judge `name` from this client; throws 13 where mongod's localhost exception must not reach. */
export async function checkLocalhostException(authorization: Authorization, client: ClientInfo, upstream: Upstream, name: string): Promise<void> {
  if (isLoopbackClient(client.remoteAddress)) return;
  await authorization.requireAuthenticated(client, upstream, name);
}
