/** `cookie ... sign` through the proxy: signed insert, forged cookies rebalanced and counted, key rotation. */
import { afterEach, describe, expect, it } from 'vitest';
import { startBackend, type TestBackend } from './helpers/backends.js';
import { cookieFrom, request } from './helpers/client.js';
import { startProxy, type RunningProxy } from './helpers/proxy.js';

let cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

const cfg = (bs: TestBackend[], keys: string) => `
frontend fe
    mode http
    bind 127.0.0.1:{{port}}
    default_backend be
backend be
    mode http
    balance roundrobin
    cookie SRV insert indirect nocache sign
${keys}
${bs.map((b) => `    server ${b.name} 127.0.0.1:${b.port} cookie ${b.name}`).join('\n')}
`;

describe('signed cookies', () => {
  it('signs, refuses forgeries (counted), and rotates keys without losing clients', async () => {
    const bs: TestBackend[] = [];
    for (const n of ['w1', 'w2']) {
      const b = await startBackend(n);
      cleanups.push(() => b.close());
      bs.push(b);
    }
    const p1 = await startProxy(cfg(bs, '    cookie-key old 0123456789abcdefX current'));
    cleanups.push(() => p1.close());
    const first = await request(p1.port);
    const signed = cookieFrom(first.headers, 'SRV')!;
    expect(signed).toMatch(/^SRV=w[12]!old![A-Za-z0-9_-]{22}$/);
    const owner = String(first.headers['x-served-by']);
    for (let i = 0; i < 4; i++) expect((await request(p1.port, { headers: { cookie: signed } })).headers['x-served-by']).toBe(owner);

    // A client forging the other server's cookie is balanced like a new one and counted.
    const other = owner === 'w1' ? 'w2' : 'w1';
    const stats = p1.proxy.backends.get('be')!.cookie!.stats;
    const forgedHits = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const r = await request(p1.port, { headers: { cookie: `SRV=${other}` } });
      forgedHits.add(String(r.headers['x-served-by']));
      expect(cookieFrom(r.headers, 'SRV')).toMatch(/!old!/);
    }
    expect(forgedHits.size).toBe(2); // round robin, not the forged target every time
    expect(stats.rejectedSignatures).toBe(4);

    // Rotation: a proxy that knows both keys and signs with the new one keeps the old cookie's server.
    const p2 = await startProxy(cfg(bs, '    cookie-key old 0123456789abcdefX\n    cookie-key new fedcba9876543210Y current'));
    cleanups.push(() => p2.close());
    const r = await request(p2.port, { headers: { cookie: signed } });
    expect(r.headers['x-served-by']).toBe(owner);
    const resigned = cookieFrom(r.headers, 'SRV')!;
    expect(resigned).toMatch(new RegExp(`^SRV=${owner}!new!`));
    expect((await request(p2.port, { headers: { cookie: resigned } })).headers['set-cookie']).toBeUndefined();
    // A proxy that retired the old key no longer honours it.
    const p3: RunningProxy = await startProxy(cfg(bs, '    cookie-key new fedcba9876543210Y current'));
    cleanups.push(() => p3.close());
    await request(p3.port, { headers: { cookie: signed } });
    expect(p3.proxy.backends.get('be')!.cookie!.stats.rejectedSignatures).toBe(1);
    expect((await request(p3.port, { headers: { cookie: resigned } })).headers['x-served-by']).toBe(owner);
  });
});
