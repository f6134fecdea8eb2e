/**
 * useLab(): one lab cluster for the tests of a file or describe block, started
 * before them (with an optional set-up) and stopped after them whatever
 * happened. It returns the lab itself; using it before beforeAll has run, or
 * after the lab failed to start, throws and says so.
 */
import {afterAll, beforeAll} from '@jest/globals';
import {Lab, type LabOptions} from '../lab/lab.js';

export function useLab(options: LabOptions = {}, setup?: (lab: Lab) => Promise<void>): Lab {
  let lab: Lab | undefined;
  beforeAll(async () => {
    lab = await Lab.start(options);
    if (setup) await setup(lab);
  }, 600_000);
  afterAll(async () => lab?.stop());
  return new Proxy({} as Lab, {
    get(_target, property) {
      if (!lab) throw new Error(`the lab is not up (${String(property)} was asked for before beforeAll, or the lab failed to start)`);
      const value = Reflect.get(lab, property, lab);
      return typeof value === 'function' ? value.bind(lab) : value;
    },
  });
}
