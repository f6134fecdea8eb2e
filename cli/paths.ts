/** Where the package's own files are, wherever it is installed. */
import {existsSync} from 'node:fs';
import {dirname, join} from 'node:path';
import {fileURLToPath} from 'node:url';

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('extip: cannot find the package root');
    dir = parent;
  }
  return dir;
}

export const packageRoot = findRoot();
export const rolesDir = join(packageRoot, 'roles');
export const roleDir = join(rolesDir, 'externalip');
export const playbooksDir = join(packageRoot, 'playbooks');
export const templatesDir = join(packageRoot, 'templates');
export const inventoryExamplesDir = join(packageRoot, 'inventory-examples');
