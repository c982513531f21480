/**
 * The one way this module says "valid, but not here": a NotImplemented error naming the
 * feature, instead of an answer that might be silently wrong.
 */
import { ErrorCodes, CommandError } from '../../errors.js';

export function notImplemented(feature: string): CommandError {
  return new CommandError(
    ErrorCodes.NotImplemented,
    `${feature} is not supported by the hotbackup dev server`,
  );
}

export function badValue(message: string): CommandError {
  return new CommandError(ErrorCodes.BadValue, message);
}
