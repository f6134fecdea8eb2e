/**
 * $KUBECONFIG read the way client-go (and so kubectl) reads it: a list of
 * files separated by ':'; files that do not exist are skipped; the first
 * file to name a cluster, user or context wins it, and the first to set
 * current-context wins that. Paths inside a file (certificate-authority,
 * client-certificate, client-key, tokenFile) are relative to that file.
 * When $KUBECONFIG is set, ~/.kube/config is not read.
 *
 * The agent (agent/kubeconfig.ts) and the CLI (cli/kube.ts) both load
 * through this, so `KUBECONFIG=a:b extip status` and the agent reach the
 * cluster kubectl would.
 */
import {existsSync, readFileSync} from 'node:fs';
import {homedir} from 'node:os';
import {delimiter, dirname, isAbsolute, join} from 'node:path';
import YAML from 'yaml';

export class KubeconfigError extends Error {}

export interface Named {
  name: string;
  [key: string]: unknown;
}

/** A kubeconfig: the parts a client reads, paths inside made absolute. */
export interface KubeconfigDoc {
  'current-context'?: string;
  clusters: Named[];
  users: Named[];
  contexts: Named[];
  /** The files it was read from, in order. */
  sources: string[];
}

/** The files to read: $KUBECONFIG's that exist when it is set (possibly none), else ~/.kube/config if it exists. */
export function defaultKubeconfigFiles(env: NodeJS.ProcessEnv = process.env): string[] {
  const list = env.KUBECONFIG ?? '';
  if (list.split(delimiter).some(Boolean)) {
    return [...new Set(list.split(delimiter).filter(Boolean))].filter((p) => existsSync(p));
  }
  const home = join(env.HOME || homedir(), '.kube', 'config');
  return existsSync(home) ? [home] : [];
}

const PATH_FIELDS: Record<'clusters' | 'users', {section: string; fields: string[]}> = {
  clusters: {section: 'cluster', fields: ['certificate-authority']},
  users: {section: 'user', fields: ['client-certificate', 'client-key', 'tokenFile']},
};

/** One file, its relative paths resolved against its directory. */
export function readKubeconfig(path: string): KubeconfigDoc {
  let doc: Record<string, any>;
  try {
    doc = YAML.parse(readFileSync(path, 'utf8')) ?? {};
  } catch (err) {
    throw new KubeconfigError(`cannot read the kubeconfig ${path}: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new KubeconfigError(`the kubeconfig ${path} is not a mapping`);
  const base = dirname(path);
  const list = (key: 'clusters' | 'users' | 'contexts'): Named[] => {
    const items = Array.isArray(doc[key]) ? (doc[key] as unknown[]) : [];
    return items
      .filter((i): i is Named => typeof i === 'object' && i !== null && typeof (i as Named).name === 'string')
      .map((i) => {
        if (key === 'contexts') return i;
        const {section, fields} = PATH_FIELDS[key];
        const body = {...((i[section] as Record<string, unknown>) ?? {})};
        for (const f of fields) {
          const v = body[f];
          if (typeof v === 'string' && v && !isAbsolute(v)) body[f] = join(base, v);
        }
        return {...i, [section]: body};
      });
  };
  const current = typeof doc['current-context'] === 'string' && doc['current-context'] ? doc['current-context'] : undefined;
  return {...(current ? {'current-context': current} : {}), clusters: list('clusters'), users: list('users'), contexts: list('contexts'), sources: [path]};
}

/** Several files merged as client-go merges them: first wins, for every name and for current-context. */
export function mergeKubeconfigs(paths: readonly string[]): KubeconfigDoc {
  const merged: KubeconfigDoc = {clusters: [], users: [], contexts: [], sources: []};
  for (const path of paths) {
    const doc = readKubeconfig(path);
    merged.sources.push(path);
    if (!merged['current-context'] && doc['current-context']) merged['current-context'] = doc['current-context'];
    for (const key of ['clusters', 'users', 'contexts'] as const) {
      for (const item of doc[key]) if (!merged[key].some((m) => m.name === item.name)) merged[key].push(item);
    }
  }
  return merged;
}

/** The context, cluster and user a kubeconfig's current context names (the first context when none is current). */
export function currentOf(doc: KubeconfigDoc): {context: Record<string, any>; cluster: Record<string, any>; user: Record<string, any>} {
  const where = doc.sources.join(':');
  const pick = (items: Named[], name: string | undefined, what: string): Named => {
    const found = name === undefined ? items[0] : items.find((i) => i.name === name);
    if (!found) throw new KubeconfigError(`the kubeconfig ${where} has no ${what}${name ? ` named ${name}` : ''}`);
    return found;
  };
  const context = ((pick(doc.contexts, doc['current-context'], 'context').context as Record<string, any>) ?? {});
  const cluster = ((pick(doc.clusters, context.cluster, 'cluster').cluster as Record<string, any>) ?? {});
  const user = context.user === undefined ? {} : ((pick(doc.users, context.user, 'user').user as Record<string, any>) ?? {});
  return {context, cluster, user};
}
