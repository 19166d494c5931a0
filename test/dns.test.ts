/**
 * DNS service discovery end to end against a real DNS server (dnsmasq on loopback), with its
 * records changed while traffic flows: the first guide's DNS example as written; SRV templates;
 * two node processes whose slots are numbered differently agreeing on every client's server.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { dynamicCookieValue } from '@stickmesh/core';
import { startBackend, type TestBackend } from './helpers/backends.js';
import { cookieFrom, request, type Resp } from './helpers/client.js';
import { makeCluster, type ClusterNode } from './helpers/cluster.js';
import { startDnsmasq, type Dnsmasq } from './helpers/dnsmasq.js';
import { startProxy } from './helpers/proxy.js';
import { waitFor } from './helpers/wait.js';

const fixtures = fileURLToPath(new URL('./fixtures/configs', import.meta.url));
const NAME = 'myservice.example.local';

let cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});
const dnsServers: Dnsmasq[] = [];
afterAll(async () => {
  for (const d of dnsServers) await d.stop();
});

async function dnsmasq(init: Parameters<typeof startDnsmasq>[0]): Promise<Dnsmasq> {
  const d = await startDnsmasq(init);
  dnsServers.push(d);
  return d;
}

async function backendsAt(hosts: string[], port = 80): Promise<TestBackend[]> {
  const out: TestBackend[] = [];
  for (const h of hosts) {
    const b = await startBackend(h, port, h);
    cleanups.push(() => b.close());
    out.push(b);
  }
  return out;
}

const servedBy = (r: Resp): string => String(r.headers['x-served-by'] ?? `status ${r.status}`);

describe('DNS service discovery', () => {
  it('runs the first guide\'s DNS example as written; clients keep their server while its address stays, others move and are re-stuck', async () => {
    const dns = await dnsmasq({ a: { [NAME]: ['127.0.53.11', '127.0.53.12'] } });
    await backendsAt(['127.0.53.11', '127.0.53.12', '127.0.53.13']);
    // Only the nameserver port and the listening port are templated.
    const text = readFileSync(path.join(fixtures, 'guide1-dynamic-dns.cfg'), 'utf8')
      .replace('127.0.0.1:5353', `127.0.0.1:${dns.port}`)
      .replace('bind :80', 'bind 127.0.0.1:{{port}}');
    const p = await startProxy(text);
    cleanups.push(() => p.close());

    // New clients are balanced over both discovered servers, each with HAProxy's dynamic cookie.
    const stuck = new Map<string, string>();
    await waitFor(async () => {
      const r = await request(p.port);
      const c = cookieFrom(r.headers, 'SERVER');
      if (r.status === 200 && c) stuck.set(servedBy(r), c);
      return stuck.size === 2;
    }, 10000, 'both discovered servers to serve');
    expect(stuck.get('127.0.53.11')).toBe(`SERVER=${dynamicCookieValue('mysecretphrase', '127.0.53.11', 80)}`);
    expect(stuck.get('127.0.53.12')).toBe(`SERVER=${dynamicCookieValue('mysecretphrase', '127.0.53.12', 80)}`);
    const slotNames = p.proxy.backends.get('webservers')!.servers.map((s) => `${s.name}=${s.address}`);
    expect(slotNames.slice(0, 3)).toEqual(['web1=127.0.53.11', 'web2=127.0.53.12', 'web3=']);

    // Traffic from the client of .12 keeps flowing while the records change.
    const keep = stuck.get('127.0.53.12')!;
    const seen: string[] = [];
    let flowing = true;
    const loop = (async () => {
      while (flowing) {
        const r = await request(p.port, { headers: { cookie: keep } });
        seen.push(servedBy(r));
        if (r.headers['set-cookie']) seen.push('unexpected set-cookie');
      }
    })();

    const t0 = Date.now();
    await dns.setA(NAME, ['127.0.53.12', '127.0.53.13']);
    const tDns = Date.now();
    // The client of the removed address moves, gets a new cookie, and then stays.
    let moved: Resp | undefined;
    await waitFor(async () => {
      const r = await request(p.port, { headers: { cookie: stuck.get('127.0.53.11')! } });
      if (r.status === 200 && servedBy(r) !== '127.0.53.11') moved = r;
      return moved;
    }, 10000, 'the client of the removed address to move');
    const tMoved = Date.now();
    const newCookie = cookieFrom(moved!.headers, 'SERVER')!;
    expect(newCookie).toBe(`SERVER=${dynamicCookieValue('mysecretphrase', servedBy(moved!), 80)}`);
    for (let i = 0; i < 5; i++) {
      const r = await request(p.port, { headers: { cookie: newCookie } });
      expect(servedBy(r)).toBe(servedBy(moved!));
      expect(r.headers['set-cookie']).toBeUndefined();
    }
    // The new address fills the freed slot and takes new clients.
    await waitFor(async () => servedBy(await request(p.port)) === '127.0.53.13', 10000, 'the new address to serve');
    const tNew = Date.now();
    flowing = false;
    await loop;
    expect(seen.length).toBeGreaterThan(0);
    expect(new Set(seen)).toEqual(new Set(['127.0.53.12']));
    expect(p.proxy.backends.get('webservers')!.servers.slice(0, 3).map((s) => `${s.name}=${s.address}`)).toEqual([
      'web1=127.0.53.13',
      'web2=127.0.53.12',
      'web3=',
    ]);
    console.log(
      `[dns] record change -> routing: dnsmasq serving after ${tDns - t0} ms; removed address's client moved after ${tMoved - t0} ms; ` +
        `new address served after ${tNew - t0} ms (timeout resolve 1s, TTL 0)`,
    );
    expect(tMoved - tDns).toBeLessThan(3000);
  }, 30000);

  it('fills a template from SRV records (port and weight from the record) and follows SRV changes', async () => {
    const [a, b] = await backendsAt(['127.0.53.21', '127.0.53.22'], 0);
    const dns = await dnsmasq({
      a: { 'a.example.local': ['127.0.53.21'], 'b.example.local': ['127.0.53.22'] },
      srv: { [`_http._tcp.${NAME}`]: [{ target: 'a.example.local', port: a!.port, weight: 2560 }, { target: 'b.example.local', port: b!.port, weight: 10 }] },
    });
    const p = await startProxy(`
resolvers mydns
    nameserver dns1 127.0.0.1:${dns.port}
    nameserver dns2 127.0.0.1:${dns.port}
    timeout resolve 200ms
frontend fe
    mode http
    bind 127.0.0.1:{{port}}
    default_backend be
backend be
    mode http
    balance roundrobin
    server-template srv 4 _http._tcp.${NAME} resolvers mydns init-addr none
`);
    cleanups.push(() => p.close());
    const be = p.proxy.backends.get('be')!;
    await waitFor(() => be.candidates.length === 2, 5000, 'both SRV targets');
    expect(be.servers.map((s) => [s.name, s.address, s.port, s.weight])).toEqual([
      ['srv1', '127.0.53.21', a!.port, 11],
      ['srv2', '127.0.53.22', b!.port, 1],
      ['srv3', '', 0, 1],
      ['srv4', '', 0, 1],
    ]);
    const hits = new Set<string>();
    for (let i = 0; i < 12; i++) hits.add(servedBy(await request(p.port)));
    expect(hits).toEqual(new Set(['127.0.53.21', '127.0.53.22']));
    await dns.setSrv(`_http._tcp.${NAME}`, [{ target: 'b.example.local', port: b!.port }]);
    await waitFor(() => be.candidates.length === 1, 5000, 'the removed SRV target to leave');
    for (let i = 0; i < 6; i++) expect(servedBy(await request(p.port))).toBe('127.0.53.22');
  }, 30000);

  it('two nodes whose slots are numbered differently agree on every client (tables by address, cookies by address)', async () => {
    const ips = ['127.0.54.11', '127.0.54.12', '127.0.54.13'];
    await backendsAt(ips);
    const dns1 = await dnsmasq({ a: { [NAME]: ips } });
    const dns2 = await dnsmasq({ a: { [NAME]: ['127.0.54.13'] } });
    const c = await makeCluster(['n1', 'n2'], (peersLines) => `
global
    admin-bind "127.0.0.1:\${ADMIN_PORT}"
peers mesh
${peersLines}
    shared-secret "\${STICKMESH_PEERS_SECRET}"
    resync-timeout 3s
    table sessions type ip size 100k expire 30m
resolvers mydns
    nameserver dns1 "127.0.0.1:\${DNS_PORT}"
    timeout resolve 200ms
defaults
    mode http
    timeout connect 1s
    timeout client 10s
    timeout server 10s
frontend web
    bind "127.0.0.1:\${PROXY_PORT}"
    default_backend app
backend app
    balance roundrobin
    cookie SERVER insert indirect nocache dynamic
    dynamic-cookie-key clusterkey
    stick on src table mesh/sessions
    server-template web 3 ${NAME}:80 resolvers mydns init-addr none
`);
    cleanups.push(() => c.stopAll());
    const [n1, n2] = c.nodes as [ClusterNode, ClusterNode];
    n1.env.DNS_PORT = String(dns1.port);
    n2.env.DNS_PORT = String(dns2.port);
    const slotLog = (n: ClusterNode, slot: string, addr: string) => () =>
      n.logs.some((l) => typeof l.msg === 'string' && l.msg === `server app/${slot} address none -> ${addr}:80`);
    await c.start(n1);
    await c.start(n2);
    await c.waitReady(n1);
    await c.waitReady(n2);
    await waitFor(slotLog(n2, 'web1', '127.0.54.13'), 5000, 'n2 to put .13 in web1');
    await dns2.setA(NAME, ips);
    await waitFor(slotLog(n2, 'web3', '127.0.54.12'), 5000, 'n2 to fill its other slots');
    // The two nodes number the same servers differently.
    expect(slotLog(n1, 'web1', '127.0.54.11')()).toBe(true);
    expect(slotLog(n2, 'web2', '127.0.54.11')()).toBe(true);

    const clients = Array.from({ length: 12 }, (_, i) => `127.0.61.${i + 1}`);
    const first = new Map<string, { server: string; cookie: string }>();
    for (const src of clients) {
      const r = await request(n1.proxyPort, { localAddress: src });
      first.set(src, { server: servedBy(r), cookie: cookieFrom(r.headers, 'SERVER')! });
    }
    expect(new Set([...first.values()].map((f) => f.server)).size).toBe(3);
    let mismatch = '';
    const agree = async (node: ClusterNode, map: Map<string, { server: string; cookie: string }>): Promise<boolean> => {
      for (const [src, f] of map) {
        const bySrc = servedBy(await request(node.proxyPort, { localAddress: src }));
        const byCookie = servedBy(await request(node.proxyPort, { headers: { cookie: f.cookie } }));
        mismatch = `${src}: want ${f.server} (${f.cookie}), by src ${bySrc}, by cookie ${byCookie}`;
        if (bySrc !== f.server || byCookie !== f.server) throw new Error(mismatch);
      }
      return true;
    };
    await waitFor(() => agree(n2, first), 10000, 'n2 to agree with n1 on every client');

    // Remove .11 everywhere: its clients move, are re-stuck, and both nodes agree again.
    const t0 = Date.now();
    await Promise.all([dns1.setA(NAME, ['127.0.54.12', '127.0.54.13']), dns2.setA(NAME, ['127.0.54.12', '127.0.54.13'])]);
    const next = new Map<string, { server: string; cookie: string }>();
    await waitFor(async () => {
      next.clear();
      for (const src of clients) {
        const r = await request(n1.proxyPort, { localAddress: src });
        const was = first.get(src)!;
        if (servedBy(r) === '127.0.54.11') return false;
        next.set(src, { server: servedBy(r), cookie: cookieFrom(r.headers, 'SERVER') ?? was.cookie });
      }
      return true;
    }, 10000, 'clients of the removed address to move on n1');
    const tMoved = Date.now() - t0;
    for (const [src, f] of first) if (f.server !== '127.0.54.11') expect(next.get(src)!.server).toBe(f.server);
    await waitFor(() => agree(n2, next), 10000, 'n2 to agree after the change');
    console.log(`[dns] two nodes: removed address left routing on n1 within ${tMoved} ms (timeout resolve 200ms)`);
  }, 60000);
});
