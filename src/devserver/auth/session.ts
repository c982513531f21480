/**
 * One connection's authentication: who is authenticated on it, and the SASL
 * conversation in progress (mongod: AuthorizationSession and AuthenticationSession,
 * src/mongo/db/auth/authorization_session.h, authentication_session.h).
 */
import type { ScramServerConversation } from './scram.js';
import type { RoleName } from './privileges.js';

export interface Conversation {
  readonly id: number;
  readonly db: string;
  readonly scram: ScramServerConversation;
  /** The client asked to skip the final empty exchange (`options.skipEmptyExchange`). */
  readonly skipEmptyExchange: boolean;
  /** `proof`: waiting for client-final; `empty`: proof checked, waiting for the empty message. */
  step: 'proof' | 'empty';
}

export interface AuthenticatedUser {
  readonly user: string;
  readonly db: string;
}

export class AuthSession {
  /** mongod 6.0+ holds at most one authenticated user per connection. */
  user: AuthenticatedUser | undefined;
  conversation: Conversation | undefined;
  #nextConversationId = 1;

  constructor(
    /** Whether the client connected from a loopback address (the localhost exception). */
    readonly fromLocalhost: boolean,
  ) {}

  nextConversationId(): number {
    return this.#nextConversationId++;
  }

  logout(): void {
    this.user = undefined;
    this.conversation = undefined;
  }
}

export type { RoleName };

/** Loopback, as mongod's localhost exception sees it (transport/session: isLocalHost). */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}
