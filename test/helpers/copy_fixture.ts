/** Source files and fresh destination directories for the copier's tests, under one temp dir. */
import fs from 'node:fs';
import path from 'node:path';
import { tempDir } from './paths.js';

export interface CopyFixture {
  /** Where sources are written (`<temp>/src`). */
  readonly src: string;
  /** A new, empty destination directory. */
  freshDest(): string;
  /** Writes `data` to `src/<name>` (making its directories) and returns its path. */
  writeSource(name: string, data: Buffer): string;
  remove(): void;
}

export function copyFixture(prefix: string): CopyFixture {
  const root = tempDir(prefix);
  const src = path.join(root.dir, 'src');
  fs.mkdirSync(src);
  let destinations = 0;
  return {
    src,
    freshDest: () => {
      const dir = path.join(root.dir, `dest-${destinations++}`);
      fs.mkdirSync(dir);
      return dir;
    },
    writeSource: (name, data) => {
      const file = path.join(src, name);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, data);
      return file;
    },
    remove: () => root.remove(),
  };
}
