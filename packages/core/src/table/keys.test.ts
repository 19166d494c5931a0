import { describe, expect, it } from 'vitest';
import { canonicalKey } from './keys.js';

const ip = (s: string) => canonicalKey('ip', 0, s);
const ip6 = (s: string) => canonicalKey('ipv6', 0, s);
const int = (s: string) => canonicalKey('integer', 0, s);

describe('canonicalKey', () => {
  it('ip: IPv4 dotted quads, rejecting malformed ones', () => {
    expect(ip('10.0.0.1')).toBe('10.0.0.1');
    expect(ip('255.255.255.255')).toBe('255.255.255.255');
    expect(ip('0.0.0.0')).toBe('0.0.0.0');
    for (const bad of ['256.1.1.1', '1.2.3', '1.2.3.4.5', '01.2.3.4', '1.2.3.4 ', '', 'a.b.c.d', '1..2.3', '1.2.3.']) {
      expect(ip(bad), bad).toBeUndefined();
    }
  });

  it('ip: IPv6 in RFC 5952 form, mapped IPv4 as dotted quad', () => {
    expect(ip('::ffff:1.2.3.4')).toBe('1.2.3.4');
    expect(ip('::FFFF:0102:0304')).toBe('1.2.3.4');
    expect(ip('0:0:0:0:0:ffff:10.0.0.1')).toBe('10.0.0.1');
    expect(ip('2001:0DB8:0000:0000:0000:0000:0000:0001')).toBe('2001:db8::1');
    expect(ip('::1')).toBe('::1');
    expect(ip('::')).toBe('::');
  });

  it('ipv6: RFC 5952 canonical text', () => {
    expect(ip6('1.2.3.4')).toBe('::ffff:1.2.3.4');
    expect(ip6('::ffff:1.2.3.4')).toBe('::ffff:1.2.3.4');
    expect(ip6('2001:db8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1'); // first of equal runs
    expect(ip6('2001:db8:0:1:1:1:1:1')).toBe('2001:db8:0:1:1:1:1:1'); // single zero group kept
    expect(ip6('2001:db8:0000:0:1::1')).toBe('2001:db8::1:0:0:1');
    expect(ip6('2001:db8:0:0:1::')).toBe('2001:db8:0:0:1::'); // longest run wins
    expect(ip6('fe80:0:0:0:0:0:0:0')).toBe('fe80::');
    expect(ip6('0:0:0:0:0:0:0:1')).toBe('::1');
    expect(ip6('1:0:0:2:0:0:0:3')).toBe('1:0:0:2::3'); // longest run
    expect(ip6('::1.2.3.4')).toBe('::102:304');
    expect(ip6('1:2:3:4:5:6:7::')).toBe('1:2:3:4:5:6:7:0');
    for (const bad of ['1:2:3:4:5:6:7:8:9', '1::2::3', ':1::2', '1:2:3:4:5:6:7', '12345::', 'fe80::1%eth0', 'g::1', '1:2:3:4:5:6:7:8::', '::ffff:1.2.3', '1:', '']) {
      expect(ip6(bad), bad).toBeUndefined();
    }
  });

  it('integer: decimal within int64', () => {
    expect(int('42')).toBe('42');
    expect(int('-42')).toBe('-42');
    expect(int('+007')).toBe('7');
    expect(int('-0')).toBe('0');
    expect(int('9223372036854775807')).toBe('9223372036854775807');
    expect(int('-9223372036854775808')).toBe('-9223372036854775808');
    expect(int('9007199254740993')).toBe('9007199254740993');
    expect(int('-9007199254740993')).toBe('-9007199254740993');
    expect(int('-4294967296')).toBe('-4294967296');
    expect(int('999999999999999')).toBe('999999999999999');
    expect(int('9223372036854775808')).toBeUndefined();
    expect(int('-9223372036854775809')).toBeUndefined();
    for (const bad of ['', '-', '1.5', '1e3', '0x10', ' 1', '12a']) expect(int(bad), bad).toBeUndefined();
  });

  it('string: truncated to keyLen UTF-8 bytes without splitting a character', () => {
    expect(canonicalKey('string', 32, 'abc')).toBe('abc');
    expect(canonicalKey('string', 4, 'abcdef')).toBe('abcd');
    expect(canonicalKey('string', 4, 'aé€')).toBe('aé'); // 1 + 2 bytes; € (3 bytes) does not fit
    expect(canonicalKey('string', 5, 'aé€')).toBe('aé');
    expect(canonicalKey('string', 6, 'aé€')).toBe('aé€');
    expect(canonicalKey('string', 3, '😀x')).toBe('');
    expect(canonicalKey('string', 8, '')).toBe('');
  });
});
