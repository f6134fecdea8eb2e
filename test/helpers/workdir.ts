/**
 * useWorkDir(): a fresh temporary directory for each test of a file, removed
 * after it, and write() to put a file in it (its folders made as needed).
 */
import {afterEach, beforeEach} from '@jest/globals';
import {mkdir, writeFile} from 'node:fs/promises';
import {dirname, join} from 'node:path';
import {tempDir} from './ansible.js';

export interface WorkDir {
  /** The directory of the running test. */
  readonly path: string;
  /** Writes `text` to `rel` inside it; returns the file's path. */
  write(rel: string, text: string | Buffer): Promise<string>;
}

export function useWorkDir(): WorkDir {
  let dir: {path: string; cleanup: () => Promise<void>} | undefined;
  beforeEach(async () => {
    dir = await tempDir();
  });
  afterEach(async () => dir?.cleanup());
  return {
    get path() {
      if (!dir) throw new Error('the work directory exists only while a test runs');
      return dir.path;
    },
    async write(rel, text) {
      const path = join(this.path, rel);
      await mkdir(dirname(path), {recursive: true});
      await writeFile(path, text);
      return path;
    },
  };
}
