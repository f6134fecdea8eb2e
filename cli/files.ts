/** Small file-system helpers shared by the commands that write files. */
import {readdir} from 'node:fs/promises';
import {join, relative} from 'node:path';

/** Every file below `dir`, as paths relative to it, sorted. */
export async function listFiles(dir: string, base = dir): Promise<string[]> {
  const files: string[] = [];
  for (const entry of await readdir(dir, {withFileTypes: true})) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...(await listFiles(path, base)));
    else files.push(relative(base, path));
  }
  return files.sort();
}
