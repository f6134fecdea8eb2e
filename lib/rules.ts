/**
 * The rules a variable's value must follow.
 *
 * Each rule exists once, here, and is used three ways: the CLI checks values
 * with `check`, the generated `meta/argument_specs.yml` takes the Ansible type
 * and choices, and the generated `tasks/validate.yml` asserts the same rule in
 * Jinja (`jinja`) so that plain `ansible-playbook` rejects what the CLI rejects.
 */
import {type Cidr, type Family, ipFamily, isCidr, parseCidr, parseIp, rangesOverlap} from './ipnet.js';
import {bgpPeerErrors, bgpReflectorErrors} from './bgp.js';

/** Regular expressions that both JavaScript and Python (Ansible's `match`) accept. */
/**
 * Regular expressions that both JavaScript and Python (Ansible's `match`) accept.
 * They hold no backslashes: Ansible re-escapes backslashes inside Jinja string
 * literals, which would change their meaning in the role. test/unit/rules.test.ts checks.
 */
export const patterns = {
  /** Linux interface names: 1..15 characters, no '/', ':', whitespace or shell metacharacters. */
  iface: '^(?![.]{1,2}$)[A-Za-z0-9_.-]{1,15}$',
  /** Go's time.ParseDuration, unsigned. */
  duration: '^(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$',
  /** The repository part of an OCI image reference (distribution/reference grammar). */
  imageRepo:
    '^((([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])([.]([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(:[0-9]+)?)/)?' +
    '[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*(/[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*)*$',
  /** An OCI image tag. */
  imageTag: '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$',
  /** A Kubernetes label key: optional DNS-subdomain prefix and '/', then a name of at most 63 characters. */
  labelKey:
    '^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$',
  /** A Kubernetes label value: empty, or at most 63 characters of [-A-Za-z0-9_.] starting and ending alphanumeric. */
  labelValue: '^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$',
  /** A DNS-1123 label (namespace names). */
  dnsLabel: '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$',
  /** A DNS-1123 subdomain (object names). */
  dnsSubdomain: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$',
  /** An absolute path without whitespace or shell metacharacters. */
  absPath: '^/[A-Za-z0-9_.@+/-]*$',
  /** The same, or empty (not set). */
  absPathOrEmpty: '^(/[A-Za-z0-9_.@+/-]*)?$',
  /** One etcd key segment. */
  keySegment: '^[A-Za-z0-9_.-]{1,128}$',
  /** Comma-separated http(s) URLs with a host name or IPv4 address and a port. */
  endpoints: '^https?://[A-Za-z0-9.-]+:[0-9]{1,5}(,https?://[A-Za-z0-9.-]+:[0-9]{1,5})*$',
} as const;

/** The values a rule may need besides the value it checks. */
export interface RuleContext {
  /** The resolved extip_ip_family, for masks. */
  ipFamily: 'ipv4' | 'ipv6';
}

export interface RuleFailure {
  rule: string;
  hint?: string;
}

/** Ansible's argument_spec type. */
export type SpecType = 'str' | 'int' | 'bool' | 'list' | 'raw';

export interface Rule {
  /** Ansible type, for argument_specs. */
  specType: SpecType;
  /** argument_specs `elements`, for lists. */
  elements?: SpecType;
  /** argument_specs `choices`. */
  choices?: readonly string[];
  /** One sentence: what a good value looks like. */
  describe: string;
  /** undefined when the value is good. */
  check(value: unknown, ctx: RuleContext): RuleFailure | undefined;
  /**
   * Jinja conditions for `ansible.builtin.assert`, with `VAR` standing for the
   * variable; all must hold. `extip_ip_family` is available.
   */
  jinja: readonly string[];
}

const fail = (rule: string, hint?: string): RuleFailure => ({rule, hint});

