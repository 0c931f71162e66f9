import { describe, expect, it } from 'vitest';
import { describeUserAgent, ipPrefix } from '../../src/accounts/session-devices.ts';

// What the sessions list keeps of a browser: its name and system, and the network of its address.
describe('session devices', () => {
  it('names the common browsers and systems from their user agents', () => {
    expect(describeUserAgent('Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0'))
      .toEqual({ browser: 'Edge', os: 'Windows' });
    expect(describeUserAgent('Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15'))
      .toEqual({ browser: 'Safari', os: 'macOS' });
    expect(describeUserAgent('Mozilla/5.0 (Android 15; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0')).toEqual({ browser: 'Firefox', os: 'Android' });
    expect(describeUserAgent('curl/8.5.0')).toEqual({ browser: undefined, os: undefined });
  });

  it('keeps only the /24 of an IPv4 address and the /48 of an IPv6 one', () => {
    expect(ipPrefix('203.0.113.77')).toBe('203.0.113.0/24');
    expect(ipPrefix('::ffff:198.51.100.9')).toBe('198.51.100.0/24');
    expect(ipPrefix('2001:db8:abcd:12::1')).toBe('2001:db8:abcd::/48');
    expect(ipPrefix('2001:db8::1')).toBe('2001:db8:0::/48');
    expect(ipPrefix('::1')).toBe('0:0:0::/48');
    expect(ipPrefix('not an address')).toBeUndefined();
  });
});
