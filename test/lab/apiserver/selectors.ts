/** Label and field selectors, as the API server parses them. */
import {ApiError, type Json, type KubeObject, isObject} from './types.js';

type Requirement =
  | {op: 'eq' | 'neq'; key: string; value: string}
  | {op: 'in' | 'notin'; key: string; values: string[]}
  | {op: 'exists' | 'notexists'; key: string};

export type Selector = (labels: Record<string, string>) => boolean;

function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else current += ch;
  }
  if (current.trim()) parts.push(current);
  return parts.map((p) => p.trim()).filter(Boolean);
}

export function parseLabelSelector(text: string | null | undefined): Selector {
  if (!text) return () => true;
  const requirements: Requirement[] = splitTopLevel(text).map((part) => {
    let m = /^(\S+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(part);
    if (m) return {op: m[2] as 'in' | 'notin', key: m[1], values: m[3].split(',').map((v) => v.trim()).filter(Boolean)};
    m = /^([^!=\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(part);
    if (m) return {op: m[2] === '!=' ? 'neq' : 'eq', key: m[1], value: m[3]};
    m = /^!\s*(\S+)$/.exec(part);
    if (m) return {op: 'notexists', key: m[1]};
    if (/^[A-Za-z0-9./_-]+$/.test(part)) return {op: 'exists', key: part};
    throw new ApiError(400, 'BadRequest', `unable to parse requirement: ${part}`);
  });
  return (labels) =>
    requirements.every((r) => {
      const has = Object.prototype.hasOwnProperty.call(labels, r.key);
      switch (r.op) {
        case 'eq':
          return has && labels[r.key] === r.value;
        case 'neq':
          return !has || labels[r.key] !== r.value;
        case 'in':
          return has && r.values.includes(labels[r.key]);
        case 'notin':
          return !has || !r.values.includes(labels[r.key]);
        case 'exists':
          return has;
        case 'notexists':
          return !has;
      }
    });
}

export type FieldSelector = (obj: KubeObject) => boolean;

function fieldValue(obj: KubeObject, path: string): string {
  let cur: Json | undefined = obj;
  for (const part of path.split('.')) cur = isObject(cur) ? cur[part] : undefined;
  return cur === undefined || cur === null ? '' : String(cur);
}

/** Field selectors: `a.b=c`, `a.b==c`, `a.b!=c`, comma-separated. */
export function parseFieldSelector(text: string | null | undefined): FieldSelector {
  if (!text) return () => true;
  const terms = text.split(',').map((part) => {
    const m = /^([A-Za-z0-9._]+)\s*(==|=|!=)\s*(.*)$/.exec(part.trim());
    if (!m) throw new ApiError(400, 'BadRequest', `invalid field selector: ${part}`);
    return {path: m[1], neq: m[2] === '!=', value: m[3]};
  });
  return (obj) => terms.every((t) => (fieldValue(obj, t.path) === t.value) !== t.neq);
}
