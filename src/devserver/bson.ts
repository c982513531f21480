/** The dev server reads and writes BSON as the wire layer does: see src/wire/command_message.ts. */
export { decodeDocument, encodeDocument, commandName, type Document } from '../wire/command_message.js';
