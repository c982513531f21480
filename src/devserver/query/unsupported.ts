/**
 * The one way this module says "valid, but not here": a NotImplemented error naming the
 * feature, instead of an answer that might be silently wrong.
 */
import { ErrorCodes, MongoServerError } from '../../errors.js';

export function notImplemented(feature: string): MongoServerError {
  return new MongoServerError(
    ErrorCodes.NotImplemented,
    `${feature} is not supported by the hotbackup dev server`,
  );
}

export function badValue(message: string): MongoServerError {
  return new MongoServerError(ErrorCodes.BadValue, message);
}
