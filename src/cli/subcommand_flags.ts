/**
 * How every `hotbackup <subcommand>` begins and fails: its flags parsed, a usage error said
 * in one line on stderr with exit code 2, `--help` printing the subcommand's text (exit 0),
 * and every failure said as `hotbackup <subcommand>: <message>`.
 */

/** What a subcommand's flag parser returns: its flags, or 'help' for -h/--help. */
export type ParsedFlags<F> = F | 'help';

/** The flags to run with, or the exit code to stop with (a usage error, or after --help). */
export function parseSubcommandFlags<F>(
  subcommand: string,
  args: string[],
  parse: (args: string[]) => ParsedFlags<F>,
  help: string,
): { flags: F } | { exit: number } {
  let parsed: ParsedFlags<F>;
  try {
    parsed = parse(args);
  } catch (err) {
    return { exit: failureReporter(subcommand)((err as Error).message, 2) };
  }
  if (parsed === 'help') {
    process.stdout.write(help);
    return { exit: 0 };
  }
  return { flags: parsed };
}

/** Says `message` on stderr as `hotbackup <subcommand>: message` and returns the exit code to stop with. */
export function failureReporter(subcommand: string): (message: string, code: number) => number {
  return (message, code) => {
    process.stderr.write(`hotbackup ${subcommand}: ${message}\n`);
    return code;
  };
}
