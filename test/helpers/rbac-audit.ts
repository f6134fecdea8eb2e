/**
 * The agent's RBAC against what it really did: the lab API server's audit
 * log lists every request each ServiceAccount made (verb, resource, answer).
 * A request answered 403 means a rule is missing; a granted rule no request
 * used means a rule too many.
 */
import {readFile} from 'node:fs/promises';

export interface Use {
  user: string;
  verb: string;
  /** group/resource[/subresource], the group empty for the core API. */
  resource: string;
  name?: string;
  code: number;
}

export interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  resourceNames?: string[];
}

/** The requests of users whose name starts with `prefix` (system:serviceaccount:<ns>:). */
export async function auditUses(path: string, prefix: string): Promise<Use[]> {
  const text = await readFile(path, 'utf8');
  const out: Use[] = [];
  for (const line of text.split('\n')) {
    if (!line.includes(prefix)) continue;
    const e = JSON.parse(line) as {stage: string; verb: string; user: {username: string}; objectRef?: {apiGroup?: string; resource?: string; subresource?: string; name?: string}; responseStatus?: {code?: number}};
    if (e.stage !== 'ResponseComplete' && e.stage !== 'ResponseStarted') continue;
    if (!e.user.username.startsWith(prefix) || !e.objectRef?.resource) continue;
    const r = e.objectRef;
    out.push({user: e.user.username, verb: e.verb, resource: `${r.apiGroup ?? ''}/${r.resource}${r.subresource ? `/${r.subresource}` : ''}`, name: r.name, code: e.responseStatus?.code ?? 0});
  }
  return out;
}

/** Each verb on each resource a rule grants, as "verb group/resource". */
export function granted(rules: readonly PolicyRule[]): string[] {
  return rules.flatMap((r) => (r.apiGroups ?? ['']).flatMap((g) => (r.resources ?? []).flatMap((res) => r.verbs.map((v) => `${v} ${g}/${res}`))));
}

/** What the rules grant that no request of `user` used, and the requests refused with 403. */
export function rbacReport(uses: readonly Use[], user: string, rules: readonly PolicyRule[]): {unused: string[]; forbidden: string[]} {
  const mine = uses.filter((u) => u.user === user);
  const used = new Set(mine.map((u) => `${u.verb} ${u.resource}`));
  return {
    unused: granted(rules).filter((g) => !used.has(g)).sort(),
    forbidden: [...new Set(mine.filter((u) => u.code === 403).map((u) => `${u.verb} ${u.resource}${u.name ? ` ${u.name}` : ''}`))].sort(),
  };
}
