/**
 * Where authorization will live. On stock mongod Percona's privilege actions do not
 * exist, so each command maps onto a real one (docs/commands.md): backupStart and
 * backupThrottle and backupAbort need `fsync` on the cluster resource (hostManager,
 * root); backupStatus needs `serverStatus` (clusterMonitor); a killOp of the backup's
 * opid needs `killop` (hostManager, clusterManager), as any killOp does.
 *
 * Today every client is allowed: the proxy binds to 127.0.0.1 by default and does
 * not yet see the client's authenticated user. The issue that adds authentication
 * fills in `authorize`; the commands already call it with the action they need.
 */
import type { ClientInfo } from '../proxy/interceptor.js';

/** `killop` is killOp's own action (the backup's opid is killed as mongod's killOp would need it). */
export type ClusterAction = 'fsync' | 'serverStatus' | 'killop';

export function authorize(_client: ClientInfo, _action: ClusterAction): void {
  // Intentionally permissive until authentication is wired through the proxy.
}
