/** A currentOp filter, or a part of one, that the proxy cannot judge as mongod would (op_filter.ts). */
export class UnsupportedFilter extends Error {
  override readonly name = 'UnsupportedFilter';
}
