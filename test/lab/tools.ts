/** Paths of the programs the lab drives (installed by test/setup.sh). */
import {join} from 'node:path';
import {repoRoot} from '../helpers/root.js';

export {repoRoot};
export const labTools = join(repoRoot, 'node_modules', '.cache', 'extip-lab');
export const kubectlPath = join(labTools, 'kubectl');
/** BIRD 1.6 (calico/node v2's generation), unpacked beside bird2 by test/setup.sh. */
export const bird16Path = join(labTools, 'bird1.6', 'usr', 'sbin', 'bird');
export const birdc16Path = join(labTools, 'bird1.6', 'usr', 'sbin', 'birdc');
