/**
 * The client commands after which what mongod knows of the client's identity may have
 * changed (src/mongo/db/auth/sasl_commands.cpp, authenticate_command.cpp,
 * logout_command.cpp; a handshake may carry speculativeAuthenticate, hello_auth.cpp).
 * The proxy forwards them untouched; it only forgets what it learnt of the client's
 * privileges (commands/authorization.ts).
 */
import type { HoldsWhole } from './client_message.js';

const AUTHENTICATION_COMMANDS: ReadonlySet<string> = new Set(['saslStart', 'saslContinue', 'authenticate', 'logout', 'hello', 'isMaster', 'ismaster']);

export function changesAuthentication(commandName: string): boolean {
  return AUTHENTICATION_COMMANDS.has(commandName);
}

/**
 * `holds` that also calls `changed` for the commands that may change the client's
 * authentication: the name is read for every command already, and a Set lookup is all
 * this adds to the forwarding path.
 */
export function watchingAuthentication(holds: HoldsWhole, changed: () => void): HoldsWhole {
  return (name, argumentType) => {
    if (AUTHENTICATION_COMMANDS.has(name)) changed();
    return holds(name, argumentType);
  };
}
