import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { collect, stopAll, type DynamicCookieRow } from '../../../../test/tools/haproxy-dynamic-cookies.mjs';
import { dynamicCookieInput, dynamicCookieValue } from './dynamic-cookie.js';
import { xxh64 } from './xxh64.js';

const ascii = (s: string) => new TextEncoder().encode(s);
/** Bytes (i * 31 + 7) & 255 for i < n: a deterministic pattern for length-boundary vectors. */
const pattern = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + 7) & 255);

describe('xxh64', () => {
  it('matches the reference vectors', () => {
    expect(xxh64(new Uint8Array(0))).toBe(0xef46db3751d8e999n);
    expect(xxh64(new Uint8Array(0), 0n)).toBe(0xef46db3751d8e999n);
    expect(xxh64(ascii('a'))).toBe(0xd24ec4f1a98c6e5bn);
    expect(xxh64(ascii('abc'))).toBe(0x44bc2cf5ad770999n);
  });

  it('matches xxhsum 0.8.1 on a 100-byte input (4-lane loop plus tail)', () => {
    expect(xxh64(Uint8Array.from({ length: 100 }, (_, i) => i))).toBe(0x6ac1e58032166597n);
  });

  // Expected values from `xxhsum -H64` (xxHash 0.8.1); lengths straddle the 4/8/32-byte paths.
  it.each([
    [3, 0x56e6957632a487f9n],
    [4, 0xc60d15b1e3ff8f04n],
    [7, 0xafbefc3d6c6f9a8en],
    [8, 0x3da5c7aa269683e0n],
    [12, 0x8fe8ab1c1fd0666en],
    [31, 0x4a74f3a1a39ad4a1n],
    [32, 0x8d57d6a4671cc43dn],
    [35, 0x85cbcf9e0d9cbecan],
    [36, 0xa4475c606b0abc3cn],
    [63, 0x5c320a0d2707057fn],
    [64, 0x7bbabbc45729d17en],
    [100, 0xefa0ad2d3e70c151n],
    [1000, 0x99594f4828043d35n],
  ])('matches xxhsum on %i pattern bytes', (n, expected) => {
    expect(xxh64(pattern(n))).toBe(expected);
  });

  it('hashes a subarray by its own bytes only', () => {
    const big = new Uint8Array(10);
    big.set(ascii('abc'), 4);
    expect(xxh64(big.subarray(4, 7))).toBe(0x44bc2cf5ad770999n);
  });
});

describe('dynamicCookieInput', () => {
  it('lays out key, address in network order, then the port as 4 big-endian bytes', () => {
    expect([...dynamicCookieInput('k', '10.1.2.3', 80)]).toEqual([0x6b, 10, 1, 2, 3, 0, 0, 0, 80]);
    expect([...dynamicCookieInput('', '::1', 0x1f90)]).toEqual([...new Array(15).fill(0), 1, 0, 0, 0x1f, 0x90]);
    expect([...dynamicCookieInput('', '::ffff:1.2.3.4', 1)].slice(10, 16)).toEqual([0xff, 0xff, 1, 2, 3, 4]);
  });

  it('rejects non-literal addresses and out-of-range ports', () => {
    expect(() => dynamicCookieInput('k', 'localhost', 80)).toThrow();
    expect(() => dynamicCookieInput('k', '1.2.3.256', 80)).toThrow();
    expect(() => dynamicCookieInput('k', '1::2::3', 80)).toThrow();
    expect(() => dynamicCookieInput('k', '1.2.3.4', 65536)).toThrow();
  });
});

describe('dynamicCookieValue matches haproxy', () => {
  const fixture = new URL('../../../../test/fixtures/haproxy-dynamic-cookies.json', import.meta.url);
  const rows = JSON.parse(readFileSync(fixture, 'utf8')) as DynamicCookieRow[];

  it('has a fixture with several keys and servers', () => {
    expect(rows.length).toBeGreaterThanOrEqual(6);
    expect(new Set(rows.map((r) => r.key)).size).toBeGreaterThanOrEqual(2);
  });

  it.each(rows.map((r) => [r.key, r.address, r.port, r.value] as const))(
    'key %j, %s port %i -> %s',
    (key, address, port, value) => {
      expect(dynamicCookieValue(key, address, port)).toBe(value);
    },
  );
});

function ipv6LoopbackWorks(): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(0, '::1', () => srv.close(() => resolve(true)));
  });
}

describe('live haproxy', () => {
  afterAll(() => stopAll());

  // CI installs haproxy (scripts/ensure-test-deps.mjs), so a missing binary is a failure, not a skip.
  it('inserts the cookie dynamicCookieValue predicts for a fresh random key', async () => {
    const probe = spawnSync('haproxy', ['-v'], { encoding: 'utf8' });
    if (probe.error || probe.status !== 0) {
      throw new Error(`haproxy is required for this test (apt-get install -y haproxy): ${probe.error?.message ?? probe.stderr}`);
    }
    const servers = [
      { address: '127.0.0.1', port: 0 },
      { address: '127.0.0.2', port: 0 },
      ...((await ipv6LoopbackWorks()) ? [{ address: '::1', port: 0 }] : []),
    ];
    const key = randomBytes(12).toString('base64url');
    const got = await collect([key], servers);
    expect(got).toHaveLength(servers.length);
    for (const r of got) expect(dynamicCookieValue(r.key, r.address, r.port)).toBe(r.value);
  });
});
