/** Small IPv4/IPv6 arithmetic: parsing addresses and CIDRs into bigints. */
import {isIPv4, isIPv6} from 'node:net';

export type Family = 4 | 6;

export interface Cidr {
  text: string;
  family: Family;
  /** First address of the network. */
  network: bigint;
  prefix: number;
  /** Last address of the network. */
  last: bigint;
}

export function ipFamily(text: string): Family | undefined {
  if (isIPv4(text)) return 4;
  if (isIPv6(text)) return 6;
  return undefined;
}

export function parseIp(text: string): {family: Family; value: bigint} | undefined {
  const family = ipFamily(text);
  if (family === 4) {
    const value = text.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
    return {family, value};
  }
  if (family === 6) return {family, value: ipv6ToBigint(text)};
  return undefined;
}

function ipv6ToBigint(text: string): bigint {
  let address = text;
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hextets.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(address);
  if (v4) {
    const parts = v4[1].split('.').map(Number);
    address = address.slice(0, -v4[1].length) + `${((parts[0] << 8) | parts[1]).toString(16)}:${((parts[2] << 8) | parts[3]).toString(16)}`;
  }
  const [head, tailPart] = address.split('::');
  const headParts = head ? head.split(':') : [];
  const tailParts = tailPart !== undefined && tailPart !== '' ? tailPart.split(':') : [];
  const missing = 8 - headParts.length - tailParts.length;
  const all = [...headParts, ...Array<string>(tailPart !== undefined ? missing : 0).fill('0'), ...tailParts];
  return all.reduce((acc, part) => (acc << 16n) | BigInt(parseInt(part, 16)), 0n);
}

/**
 * An address in the one spelling `ip` reports (IPv6 compressed, lower case),
 * or a reason it is refused. IPv4-mapped IPv6 addresses are refused: the
 * kernel would bring up an IPv6 address that no IPv4 client ever reaches.
 */
export function canonicalIp(text: string): {ip: string; family: 4 | 6} | {refused: string} {
  if (typeof text !== 'string') return {refused: 'not an IP address'};
  if (isIPv4(text)) return {ip: text, family: 4};
  if (!isIPv6(text)) return {refused: 'not an IP address'};
  // isIPv6 accepts a zone ("fe80::1%eth0"): an address of one host's link, never a Service's.
  if (text.includes('%')) return {refused: 'an address with a zone (%...), which names one host\'s interface'};
  let ip: string;
  try {
    ip = new URL(`http://[${text}]/`).hostname.slice(1, -1);
  } catch {
    return {refused: 'not an IP address'};
  }
  if (/^::ffff:[0-9a-f]{1,4}:[0-9a-f]{1,4}$/.test(ip)) return {refused: 'an IPv4-mapped IPv6 address; write the IPv4 address instead'};
  return {ip, family: 6};
}

export function bits(family: Family): number {
  return family === 4 ? 32 : 128;
}

/** Parses `a.b.c.d/n`; `strict` also requires the host bits to be zero. */
export function parseCidr(text: string, strict = true): Cidr | {error: string} {
  const slash = text.indexOf('/');
  if (slash < 0) return {error: 'has no /prefix length'};
  const ip = parseIp(text.slice(0, slash));
  if (!ip) return {error: `"${text.slice(0, slash)}" is not an IP address`};
  const prefixText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText)) return {error: `prefix length "${prefixText}" is not a number`};
  const prefix = Number(prefixText);
  const width = bits(ip.family);
  if (prefix > width) return {error: `prefix length ${prefix} is more than ${width}`};
  const hostBits = BigInt(width - prefix);
  const network = (ip.value >> hostBits) << hostBits;
  if (strict && network !== ip.value) {
    return {error: `host bits are set; the network address is ${formatIp(network, ip.family)}/${prefix}`};
  }
  return {text, family: ip.family, network, prefix, last: network + (1n << hostBits) - 1n};
}

export function isCidr(value: Cidr | {error: string}): value is Cidr {
  return !('error' in value);
}

export function formatIp(value: bigint, family: Family): string {
  if (family === 4) {
    return [24n, 16n, 8n, 0n].map((shift) => ((value >> shift) & 255n).toString()).join('.');
  }
  const parts: string[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) parts.push(((value >> shift) & 0xffffn).toString(16));
  return parts.join(':').replace(/\b(?:0:){2,}/, ':');
}

export function rangesOverlap(a: {first: bigint; last: bigint}, b: {first: bigint; last: bigint}): boolean {
  return a.first <= b.last && b.first <= a.last;
}
