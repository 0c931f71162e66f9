import { describe, expect, it } from 'vitest';
import { addressMatcher, clientAddressOf, clientNetwork, isTrustedPeer, normalizeAddress, parseNetwork } from '../../src/ip-addresses.ts';

describe('client addresses', () => {
  it('spells each address one way', () => {
    expect(normalizeAddress('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(normalizeAddress('::FFFF:cb00:7107')).toBe('203.0.113.7');
    expect(normalizeAddress('0:0:0:0:0:ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(normalizeAddress(' 203.0.113.7:51234 ')).toBe('203.0.113.7');
    expect(normalizeAddress('[2001:DB8::1]:443')).toBe('2001:db8::1');
    expect(normalizeAddress('fe80::1%eth0')).toBe('fe80::1');
    expect(normalizeAddress('unknown')).toBe('unknown');
    // Not mapped: the IPv4-compatible and NAT64 forms stay IPv6.
    expect(normalizeAddress('64:ff9b::203.0.113.7')).toBe('64:ff9b::203.0.113.7');
  });

  it('counts an IPv6 client by its /64, an IPv4 client by its address', () => {
    expect(clientNetwork('2001:db8:1:2:aaaa:bbbb:cccc:dddd')).toBe('2001:db8:1:2::/64');
    expect(clientNetwork('2001:db8:1:2::9')).toBe('2001:db8:1:2::/64');
    expect(clientNetwork('2001:0DB8:0001:0002:0000::1')).toBe('2001:db8:1:2::/64');
    expect(clientNetwork('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(clientNetwork('::1')).toBe('0:0:0:0::/64');
    expect(clientNetwork('2001:db8:1:3::1')).not.toBe(clientNetwork('2001:db8:1:2::1'));
    expect(clientNetwork('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(clientNetwork('203.0.113.7')).toBe('203.0.113.7');
  });

  it('reads addresses and CIDR networks, and refuses anything else', () => {
    expect(parseNetwork('10.0.0.0/8')).toEqual({ address: '10.0.0.0', prefix: 8, family: 'ipv4' });
    expect(parseNetwork('2001:db8::/32')).toEqual({ address: '2001:db8::', prefix: 32, family: 'ipv6' });
    expect(parseNetwork('::1')).toEqual({ address: '::1', prefix: 128, family: 'ipv6' });
    for (const bad of ['10.0.0.0/33', '2001:db8::/129', 'localhost', '10.0.0.0/8/1', '10.0.0.0/', '10.0.0.0/x', '300.1.1.1', '']) {
      expect(parseNetwork(bad), bad).toBeUndefined();
    }
  });

  it('matches addresses against addresses and networks, in either spelling', () => {
    const trusted = addressMatcher(['10.0.0.0/8', '192.0.2.1', '2001:db8::/32']);
    expect(trusted('10.200.3.4')).toBe(true);
    expect(trusted('::ffff:10.200.3.4')).toBe(true);
    expect(trusted('192.0.2.1')).toBe(true);
    expect(trusted('192.0.2.2')).toBe(false);
    expect(trusted('2001:DB8:ffff::1')).toBe(true);
    expect(trusted('2001:db9::1')).toBe(false);
    expect(trusted('not an address')).toBe(false);
  });
});

describe('the client behind proxies', () => {
  const PEER = '10.0.0.5';

  it('ignores X-Forwarded-For without a proxy rule', () => {
    expect(clientAddressOf('::ffff:198.51.100.1', '203.0.113.7', undefined)).toBe('198.51.100.1');
  });

  it('takes the entry the nearest proxy wrote, not what the client wrote before it', () => {
    const oneHop = { hops: 1 };
    expect(clientAddressOf(PEER, '203.0.113.7', oneHop)).toBe('203.0.113.7');
    expect(clientAddressOf(PEER, '10.1.0.1, 203.0.113.7', oneHop)).toBe('203.0.113.7');
    expect(clientAddressOf(PEER, '127.0.0.1,203.0.113.7', oneHop)).toBe('203.0.113.7');
    expect(clientAddressOf(PEER, undefined, oneHop)).toBe(PEER);
    // Two proxies (a CDN, then a load balancer): the load balancer wrote the CDN's address last.
    expect(clientAddressOf(PEER, '127.0.0.1, 203.0.113.7, 198.51.100.20', { hops: 2 })).toBe('203.0.113.7');
    // Fewer entries than hops: the leftmost one, which a proxy wrote.
    expect(clientAddressOf(PEER, '203.0.113.7', { hops: 3 })).toBe('203.0.113.7');
  });

  it('with trusted proxies, takes the nearest address that is not one, and ignores the header from anyone else', () => {
    const rule = { isTrustedProxy: addressMatcher(['10.0.0.0/8']) };
    expect(clientAddressOf(PEER, '127.0.0.1, 203.0.113.7', rule)).toBe('203.0.113.7');
    expect(clientAddressOf(PEER, '127.0.0.1, 203.0.113.7, 10.9.9.9', rule)).toBe('203.0.113.7');
    expect(clientAddressOf('198.51.100.1', '127.0.0.1', rule)).toBe('198.51.100.1');
    expect(clientAddressOf(PEER, '10.1.1.1', rule)).toBe('10.1.1.1');
    expect(clientAddressOf(PEER, '[2001:db8::7]:4711', rule)).toBe('2001:db8::7');
  });

  it('trusts what a peer forwards as far as the rule trusts the peer', () => {
    const rule = { isTrustedProxy: addressMatcher(['10.0.0.0/8']) };
    expect(isTrustedPeer(PEER, rule)).toBe(true);
    expect(isTrustedPeer('::ffff:10.1.2.3', rule)).toBe(true);
    expect(isTrustedPeer('198.51.100.1', rule)).toBe(false);
    // With hops, every request passed the proxies; without a rule (proxy: false), no peer is one.
    expect(isTrustedPeer('198.51.100.1', { hops: 1 })).toBe(true);
    expect(isTrustedPeer(PEER, undefined)).toBe(false);
  });
});
