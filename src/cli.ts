#!/usr/bin/env node
/**
 * `hotbackup`: one CLI, one subcommand per job; no logic lives here. `serve` and
 * `start` share one flag parser (cli/proxy_flags.ts) and one composition of the proxy
 * (cli/proxy_app.ts).
 *
 * Run the proxy with `--max-semi-space-size=2` (MiB), as `npm start` does, or with
 * `NODE_OPTIONS=--max-semi-space-size=2` for `npx hotbackup serve`: V8's young
 * generation otherwise grows to 16 MiB per semi-space under the proxy's steady stream
 * of small buffers, about 20 MiB of RSS for nothing, since those buffers die young
 * either way (docs/performance.md: the same CPU per forwarded op). Not in the shebang:
 * `env -S` is missing from BusyBox, so Alpine images could not run the CLI at all.
 */
// Each subcommand is loaded only when it runs: `hotbackup serve` never loads the dev
// server that `dev-server` runs, and `start` runs it only as a child process of this
// same CLI (test/architecture checks that `serve` can't reach it).

interface Subcommand {
  summary: string;
  run(args: string[]): Promise<number>;
}

const SUBCOMMANDS: Record<string, Subcommand> = {
  'dev-server': {
    summary: 'run the mongod-compatible dev server over WiredTiger',
    run: async (args) => (await import('./cli/dev_server_command.js')).runDevServer(args),
  },
  serve: {
    summary: 'run the proxy in front of a mongod (--upstream URI)',
    run: async (args) => (await import('./cli/serve.js')).runServe(args),
  },
  unlock: {
    summary: "release mongod's fsync lock, one lock (or --all), safely",
    run: async (args) => (await import('./cli/unlock.js')).runUnlock(args),
  },
  list: {
    summary: 'list the backups under a directory: time, size, base, complete, verified',
    run: async (args) => (await import('./cli/list.js')).runList(args),
  },
  purge: {
    summary: 'delete the oldest backups under a directory, keeping the newest N (--keep N)',
    run: async (args) => (await import('./cli/purge.js')).runPurge(args),
  },
  verify: {
    summary: "check a backup against its manifest: every file, size and checksum",
    run: async (args) => (await import('./cli/verify.js')).runVerify(args),
  },
  restore: {
    summary: 'copy a backup into a dbpath (--to), checking every checksum',
    run: async (args) => (await import('./cli/restore.js')).runRestore(args),
  },
  oplog: {
    summary: "stream a replica set's oplog into numbered BSON files, resumable (mongobackup --stream)",
    run: async (args) => (await import('./cli/oplog_command.js')).runOplog(args),
  },
  replay: {
    summary: 'apply oplog files to a server with applyOps, from a timestamp up to another',
    run: async (args) => (await import('./cli/replay.js')).runReplay(args),
  },
  start: {
    summary: 'the proxy in front of the dev server, run as its child (what npm start runs)',
    run: async (args) => (await import('./cli/start.js')).runStart(args),
  },
};

function usage(): string {
  const lines = Object.entries(SUBCOMMANDS).map(([name, sub]) => `  ${name.padEnd(12)} ${sub.summary}`);
  return ['Usage: hotbackup <command> [options]', '', 'Commands:', ...lines, '', 'Run `hotbackup <command> --help` for its options.'].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage() + '\n');
    return name === undefined ? 2 : 0;
  }
  const sub = SUBCOMMANDS[name];
  if (sub === undefined) {
    process.stderr.write(`hotbackup: unknown command '${name}'\n\n${usage()}\n`);
    return 2;
  }
  return sub.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`hotbackup: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
