/**
 * The real npm mongosh in an interactive terminal: a tmux pane of a fixed size, on a
 * private tmux server (its own socket, so nobody else's tmux is touched), with an
 * isolated HOME and telemetry and update checks off. Tests type into it with
 * `send`/`keys` and read the screen with `screen()`, as a person would see it.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { MONGOSH, tempDir } from './paths.js';
import { until } from './poll.js';

const exec = promisify(execFile);

export interface MongoshTty {
  /** The isolated HOME (holding `.mongoshrc.js` if one was given). */
  readonly home: string;
  /** Types `text` and presses Enter. */
  send(text: string): Promise<void>;
  /** Sends tmux key names, e.g. `'C-c'`. */
  keys(...names: string[]): Promise<void>;
  /** The visible screen, one string per row, trailing blanks trimmed. */
  screen(): Promise<string[]>;
  /** The whole pane including scrollback, as one string. */
  history(): Promise<string>;
  /**
   * Polls the screen until `check` returns something other than undefined. No deadline:
   * the suite's per-test timeout catches a hang, and close() then prints `what` and the
   * last screen.
   */
  waitFor<T>(check: (rows: string[]) => T | undefined, what?: string): Promise<T>;
  /** Waits until the last non-empty row is an idle prompt (`test> `). */
  waitForPrompt(): Promise<void>;
  /**
   * After Ctrl-C: waits until the shell runs commands again. mongosh shows its prompt as
   * soon as the interrupted evaluation returns, but reconnects afterwards
   * (MongoshRepl.onAsyncSigint: onInterruptExecution, then onResumeExecution), and until
   * then a typed command is dropped without a word (MongoshRepl.eval returns undefined
   * while the interrupt flag is set). So a probe that needs the server is typed until
   * its answer shows.
   */
  untilResumed(): Promise<void>;
  /** Ends the tmux server (and mongosh with it) and removes HOME. */
  close(): Promise<void>;
}

export interface MongoshTtyOptions {
  /** Contents of `~/.mongoshrc.js`, loaded at start as in a user's shell. */
  rc?: string;
  /** An existing HOME to use instead of a fresh one (not removed on close). */
  home?: string;
  width?: number;
  height?: number;
  /** Extra mongosh arguments before the URI (default `--quiet`). */
  args?: string[];
}

const PROMPT = /^[\w.-]+(?: \[[\w ]+\])?> ?$/;

/** The last non-empty row of a screen. */
function lastRow(rows: string[]): string {
  return rows.filter((row) => row !== '').at(-1) ?? '';
}

export async function startMongoshTty(uri: string, options: MongoshTtyOptions = {}): Promise<MongoshTty> {
  const owned = options.home === undefined ? tempDir('mongosh-tty') : undefined;
  const home = options.home ?? (owned as { dir: string }).dir;
  if (options.rc !== undefined) fs.writeFileSync(path.join(home, '.mongoshrc.js'), options.rc);
  const sockDir = tempDir('tmux');
  const socket = path.join(sockDir.dir, 'tmux.sock');
  const session = 'mongosh';
  const tmux = (...args: string[]) => exec('tmux', ['-S', socket, ...args], { encoding: 'utf8' });

  await tmux(
    'new-session', '-d', '-s', session,
    '-x', String(options.width ?? 200), '-y', String(options.height ?? 50),
    '-e', `HOME=${home}`, '-e', 'DO_NOT_TRACK=1', '-e', 'MONGOSH_NO_UPDATE_CHECK=1', '-e', 'NO_COLOR=1',
    MONGOSH, ...(options.args ?? ['--quiet']), uri,
    ';', 'set-option', '-t', session, 'remain-on-exit', 'on',
  );

  const screen = async (): Promise<string[]> => {
    const { stdout } = await tmux('capture-pane', '-p', '-t', session);
    return stdout.split('\n').map((row) => row.trimEnd());
  };

  // What a waitFor is waiting for, and the screen it last saw: told by close() if the
  // test ends (times out) while it waits.
  let waiting: { what: string; rows: string[] } | undefined;
  let probes = 0;

  const tty: MongoshTty = {
    home,
    async send(text) {
      await tmux('send-keys', '-t', session, '-l', text);
      await tmux('send-keys', '-t', session, 'Enter');
    },
    async keys(...names) {
      await tmux('send-keys', '-t', session, ...names);
    },
    screen,
    async history() {
      const { stdout } = await tmux('capture-pane', '-p', '-S', '-', '-t', session);
      return stdout;
    },
    async waitFor(check, what = 'the screen') {
      const state = { what, rows: [] as string[] };
      waiting = state;
      try {
        // Boxed, so that a check may answer false (until() takes false for "not yet").
        const found = await until(async () => {
          state.rows = await screen();
          const value = check(state.rows);
          return value === undefined ? undefined : { value };
        }, 100);
        return found.value;
      } finally {
        if (waiting === state) waiting = undefined;
      }
    },
    async waitForPrompt() {
      await tty.waitFor((rows) => (PROMPT.test(lastRow(rows)) ? true : undefined), 'the mongosh prompt');
    },
    async untilResumed() {
      await until(async () => {
        probes += 1;
        const typed = `print('resumed ${probes} ok=' + db.adminCommand({ping: 1}).ok)`;
        await tty.send(typed);
        // The probe's answer, or a fresh prompt after it with no answer: dropped, try again.
        return tty.waitFor((rows) => {
          const at = rows.reduce((found, row, index) => (row.endsWith(typed) ? index : found), -1);
          if (at < 0) return undefined;
          const after = rows.slice(at + 1);
          if (after.includes(`resumed ${probes} ok=1`)) return true;
          return after.some((row) => PROMPT.test(row)) ? false : undefined;
        }, 'the shell to run commands after Ctrl-C');
      });
    },
    async close() {
      if (waiting !== undefined) {
        process.stderr.write(`mongosh_tty closed while waiting for ${waiting.what}; screen:\n${waiting.rows.join('\n')}\n`);
      }
      await tmux('kill-server').catch(() => undefined);
      sockDir.remove();
      owned?.remove();
    },
  };

  // mongosh may ask a yes/no question on a first interactive start (e.g. about telemetry
  // in some versions): answer no, then wait for the prompt.
  try {
    const state = await tty.waitFor((rows) => {
      const last = lastRow(rows);
      if (/\[y\/n\]:?$/i.test(last)) return 'question';
      return PROMPT.test(last) ? 'prompt' : undefined;
    }, 'mongosh to start');
    if (state === 'question') {
      await tty.send('n');
      await tty.waitForPrompt();
    }
  } catch (err) {
    await tty.close();
    throw err;
  }
  return tty;
}
