/** Paths of the programs the lab drives (installed by test/setup.sh). */
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
export const labTools = join(repoRoot, 'node_modules', '.cache', 'extip-lab');
export const kubectlPath = join(labTools, 'kubectl');
