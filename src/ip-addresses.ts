import { BlockList, isIP } from 'node:net';

// Client addresses as Parley compares, counts and logs them: one spelling per address, networks
// written as CIDRs, and the rule for finding the client behind proxies.

const MAPPED_IPV4 = [0, 0, 0, 0, 0, 0xffff];

/** The eight 16-bit groups of a valid IPv6 address (any spelling, dotted IPv4 tail included). */
function ipv6Groups(address: string): number[] {
  const text = address.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_, a, b, c, d) =>
    `${((Number(a) << 8) | Number(b)).toString(16)}:${((Number(c) << 8) | Number(d)).toString(16)}`);
  const [head = '', tail] = text.split('::');
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((group) => parseInt(group, 16)));
  if (tail === undefined) return parse(head);
  const [front, back] = [parse(head), parse(tail)];
  return [...front, ...Array<number>(8 - front.length - back.length).fill(0), ...back];
}

/**
 * One spelling for a client address: an IPv4-mapped IPv6 address (::ffff:203.0.113.7, as a
 * dual-stack socket reports IPv4 clients) becomes the IPv4 address, IPv6 is lower-cased without
 * a zone, and brackets or a port that a proxy wrote around it are dropped. Text that is not an
 * address comes back trimmed, otherwise unchanged.
 */
export function normalizeAddress(text: string): string {
  let address = text.trim();
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(address);
  if (bracketed) address = bracketed[1]!;
  else if (/^\d+\.\d+\.\d+\.\d+:\d+$/.test(address)) address = address.slice(0, address.lastIndexOf(':'));
  address = address.replace(/%.*$/, '').toLowerCase();
  if (isIP(address) !== 6) return isIP(address) === 4 ? address : text.trim();
  const groups = ipv6Groups(address);
  if (MAPPED_IPV4.every((value, i) => groups[i] === value)) {
    return [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join('.');
  }
  return address;
}

/**
 * The network a client is counted under: an IPv4 address is itself; an IPv6 address stands for
 * its /64, the smallest block a subscriber is given (RFC 6177), within which one client can
 * change address at will.
 */
export function clientNetwork(address: string): string {
  const normalized = normalizeAddress(address);
  if (isIP(normalized) !== 6) return normalized;
  return `${ipv6Groups(normalized).slice(0, 4).map((group) => group.toString(16)).join(':')}::/64`;
}

/** An address or a CIDR network (10.0.0.0/8, 2001:db8::/32), or undefined when the text is neither. */
export function parseNetwork(text: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | undefined {
  const [rawAddress = '', prefixText, ...rest] = text.trim().split('/');
  const address = normalizeAddress(rawAddress);
  const version = isIP(address);
  if (version === 0 || rest.length > 0) return undefined;
  const bits = version === 4 ? 32 : 128;
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = prefixText === undefined ? bits : Number(prefixText);
  if (prefix > bits) return undefined;
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

/** Whether an address is one of these addresses or inside one of these networks (each valid for parseNetwork). */
export function addressMatcher(entries: readonly string[]): (address: string) => boolean {
  const list = new BlockList();
  for (const entry of entries) {
    const network = parseNetwork(entry);
    if (!network) throw new TypeError(`not an address or CIDR network: ${entry}`);
    list.addSubnet(network.address, network.prefix, network.family);
  }
  return (address) => {
    const normalized = normalizeAddress(address);
    const version = isIP(normalized);
    return version !== 0 && list.check(normalized, version === 4 ? 'ipv4' : 'ipv6');
  };
}

/**
 * Which X-Forwarded-For entry is the client's: the one `hops` places from the right (each proxy
 * in front of Parley appends the address it received the request from), or the nearest one that
 * is not a trusted proxy.
 */
export type ForwardedForRule = { hops: number } | { isTrustedProxy: (address: string) => boolean };

/**
 * Whether the connecting peer is a proxy whose word counts: the rule that finds the client in
 * X-Forwarded-For trusts every peer with `hops` (no request reaches Parley without passing its
 * proxies), only the trusted proxies otherwise, and no peer without a rule (no proxy).
 */
export function isTrustedPeer(peer: string, rule: ForwardedForRule | undefined): boolean {
  if (!rule) return false;
  return 'hops' in rule || rule.isTrustedProxy(peer);
}

/**
 * The client's address: the one the nearest proxy Parley trusts saw. X-Forwarded-For lists the
 * addresses a request passed, each appended by the proxy that received it, so only entries on the
 * right were written by proxies; anything further left was written by the client. With trusted
 * proxies, the chain (header entries, then the connecting peer) is read from the right and the
 * first address that is not a trusted proxy is the client's, so a peer that is not a proxy keeps
 * its own address whatever it sends. Without a rule (no proxy) the header is ignored.
 */
export function clientAddressOf(peer: string, forwardedFor: string | undefined, rule: ForwardedForRule | undefined): string {
  const connecting = normalizeAddress(peer);
  if (!rule || !forwardedFor) return connecting;
  const chain = [...forwardedFor.split(',').map(normalizeAddress).filter((entry) => entry !== ''), connecting];
  if ('hops' in rule) return chain[Math.max(0, chain.length - 1 - rule.hops)]!;
  for (let i = chain.length - 1; i > 0; i--) {
    if (!rule.isTrustedProxy(chain[i]!)) return chain[i]!;
  }
  return chain[0]!;
}