export function choice(values: readonly string[]): Rule {
  const describe = `one of ${values.join(', ')}`;
  return {
    specType: 'str',
    choices: values,
    describe,
    check(value) {
      if (typeof value === 'string' && values.includes(value)) return undefined;
      const near = typeof value === 'string' ? nearest(value, values) : undefined;
      return fail(describe, near ? `did you mean "${near}"?` : undefined);
    },
    jinja: [`VAR in ${JSON.stringify(values)}`],
  };
}

/** Ansible's int conversion accepts integers and strings of digits. */
export function toInt(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  if (typeof value === 'string' && /^-?[0-9]+$/.test(value)) return Number(value);
  return undefined;
}

export function integer(min: number, max?: number): Rule {
  const describe = max === undefined ? `a whole number, at least ${min}` : `a whole number from ${min} to ${max}`;
  return {
    specType: 'int',
    describe,
    check(value) {
      const n = toInt(value);
      if (n === undefined || n < min || (max !== undefined && n > max)) return fail(describe);
      return undefined;
    },
    jinja: [
      `VAR | string is regex('^-?[0-9]+$', match_type='fullmatch')`,
      `VAR | int >= ${min}`,
      ...(max === undefined ? [] : [`VAR | int <= ${max}`]),
    ],
  };
}

/** The mask's upper bound depends on extip_ip_family. */
export const mask: Rule = {
  specType: 'int',
  describe: 'a prefix length from 1 to 32 (1 to 128 when extip_ip_family is ipv6)',
  check(value, ctx) {
    const n = toInt(value);
    const max = ctx.ipFamily === 'ipv6' ? 128 : 32;
    if (n === undefined || n < 1 || n > max) return fail(`a prefix length from 1 to ${max} (extip_ip_family is ${ctx.ipFamily})`);
    return undefined;
  },
  jinja: [
    `VAR | string is regex('^[0-9]+$', match_type='fullmatch')`,
    `VAR | int >= 1`,
    `VAR | int <= (128 if extip_ip_family == 'ipv6' else 32)`,
  ],
};

const TRUE_WORDS = ['true', 'yes', 'on', '1', 'y', 't'];
const FALSE_WORDS = ['false', 'no', 'off', '0', 'n', 'f'];

/** Ansible's boolean conversion: real booleans, 0/1, and the usual words. */
export function toBool(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (value === 0 || value === 1) return value === 1;
  if (typeof value === 'string') {
    const word = value.trim().toLowerCase();
    if (TRUE_WORDS.includes(word)) return true;
    if (FALSE_WORDS.includes(word)) return false;
  }
  return undefined;
}

export const bool: Rule = {
  specType: 'bool',
  describe: 'true or false (yes/no and "true"/"false" are accepted, as Ansible does)',
  check: (value) => (toBool(value) === undefined ? fail('true or false') : undefined),
  jinja: [`VAR | string | lower in ${JSON.stringify([...TRUE_WORDS, ...FALSE_WORDS])}`],
};

export function pattern(name: keyof typeof patterns, describe: string, maxLength = 4096): Rule {
  const re = new RegExp(patterns[name]);
  return {
    specType: 'str',
    describe,
    check(value) {
      if (typeof value !== 'string' || value.length > maxLength || !re.test(value)) return fail(describe);
      return undefined;
    },
    jinja: [`VAR is string`, `VAR | length <= ${maxLength}`, `VAR is regex(${pyString(patterns[name])}, match_type='fullmatch')`],
  };
}

/** Free text that must not be empty. */
export const text: Rule = {
  specType: 'str',
  describe: 'a non-empty string',
  check: (value) => (typeof value === 'string' && value.trim() !== '' ? undefined : fail('a non-empty string')),
  jinja: [`VAR is string`, `VAR | trim | length > 0`],
};

/** Largest filter text accepted: far above any real filter, well below etcd v2's value limit and one argv string (128 KiB). */
export const BIRD_BODY_MAX_BYTES = 16384;

