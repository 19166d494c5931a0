import { describe, expect, it } from 'vitest';
import { IP, formatV6, parseIp, parseIpPattern, v6EmbeddedV4 } from './ip.js';

describe('parseIp', () => {
  it('accepts dotted quads and IPv6 text, rejects the rest', () => {
    expect(parseIp('1.2.3.4')).toBe(4);
    expect(IP.v4).toBe(0x01020304);
    expect(parseIp('255.255.255.255')).toBe(4);
    expect(IP.v4).toBe(0xffffffff);
    for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.0.0.1', '1..2.3', 'a.b.c.d', '1.2.3.4 ', '01234.1.1.1', ':', ':::', '1::2::3', '12345::', 'g::1', '1:2:3:4:5:6:7:8:9', '::1:', '1.2.3.4:80']) {
      expect(parseIp(bad), bad).toBe(0);
    }
    expect(parseIp('::')).toBe(6);
    expect([...IP.g]).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(parseIp('2001:DB8::1')).toBe(6);
    expect([...IP.g]).toEqual([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]);
    expect(parseIp('1:2:3:4:5:6:7:8')).toBe(6);
    expect(parseIp('::ffff:10.0.0.1')).toBe(6);
    expect([...IP.g]).toEqual([0, 0, 0, 0, 0, 0xffff, 0x0a00, 1]);
    expect(v6EmbeddedV4()).toBe(true);
    expect(IP.v4).toBe(0x0a000001);
    expect(parseIp('fe80::1%eth0')).toBe(6);
    expect(parseIp('1::')).toBe(6);
    expect([...IP.g]).toEqual([1, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('formats IPv6 as RFC 5952', () => {
    expect(formatV6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1])).toBe('2001:db8::1');
    expect(formatV6([0, 0, 0, 0, 0, 0, 0, 0])).toBe('::');
    expect(formatV6([1, 0, 0, 0, 0, 0, 0, 0])).toBe('1::');
    expect(formatV6([1, 0, 1, 0, 0, 1, 0, 0])).toBe('1:0:1::1:0:0');
    expect(formatV6([1, 2, 3, 4, 5, 6, 7, 0])).toBe('1:2:3:4:5:6:7:0');
  });

  it('patterns: abbreviated IPv4, bits and dotted masks, IPv6 prefixes', () => {
    expect(parseIpPattern('127.1')).toEqual({ v: 4, net: 0x7f000001, mask: 0xffffffff });
    expect(parseIpPattern('10.12/8')).toEqual({ v: 4, net: 0x0a000000, mask: 0xff000000 });
    expect(parseIpPattern('192.168.1/22')).toEqual({ v: 4, net: 0xc0a80000, mask: 0xfffffc00 });
    expect(parseIpPattern('10.0.0.0/255.255.0.0')).toEqual({ v: 4, net: 0x0a000000, mask: 0xffff0000 });
    const p6 = parseIpPattern('2001:db8:ffff::/20');
    expect(p6?.v === 6 && [...p6.g]).toEqual([0x2001, 0x0000, 0, 0, 0, 0, 0, 0]);
    expect(parseIpPattern('host.example')).toBeUndefined();
    expect(parseIpPattern('1.2.3.256')).toBeUndefined();
    expect(parseIpPattern('10.70000')).toEqual({ v: 4, net: 0x0a011170, mask: 0xffffffff });
  });
});
