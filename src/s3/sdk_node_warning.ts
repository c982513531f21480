/**
 * The AWS SDK warns on stderr, once per process, that its releases after January 2027
 * will need Node.js 22 (@aws-sdk/core's emitWarningIfUnsupportedVersion). Which Node
 * this tool runs on is the project's choice (package.json `engines`), not the operator's
 * to act on, and nine lines of it before every S3 command's output bury the one line an
 * error is. The SDK's own switch turns it off; an operator who set it either way keeps
 * their setting.
 */
const SWITCH = 'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED';

/** Call before the first S3 client is made (the SDK reads the switch then). */
export function quietSdkNodeWarning(env: NodeJS.ProcessEnv = process.env): void {
  env[SWITCH] ??= 'true';
}