/**
 * Problems with a text that calico/node pastes into the body of BIRD's
 * `function custom_filters()`: it must be non-empty, at most
 * BIRD_BODY_MAX_BYTES, and its braces must balance outside strings and
 * comments, so that it cannot close the function and declare protocols or
 * filters of its own. The role's `extip_bird_body_errors` filter says the same.
 */
export function birdBodyErrors(value: unknown): string[] {
  if (typeof value !== 'string') return ['not a string'];
  if (!value.trim()) return ['empty'];
  const size = Buffer.byteLength(value, 'utf8');
  if (size > BIRD_BODY_MAX_BYTES) return [`${size} bytes; at most ${BIRD_BODY_MAX_BYTES}`];
  let depth = 0;
  let line = 1;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c === '\n') line++;
    else if (c === '#') {
      while (i + 1 < value.length && value[i + 1] !== '\n') i++;
    } else if (c === '/' && value[i + 1] === '*') {
      const end = value.indexOf('*/', i + 2);
      if (end < 0) return [`a comment opened on line ${line} is not closed`];
      line += value.slice(i, end).split('\n').length - 1;
      i = end + 1;
    } else if (c === '"') {
      const start = line;
      for (i++; i < value.length && value[i] !== '"'; i++) {
        if (value[i] === '\\') i++;
        else if (value[i] === '\n') line++;
      }
      if (i >= value.length) return [`a string opened on line ${start} is not closed`];
    } else if (c === '{') depth++;
    else if (c === '}' && --depth < 0) return [`the "}" on line ${line} would close custom_filters() itself`];
  }
  return depth > 0 ? [`${depth} "{" not closed`] : [];
}

/** A BIRD filter body for calico/node's custom_filters(). */
export const birdBody: Rule = {
  specType: 'str',
  describe: `BIRD statements for the body of the custom_filters() function of calico/node: balanced braces, at most ${BIRD_BODY_MAX_BYTES} bytes`,
  check(value) {
    const errors = birdBodyErrors(value);
    return errors.length ? fail(birdBody.describe, errors.join('; ')) : undefined;
  },
  jinja: [`VAR is string`, `(VAR | extip_bird_body_errors) == []`],
};

/**
 * A rule for a list of strings: `expected` is what it says of a value that is
 * not a list; `items` checks the strings (the first problem it finds).
 */
function stringList(describe: string, expected: string, items: (list: string[]) => RuleFailure | undefined, jinja: string[]): Rule {
  return {
    specType: 'list',
    elements: 'str',
    describe,
    check(value) {
      if (!Array.isArray(value)) return fail(expected);
      return items(value as string[]);
    },
    jinja: [`VAR is sequence and VAR is not string`, ...jinja],
  };
}

/** A list of CIDRs, each a network address with its prefix. */
export const cidrList: Rule = stringList(
  'a list of CIDRs such as ["10.0.0.0/24"], host bits zero, not overlapping',
  'a list of CIDRs such as ["10.0.0.0/24"]',
  (items) => {
    const parsed: Cidr[] = [];
    for (const item of items) {
      if (typeof item !== 'string') return fail('a list of CIDR strings', `${JSON.stringify(item)} is not a string`);
      const cidr = parseCidr(item);
      if (!isCidr(cidr)) return fail('each entry a CIDR with host bits zero', `"${item}": ${cidr.error}`);
      const clash = parsed.find((p) => p.family === cidr.family && rangesOverlap({first: p.network, last: p.last}, {first: cidr.network, last: cidr.last}));
      if (clash) return fail('CIDRs must not overlap', `"${item}" overlaps "${clash.text}"`);
      parsed.push(cidr);
    }
    return undefined;
  },
  [`(VAR | extip_cidr_errors) == []`],
);

