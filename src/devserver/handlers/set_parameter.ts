/**
 * `setParameter`: the runtime parameters the dev server honours. Only those: a parameter
 * it would accept and ignore would let a test believe it had changed something.
 * Checks and wording as mongod's src/mongo/db/commands/parameters.cpp (CmdSetParameter):
 * every named parameter is checked before any is set, and the reply's `was` is the first
 * one's previous value.
 */
import { Long } from 'bson';
import type { Document } from '../bson.js';
import type { Command, CommandContext } from './handler.js';
import type { ServerState } from '../state.js';
import { isGenericArgument } from '../../wire/generic_arguments.js';
import { bsonTypeOf } from '../query/bsontype.js';
import { DevServerError, DevServerCodes } from '../dev_server_errors.js';

interface Settable {
  read(state: ServerState): unknown;
  /** Throws BadValue for a value the parameter cannot take. */
  parse(value: unknown): number;
  write(state: ServerState, value: number): void;
}

/** What an `int`/`long`/`double` BSON value holds, or undefined for other types. */
function numberOf(value: unknown): number | undefined {
  const type = bsonTypeOf(value);
  if (type !== 'int' && type !== 'long' && type !== 'double') return undefined;
  return Number(typeof value === 'object' && value !== null ? (value as { valueOf(): unknown }).valueOf() : value);
}

export const SETTABLE: Readonly<Record<string, Settable>> = {
  // server_parameters.idl: cursorTimeoutMillis, a long; the ClientCursorMonitor reads it.
  cursorTimeoutMillis: {
    read: (state) => Long.fromNumber(state.cursors.idleTimeoutMs),
    parse(value) {
      const n = numberOf(value);
      if (n === undefined || !Number.isInteger(n) || n < 0) {
        throw new DevServerError(DevServerCodes.BadValue, `Invalid value for cursorTimeoutMillis: ${String(value)}`);
      }
      return n;
    },
    write: (state, ms) => state.cursors.setIdleTimeout(ms),
  },
};

function setParameter(cmd: Document, ctx: CommandContext): Document {
  const requested = Object.entries(cmd).filter(([name]) => name !== 'setParameter' && !isGenericArgument(name));
  if (requested.length === 0) {
    throw new DevServerError(DevServerCodes.InvalidOptions, 'no option found to set, use help:true to see options ');
  }
  const parsed = requested.map(([name, value]) => {
    const param = SETTABLE[name];
    if (param === undefined) {
      throw new DevServerError(DevServerCodes.InvalidOptions, `attempted to set unrecognized parameter [${name}], use help:true to see options `);
    }
    return { name, param, value: param.parse(value) };
  });
  const reply: Document = {};
  for (const [i, { name, param, value }] of parsed.entries()) {
    if (i === 0) reply['was'] = param.read(ctx.state);
    param.write(ctx.state, value);
    ctx.state.log.info({ parameter: name, value }, 'setParameter');
  }
  reply['ok'] = 1;
  return reply;
}

export const setParameterCommands: Command[] = [{ names: ['setParameter'], adminOnly: true, run: setParameter }];
