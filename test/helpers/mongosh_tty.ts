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
  /** Polls the screen until `check` returns something other than undefined. */
  waitFor<T>(check: (rows: string[]) => T | undefined, timeoutMs?: number, what?: string): Promise<T>;
  /** Waits until the last non-empty row is an idle prompt (`test> `). */
  waitForPrompt(timeoutMs?: number): Promise<void>;
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
    async waitFor(check, timeoutMs = 20_000, what = 'the screen') {
      const deadline = Date.now() + timeoutMs;
      let rows: string[] = [];
      for (;;) {
        rows = await screen();
        const value = check(rows);
        if (value !== undefined) return value;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; screen:\n${rows.join('\n')}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    async waitForPrompt(timeoutMs = 20_000) {
      await tty.waitFor(
        (rows) => {
          const last = rows.filter((row) => row !== '').at(-1) ?? '';
          return PROMPT.test(last) ? true : undefined;
        },
        timeoutMs,
        'the mongosh prompt',
      );
    },
    async close() {
      await tmux('kill-server').catch(() => undefined);
      sockDir.remove();
      owned?.remove();
    },
  };

  // mongosh may ask a yes/no question on a first interactive start (e.g. about telemetry
  // in some versions): answer no, then wait for the prompt.
  try {
    const state = await tty.waitFor(
      (rows) => {
        const last = rows.filter((row) => row !== '').at(-1) ?? '';
        if (/\[y\/n\]:?$/i.test(last)) return 'question';
        return PROMPT.test(last) ? 'prompt' : undefined;
      },
      30_000,
      'mongosh to start',
    );
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