/** A list of namespace names, no repeats. */
export const nameList: Rule = stringList(
  'a list of namespace names such as ["ingress", "team-a"]',
  'a list of namespace names such as ["ingress", "team-a"]',
  (value) => {
    const re = new RegExp(patterns.dnsLabel);
    const bad = value.find((v) => typeof v !== 'string' || !re.test(v));
    if (bad !== undefined) return fail('each entry a namespace name: lowercase letters, digits and "-", at most 63', `${JSON.stringify(bad)} is not one`);
    const seen = new Set<string>();
    const twice = (value as string[]).find((v) => seen.size === seen.add(v).size);
    if (twice !== undefined) return fail('no repeats', `"${twice}" is listed twice`);
    return undefined;
  },
  [
    `VAR | reject('string') | list == []`,
    `VAR | reject('regex', ${pyString(patterns.dnsLabel)}, match_type='fullmatch') | list == []`,
    `VAR | unique | length == VAR | length`,
  ],
);

/** One CIDR (network address and prefix). */
export const cidr: Rule = {
  specType: 'str',
  describe: 'a CIDR such as 10.233.0.0/18, host bits zero',
  check(value) {
    if (typeof value !== 'string') return fail('a CIDR string such as 10.233.0.0/18');
    const parsed = parseCidr(value);
    return isCidr(parsed) ? undefined : fail('a CIDR such as 10.233.0.0/18, host bits zero', parsed.error);
  },
  jinja: [`VAR is string`, `([VAR] | extip_cidr_errors) == []`],
};

export interface Pool {
  name: string;
  cidr: string;
  ranges?: Array<[string, string]>;
}

/** IpClaimPools: unique names, valid non-overlapping CIDRs, ranges inside their CIDR. */
export const pools: Rule = {
  specType: 'list',
  elements: 'raw',
  describe:
    'a list of pools, each {name, cidr, ranges: [[first, last], ...], namespaces: [...]}; names unique DNS names, CIDRs valid and not overlapping, ranges inside their CIDR and not overlapping, namespaces (optional: only Services there get its addresses) namespace names',
  check(value) {
    const errors = poolErrors(value);
    return errors.length ? fail('IP pools: ' + pools.describe, errors.join('; ')) : undefined;
  },
  jinja: [`VAR is sequence and VAR is not string`, `(VAR | extip_pool_errors) == []`],
};

