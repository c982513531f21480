/**
 * The client commands after which what mongod knows of the client's identity may have
 * changed (src/mongo/db/auth/sasl_commands.cpp, authenticate_command.cpp,
 * logout_command.cpp; a handshake may carry speculativeAuthenticate, hello_auth.cpp).
 * The proxy forwards them untouched; it only forgets what it learnt of the client's
 * privileges (commands/authorization.ts).
 */
const AUTHENTICATION_COMMANDS: ReadonlySet<string> = new Set(['saslStart', 'saslContinue', 'authenticate', 'logout', 'hello', 'isMaster', 'ismaster']);

export function changesAuthentication(commandName: string): boolean {
  return AUTHENTICATION_COMMANDS.has(commandName);
}
