/** Copies a dbpath's files the way a backup tool would, for the backup-cursor tests. */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';

export interface ListedFile {
  filename: string;
  fileSize: number;
}

/** Copies `file` into `dest`, keeping its path relative to `dbpath`, up to `fileSize` bytes. */
export function copyUpTo(dbpath: string, dest: string, file: ListedFile): void {
  const relative = path.relative(dbpath, file.filename);
  if (relative.startsWith('..')) throw new Error(`${file.filename} is outside ${dbpath}`);
  const target = path.join(dest, relative);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const input = fs.openSync(file.filename, 'r');
  const output = fs.openSync(target, 'w');
  try {
    const buffer = Buffer.allocUnsafe(1024 * 1024);
    let offset = 0;
    while (offset < file.fileSize) {
      const read = fs.readSync(input, buffer, 0, Math.min(buffer.length, file.fileSize - offset), offset);
      if (read === 0) break;
      fs.writeSync(output, buffer, 0, read);
      offset += read;
    }
  } finally {
    fs.closeSync(input);
    fs.closeSync(output);
  }
}

/** Every WiredTiger table in `dir`, verified with Debian's `wt` tool; returns the failures. */
export function wtVerifyAll(dir: string): { tables: string[]; failures: string[] } {
  const listing = execFileSync('wt', ['-R', '-h', dir, 'list'], { encoding: 'utf8', stdio: 'pipe' });
  const tables = listing.split('\n').filter((line) => line.startsWith('table:'));
  const failures: string[] = [];
  for (const table of tables) {
    try {
      execFileSync('wt', ['-R', '-h', dir, 'verify', table], { encoding: 'utf8', stdio: 'pipe' });
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      failures.push(`${table}: ${e.stderr ?? e.message}`);
    }
  }
  return { tables, failures };
}

/** Whether the `wt` tool can open `dir` and verify every table in it. */
export function wtOpensAndVerifies(dir: string): boolean {
  try {
    const { tables, failures } = wtVerifyAll(dir);
    return tables.length > 0 && failures.length === 0;
  } catch {
    return false;
  }
}