/** The same checks as the role's `extip_pool_errors` filter (filter_plugins/extip_addresses.py). */
export function poolErrors(value: unknown): string[] {
  if (!Array.isArray(value)) return ['not a list'];
  const errors: string[] = [];
  const seen: Array<{name: string; cidr: Cidr}> = [];
  value.forEach((pool: unknown, index) => {
    const where = `pool ${index + 1}`;
    if (typeof pool !== 'object' || pool === null || Array.isArray(pool)) {
      errors.push(`${where} is not a mapping`);
      return;
    }
    const p = pool as Record<string, unknown>;
    const unknownKeys = Object.keys(p).filter((k) => !['name', 'cidr', 'ranges', 'namespaces'].includes(k));
    if (unknownKeys.length) errors.push(`${where} has unknown keys ${unknownKeys.join(', ')} (allowed: name, cidr, ranges, namespaces)`);
    if (p.namespaces !== undefined) {
      if (!Array.isArray(p.namespaces) || !p.namespaces.length) errors.push(`${where}: namespaces is not a non-empty list of namespace names`);
      else for (const ns of p.namespaces as unknown[]) if (typeof ns !== 'string' || !/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(ns)) errors.push(`${where}: namespace ${JSON.stringify(ns)} is not a namespace name`);
    }
    const name = p.name;
    if (typeof name !== 'string' || name.length > 253 || !new RegExp(patterns.dnsSubdomain).test(name)) {
      errors.push(`${where}: name ${JSON.stringify(name ?? null)} is not a lowercase DNS name`);
    } else if (seen.some((s) => s.name === name)) {
      errors.push(`${where}: name "${name}" is used twice`);
    }
    if (typeof p.cidr !== 'string') {
      errors.push(`${where}: cidr is missing`);
      return;
    }
    const cidr = parseCidr(p.cidr);
    if (!isCidr(cidr)) {
      errors.push(`${where}: cidr "${p.cidr}" ${cidr.error}`);
      return;
    }
    const clash = seen.find((s) => s.cidr.family === cidr.family && rangesOverlap({first: s.cidr.network, last: s.cidr.last}, {first: cidr.network, last: cidr.last}));
    if (clash) errors.push(`${where}: cidr ${cidr.text} overlaps pool "${clash.name}" (${clash.cidr.text})`);
    seen.push({name: String(name), cidr});
    if (p.ranges === undefined) return;
    if (!Array.isArray(p.ranges)) {
      errors.push(`${where}: ranges is not a list of [first, last] pairs`);
      return;
    }
    const done: Array<{first: bigint; last: bigint; text: string}> = [];
    for (const range of p.ranges as unknown[]) {
      if (!Array.isArray(range) || range.length !== 2 || range.some((r) => typeof r !== 'string')) {
        errors.push(`${where}: range ${JSON.stringify(range)} is not a [first, last] pair of addresses`);
        continue;
      }
      const [a, b] = (range as string[]).map((r) => parseIp(r));
      if (!a || !b) {
        errors.push(`${where}: range ${JSON.stringify(range)} has an entry that is not an IP address`);
        continue;
      }
      const text = `${range[0]}-${range[1]}`;
      if (a.family !== cidr.family || b.family !== cidr.family) {
        errors.push(`${where}: range ${text} is not in the address family of ${cidr.text}`);
      } else if (a.value > b.value) {
        errors.push(`${where}: range ${text} ends before it starts`);
      } else if (a.value < cidr.network || b.value > cidr.last) {
        errors.push(`${where}: range ${text} is not inside ${cidr.text}`);
      } else {
        const overlap = done.find((d) => rangesOverlap(d, {first: a.value, last: b.value}));
        if (overlap) errors.push(`${where}: range ${text} overlaps range ${overlap.text}`);
        done.push({first: a.value, last: b.value, text});
      }
    }
  });
  return errors;
}

/** extip_bgp_peers: the checks of bgpPeerErrors() in lib/bgp.ts. */
export const bgpPeers: Rule = {
  specType: 'list',
  elements: 'raw',
  describe: 'a list of peers, each {address, asn, nodes: [...], bfd: true|false, port}; address an IPv4 address listed once, asn 1 to 4294967295, nodes (optional) node names',
  check(value) {
    const errors = bgpPeerErrors(value);
    return errors.length ? fail('BGP peers: ' + bgpPeers.describe, errors.join('; ')) : undefined;
  },
  jinja: [`VAR is sequence and VAR is not string`, `(VAR | extip_bgp_peer_errors) == []`],
};

/** extip_bgp_route_reflectors: the checks of bgpReflectorErrors() in lib/bgp.ts. */
export const bgpReflectors: Rule = {
  specType: 'list',
  elements: 'raw',
  // No apostrophe: the text goes into the role's Jinja error messages.
  describe: 'a list of route reflectors, one a rack, each {address, nodes: [...], peers: [{address, asn, bfd, port}]}; address an IPv4 address in the subnet of the rack, listed once; nodes the node names of the rack, each in one reflector; peers the ToR of the rack',
  check(value) {
    const errors = bgpReflectorErrors(value);
    return errors.length ? fail('BGP route reflectors: ' + bgpReflectors.describe, errors.join('; ')) : undefined;
  },
  jinja: [`VAR is sequence and VAR is not string`, `(VAR | extip_bgp_reflector_errors) == []`],
};

/** Python string literal for a pattern inside a Jinja expression. */
function pyString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** The candidate closest to `word` by edit distance, if it is close enough to be a likely typo. */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(word.length / 4)) ? best : undefined;
}

export function editDistance(a: string, b: string): number {
  const row = Array.from({length: b.length + 1}, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const saved = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = saved;
    }
  }
  return row[b.length];
}

export {ipFamily};
export type {Family};
