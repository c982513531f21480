/**
 * The fields every command may carry besides its own, which mongod's IDL parser never
 * calls unknown (src/mongo/idl/generic_argument.idl, the structs generic_args_api_v1
 * and generic_args_unstable_v1, as of 7.0; IDLParserContext skips a field when
 * isGenericArgument(name) says so). Drivers add some of them to every command: `$db`,
 * `lsid`, `$clusterTime`, `$readPreference`, `apiVersion` with a server API, `maxTimeMS`
 * with timeoutMS, and the transaction fields, which session_options.ts judges.
 */
const API_V1 = [
  'apiVersion', 'apiStrict', 'apiDeprecationErrors', '$db', 'maxTimeMS', 'readConcern', 'writeConcern', 'lsid',
  'clientOperationKey', 'txnNumber', 'autocommit', 'startTransaction', 'stmtId', 'comment', '$readPreference',
  '$clusterTime',
] as const;

const UNSTABLE_V1 = [
  '$audit', '$client', '$configServerState', 'allowImplicitCollectionCreation', '$oplogQueryData', '$queryOptions',
  '$replData', 'databaseVersion', 'shardVersion', 'tracking_info', 'coordinator', 'maxTimeMSOpOnly', '$configTime',
  '$topologyTime', 'txnRetryCounter', 'mayBypassWriteBlocking', '$tenant', 'expectPrefix',
] as const;

const GENERIC: ReadonlySet<string> = new Set<string>([...API_V1, ...UNSTABLE_V1]);

/** Whether mongod takes `field` on any command (isGenericArgument in command_generic_argument.cpp). */
export function isGenericArgument(field: string): boolean {
  return GENERIC.has(field);
}
