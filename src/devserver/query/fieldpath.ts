/**
 * mongod's FieldPath validation, shared by sort keys, projections and aggregation paths.
 */
import { DevServerError, DevServerCodes } from '../dev_server_errors.js';

export function validateFieldPath(path: string): void {
  if (path === '') throw new DevServerError(DevServerCodes.FieldPathEmpty, 'FieldPath cannot be constructed with empty string');
  if (path.endsWith('.')) throw new DevServerError(DevServerCodes.FieldPathTrailingDot, "FieldPath must not end with a '.'.");
  for (const part of path.split('.')) {
    if (part === '') throw new DevServerError(DevServerCodes.FieldPathEmptyName, 'FieldPath field names may not be empty strings.');
    if (part.startsWith('$')) {
      throw new DevServerError(
        16410,
        "FieldPath field names may not start with '$'. Consider using $getField or $setField.",
      );
    }
  }
}
