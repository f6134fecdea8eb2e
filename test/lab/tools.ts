/** Paths of the programs the lab drives (installed by test/setup.sh). */
import {join} from 'node:path';
import {repoRoot} from '../helpers/root.js';

export {repoRoot};
export const labTools = join(repoRoot, 'node_modules', '.cache', 'extip-lab');
export const kubectlPath = join(labTools, 'kubectl');
