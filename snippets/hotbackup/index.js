// @mongosh/snippet-hotbackup: one-line hot backups, with live progress, through
// mongo-hotbackup-proxy (`hotbackup serve`). It drives the proxy's Percona-compatible
// admin commands: backupStart (async), backupStatus, backupThrottle and backupAbort.
// Runs inside mongosh: plain JS, mongosh globals (db, print, sleep, isInteractive).
(() => {
  'use strict';

  const ASYNC_HINT =
    'Ctrl-C stops watching, not the backup: it runs on in the proxy.\n' +
    'Watch it again with hotbackup.wait(); stop it with hotbackup.abort().';

  // ---- Formatting: binary units, the same as the proxy's (src/backup/units.ts) ----

  const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

  /** A BSON Long, Int32, Double or plain number as a JS number (null/undefined: 0). */
  function num(v) {
    if (v === null || v === undefined) return 0;
    if (typeof v === 'object' && typeof v.toNumber === 'function') return v.toNumber();
    return Number(v);
  }

  /** 512 -> '512 B', 16777216 -> '16.0 MiB'. */
  function formatBytes(n) {
    if (!Number.isFinite(n)) return `${n} B`;
    let value = Math.abs(n);
    const sign = n < 0 ? '-' : '';
    if (value < 1024) return `${sign}${Math.round(value)} B`;
    let unit = 0;
    while (unit < UNITS.length - 1 && value >= 1023.95) {
      value /= 1024;
      unit += 1;
    }
    return `${sign}${value.toFixed(1)} ${UNITS[unit]}`;
  }

  /** A throttle: 0 is 'unlimited'. */
  function formatThrottle(n) {
    return n === 0 ? 'unlimited' : `${formatBytes(n)}/s`;
  }

  /** 75 -> '1m15s', 3725 -> '1h02m05s'. */
  function formatDuration(secs) {
    const s = Math.max(0, Math.round(secs));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const pad = (x) => String(x).padStart(2, '0');
    if (h > 0) return `${h}h${pad(m)}m${pad(s % 60)}s`;
    if (m > 0) return `${m}m${pad(s % 60)}s`;
    return `${s}s`;
  }

  /** Cuts a line to the terminal width so that '\r' can rewrite it in place. */
  function fit(line) {
    const width = Math.max(20, (process.stdout.columns || 80) - 1);
    return line.length <= width ? line : `${line.slice(0, width - 1)}…`;
  }

  // ---- Talking to the proxy ----

  /** A server error as one line: errmsg and code. mongosh prints it without a stack. */
  class HotbackupError extends Error {
    constructor(errmsg, code, codeName, hint) {
      super(`${errmsg}${code === undefined ? '' : ` (code ${code})`}${hint ? `; ${hint}` : ''}`);
      this.name = 'HotbackupError';
      this.errmsg = errmsg;
      if (code !== undefined) this.code = code;
      if (codeName !== undefined) this.codeName = codeName;
    }
  }

  function command(cmd) {
    let reply;
    try {
      reply = db.getSiblingDB('admin').runCommand(cmd);
    } catch (err) {
      if (err && typeof err.code === 'number') {
        const hint = err.code === 59 ? 'is mongosh connected to `hotbackup serve` rather than to mongod?' : '';
        throw new HotbackupError(err.errmsg || err.message, err.code, err.codeName, hint);
      }
      throw err;
    }
    if (reply && reply.ok !== 1 && reply.ok !== true) {
      throw new HotbackupError(reply.errmsg || 'command failed', reply.code, reply.codeName);
    }
    return reply;
  }

  function rawStatus() {
    return command({ backupStatus: 1 });
  }

  // ---- What the helpers print ----

  /**
   * Bytes done of the total: '12.0 MiB of 130.0 MiB', or for an incremental backup, whose
   * files taken from its base count as done without being copied (backupStatus
   * bytesReused), '2.0 MiB + 100.0 MiB reused of 130.0 MiB'.
   */
  function doneOfTotal(s) {
    const reused = num(s.bytesReused);
    return `${formatBytes(num(s.bytesCopied))}${reused > 0 ? ` + ${formatBytes(reused)} reused` : ''} of ${formatBytes(num(s.bytesTotal))}`;
  }

  /** Files done: copied, and taken from the base. */
  function filesDone(s) {
    return num(s.filesCopied) + num(s.filesReused);
  }

  /** One progress line: percent, bytes done of total, rate, ETA, current file. */
  function progressLine(s) {
    const phase = s.phase || 'starting';
    const total = num(s.bytesTotal);
    if (total === 0 && (phase === 'starting' || phase === 'snapshot')) {
      return `hotbackup: ${phase === 'snapshot' ? 'taking the snapshot' : 'starting'}...`;
    }
    const pct = `${num(s.percent).toFixed(1).padStart(5)}%`;
    const bytes = `${doneOfTotal(s)}, ${filesDone(s)}/${num(s.filesTotal)} files`;
    const rate = s.bytesPerSec === null || s.bytesPerSec === undefined ? '--' : `${formatBytes(num(s.bytesPerSec))}/s`;
    const eta = s.etaSecs === null || s.etaSecs === undefined ? 'ETA --' : `ETA ${formatDuration(num(s.etaSecs))}`;
    const files = s.currentFiles || [];
    let current = files.length === 0 ? '' : files[0];
    if (files.length > 1) current += ` (+${files.length - 1})`;
    if (phase === 'extending' && s.waitingFor) current = `waiting for ${s.waitingFor}`;
    else if (phase !== 'copying') current = phase === 'manifest' ? 'writing the manifest' : phase;
    return `${pct}  ${bytes}  ${rate}  ${eta}  ${current}`.trimEnd();
  }

  /**
   * The outcome of a finished backup (backupStatus.last) on one line: 'ok: …' or 'FAILED: …'.
   * bytes and files are those copied; an incremental backup adds what it took from its base.
   */
  function outcome(last) {
    const reused = num(last.bytesReused);
    const fromBase = reused > 0 ? ` (+ ${formatBytes(reused)}, ${num(last.filesReused)} files reused)` : '';
    const what =
      `${formatBytes(num(last.bytes))}, ${num(last.files)} files${fromBase}, ${num(last.seconds).toFixed(1)} s, ` +
      `strategy ${last.strategy || 'none'}, destination ${last.destination}`;
    if (last.ok) return `ok: ${what}`;
    const code = last.code === undefined ? '' : ` (code ${last.code}${last.codeName ? ` ${last.codeName}` : ''})`;
    return `${last.state === 'aborted' ? 'ABORTED' : 'FAILED'}: ${last.errmsg}${code}; ${what}`;
  }

  /** Watches backup `id` until it ends; prints the summary and returns backupStatus.last. */
  function follow(id) {
    const live = typeof isInteractive === 'function' && isInteractive() && process.stdout.isTTY === true;
    let s = rawStatus();
    try {
      while (s.inProgress && (id === undefined || s.backupId === id)) {
        const line = progressLine(s);
        if (live) process.stdout.write(`\r${fit(line)}\x1b[K`);
        else print(line);
        sleep(live ? 500 : 1000);
        s = rawStatus();
      }
    } catch (err) {
      if (live) process.stdout.write('\n'); // keep the last progress line above the error
      throw err;
    }
    if (live) process.stdout.write('\r\x1b[K'); // the summary takes the progress line's place
    if (!s.last || (id !== undefined && s.last.backupId !== id)) {
      print(`backup ${id} is no longer running, and its outcome was replaced by a later backup's`);
      return s.last;
    }
    print(`backup ${outcome(s.last)}`);
    // Only where auto found nothing safe: other 268s (a named strategy that cannot run, a lost lock) have their own cause.
    if (s.last.code === 268 && /^This mongod has no \$backupCursor/.test(s.last.errmsg || '')) {
      print('hotbackup.start(dir, {allowWriteBlocking: true}) allows it: writes then wait for the whole copy.');
    }
    return s.last;
  }

  // ---- The helpers ----

  const START_OPTIONS = ['throttle', 'wait', 'allowWriteBlocking', 'incrementalBase', 'checksum', 'extendTo'];

  function start(dir, options) {
    const opts = options || {};
    const unknown = Object.keys(opts).filter((key) => !START_OPTIONS.includes(key));
    if (unknown.length > 0) throw new HotbackupError(`hotbackup.start: unknown option ${unknown.join(', ')} (options: ${START_OPTIONS.join(', ')})`);
    if (typeof dir !== 'string') throw new HotbackupError('hotbackup.start(dir): dir must be a string, an absolute path or an s3://bucket/prefix URL');
    const { throttle: rate, wait = true, allowWriteBlocking, incrementalBase, checksum, extendTo } = opts;
    if (rate !== undefined) command({ backupThrottle: rate });
    const cmd = { backupStart: dir, async: true };
    if (allowWriteBlocking) cmd.allowWriteBlocking = true;
    // Passed as given: the proxy checks them (a base that is no complete backup is refused).
    if (incrementalBase !== undefined) cmd.incrementalBase = incrementalBase;
    if (checksum !== undefined) cmd.checksum = checksum;
    // A Timestamp (a write's operationTime); the proxy checks its type and the strategy.
    if (extendTo !== undefined) cmd.extendTo = extendTo;
    const reply = command(cmd);
    const limit = formatThrottle(num(rawStatus().throttleBytesPerSec));
    print(`backup ${reply.backupId} started -> ${dir} (throttle ${limit})`);
    if (!wait) {
      print('hotbackup.wait() watches it, hotbackup.status() shows it.');
      return { ok: 1, backupId: reply.backupId };
    }
    print(ASYNC_HINT);
    return follow(reply.backupId);
  }

  function wait() {
    const s = rawStatus();
    if (!s.inProgress) {
      print('no backup in progress');
      if (s.last) print(`last backup ${outcome(s.last)}`);
      return s.last;
    }
    print(`watching backup ${s.backupId} -> ${s.destination}`);
    print(ASYNC_HINT);
    return follow(s.backupId);
  }

  function status(options) {
    const s = rawStatus();
    if (options && options.raw) return s;
    const lines = [];
    if (s.inProgress) {
      const eta = s.etaSecs === null || s.etaSecs === undefined ? 'unknown' : formatDuration(num(s.etaSecs));
      lines.push(`backup in progress: ${s.backupId}`);
      lines.push(`  destination  ${s.destination}`);
      lines.push(`  strategy     ${s.strategy || 'not chosen yet'}, phase ${s.phase}`);
      const started = new Date(s.startedAt);
      const ago = formatDuration((Date.now() - started.getTime()) / 1000);
      lines.push(`  started      ${started.toISOString()} (${ago} ago)`);
      lines.push(`  progress     ${num(s.percent).toFixed(1)}%, ${doneOfTotal(s)}, ${filesDone(s)} of ${num(s.filesTotal)} files`);
      lines.push(`  rate         ${formatBytes(num(s.bytesPerSec))}/s, ETA ${eta}`);
      if (s.currentFiles && s.currentFiles.length > 0) lines.push(`  copying      ${s.currentFiles.join(', ')}`);
    } else {
      lines.push('no backup in progress');
    }
    lines.push(`  throttle     ${formatThrottle(num(s.throttleBytesPerSec))}`);
    lines.push(`  last backup  ${s.last ? outcome(s.last) : 'none since the proxy started'}`);
    print(lines.join('\n'));
  }

  function abort() {
    const reply = command({ backupAbort: 1 });
    const s = rawStatus();
    if (s.last && s.last.backupId === reply.backupId) print(`backup ${outcome(s.last)}`);
    else print(`backup ${reply.backupId}: ${reply.state}`);
    return s.last && s.last.backupId === reply.backupId ? s.last : reply;
  }

  function throttle(value) {
    if (value === undefined) {
      print(`backup throttle: ${formatThrottle(num(rawStatus().throttleBytesPerSec))}`);
      return;
    }
    command({ backupThrottle: value });
    const s = rawStatus();
    const running = s.inProgress ? ' (the running backup follows it now)' : '';
    print(`backup throttle set to ${formatThrottle(num(s.throttleBytesPerSec))}${running}`);
  }

  // ---- Help, in the mongosh-snippets way: fn.help() prints; typing fn.help shows it too ----

  const HELP = {
    start:
      'hotbackup.start(dir, {throttle, wait = true, allowWriteBlocking = false, incrementalBase, checksum = false, extendTo})\n' +
      '  Starts a hot backup of the whole mongod into dir with {backupStart: dir, async: true}.\n' +
      '  dir is absolute, and empty or absent under an existing directory (only dir itself is\n' +
      '  created); or s3://bucket/prefix, an empty prefix of an existing bucket, uploaded with the\n' +
      '  proxy\'s AWS_* environment. throttle ("50MB", 52428800, 0 = unlimited) is set first.\n' +
      '  With wait (the default) it shows the progress until the backup ends, prints a summary and\n' +
      '  returns backupStatus.last ({ok, bytes, files, seconds, ...}; check ok in scripts); with\n' +
      '  {wait: false} it returns {ok, backupId} at once. Ctrl-C stops watching, not the backup.\n' +
      '  allowWriteBlocking lets the proxy fsyncLock mongod for the whole copy when mongod has no\n' +
      '  $backupCursor (MongoDB Community) and its dbpath cannot be cloned (reflink, on XFS or\n' +
      '  btrfs): writes wait until the copy is done.\n' +
      '  incrementalBase (an earlier, complete backup of the same mongod, on the same filesystem as\n' +
      '  dir) takes the files unchanged since then from it instead of copying them; checksum: true\n' +
      '  compares every file with the base by its contents, not by size and modification time.\n' +
      '  extendTo (a Timestamp, e.g. the operationTime of a write\'s reply; replica set, $backupCursor\n' +
      '  only) waits, once the files are copied, until the majority has committed that time, then\n' +
      '  copies the journal written since: the backup holds every write up to it.',
    wait:
      'hotbackup.wait()\n' +
      '  Watches the backup that is running (after Ctrl-C, or one started elsewhere) until it\n' +
      '  ends; prints a summary and returns backupStatus.last.',
    status:
      'hotbackup.status({raw = false})\n' +
      '  Prints the running backup (progress, rate, ETA, files being copied), the throttle and\n' +
      '  the last backup. {raw: true} returns the backupStatus document instead.',
    abort:
      'hotbackup.abort()\n' +
      '  Stops the running backup with {backupAbort: 1} and waits until it has stopped: its\n' +
      '  snapshot released (mongod unlocked, the backup cursor closed, the staging removed) and\n' +
      '  no manifest written. Prints a summary and returns backupStatus.last (state "aborted").\n' +
      '  Fails when no backup is running. db.killOp(<opid from db.currentOp()>) does the same.',
    throttle:
      'hotbackup.throttle(rate?)\n' +
      '  Without an argument, shows the backup throttle. With one, sets it: bytes per second as a\n' +
      '  number, or a string with a binary unit ("50MB" = "50MiB" = 52428800), 0 = unlimited.\n' +
      '  It applies to the running backup at once.',
  };
  const SUMMARIES = [
    ['hotbackup.start(dir, {throttle, wait})', 'back up into dir, showing progress until done'],
    ['hotbackup.wait()', 'watch the running backup until it ends'],
    ['hotbackup.status({raw})', 'the running backup, the throttle, the last backup'],
    ['hotbackup.throttle(rate?)', "show or set the copy rate limit ('50MB'; 0 = unlimited)"],
    ['hotbackup.abort()', 'stop the running backup; it leaves no manifest'],
    ['hotbackup.help()', 'this text'],
  ];
  const OVERVIEW =
    'hotbackup: hot backups through mongo-hotbackup-proxy (`hotbackup serve`)\n' +
    SUMMARIES.map(([call, what]) => `  ${call.padEnd(40)}${what}`).join('\n') +
    '\nEvery helper has .help(), e.g. hotbackup.start.help(). Sizes are binary: 1 MB = 1 MiB = 1048576 bytes.';
  HELP.help = OVERVIEW;

  function withHelp(fn, text) {
    const help = () => print(text);
    help[Symbol.for('@@mongosh.asPrintable')] = () => text;
    fn.help = help;
    return fn;
  }

  const hotbackup = {
    start: withHelp(start, HELP.start),
    wait: withHelp(wait, HELP.wait),
    status: withHelp(status, HELP.status),
    throttle: withHelp(throttle, HELP.throttle),
    abort: withHelp(abort, HELP.abort),
    help: withHelp(() => print(OVERVIEW), OVERVIEW),
  };
  Object.defineProperty(hotbackup, Symbol.for('@@mongosh.asPrintable'), { value: () => OVERVIEW });
  globalThis.hotbackup = hotbackup;
})();
