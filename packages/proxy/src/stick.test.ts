import { describe, expect, it } from 'vitest';
import net from 'node:net';
import { type TestBackend } from '../../../test/helpers/backends.js';
import { request } from '../../../test/helpers/client.js';
import { requestLogs, startProxy, type RunningProxy } from '../../../test/helpers/proxy.js';
import { useScope } from '../../../test/helpers/scope.js';

const scope = useScope();
const backends = (n: number): Promise<TestBackend[]> => scope.backends(n);

async function proxy(cfg: string, vars: Record<string, number>): Promise<RunningProxy> {
  const p = await startProxy(cfg, vars);
  scope.defer(() => p.close());
  return p;
}

const via = async (p: RunningProxy, src: string, headers?: Record<string, string>) =>
  String((await request(p.port, { localAddress: src, headers })).headers['x-served-by']);

describe('stick rules (HTTP)', () => {
  it('stick on src: a client keeps its server, the table records it, a down server is rebalanced and overwritten', async () => {
    const [a, b, c] = await backends(3);
    const p = await proxy(
      `
defaults
    mode http
frontend fe
    bind 127.0.0.1:{{port}}
    default_backend be
backend be
    balance roundrobin
    stick-table type ip size 1k expire 10m
    stick on src
    server web1 127.0.0.1:{{p1}}
    server web2 127.0.0.1:{{p2}}
    server web3 127.0.0.1:{{p3}}
`,
      { p1: a!.port, p2: b!.port, p3: c!.port },
    );
    const table = p.proxy.tables.get('be')!;
    const first: string[] = [];
    for (let i = 1; i <= 30; i++) first.push(await via(p, `127.20.0.${i}`));
    expect(new Set(first).size).toBe(3);
    for (let i = 1; i <= 30; i++) expect(await via(p, `127.20.0.${i}`)).toBe(first[i - 1]);
    expect(table.count).toBe(30);
    expect(table.lookup('127.20.0.1')).toBe(first[0]);
    const logs = requestLogs(p);
    expect(logs.slice(0, 30).every((l) => l.decided_by === 'stick-first' && l.stick === 'miss')).toBe(true);
    expect(logs.slice(30).every((l) => l.decided_by === 'stick' && l.stick === 'hit')).toBe(true);
    // The server of client 1 goes into maintenance: rebalanced, and the entry overwritten.
    const victim = p.proxy.backends.get('be')!.serverByName(first[0]!)!;
    victim.admin = 'maint';
    p.proxy.backends.get('be')!.rebuild();
    const moved = await via(p, '127.20.0.1');
    expect(moved).not.toBe(first[0]);
    expect(table.lookup('127.20.0.1')).toBe(moved);
  });

  it('learns a session id the application sets (store-response res.cook) and matches it on requests', async () => {
    const [a, b] = await backends(2);
    for (const be of [a!, b!]) {
      be.handler = (req, res) => {
        const h: Record<string, string> = { 'x-served-by': be.name };
        if (!/JSESSIONID=/.test(req.headers.cookie ?? '')) h['set-cookie'] = `JSESSIONID=${be.name}-${Math.random().toString(36).slice(2)}; Path=/`;
        res.writeHead(200, h).end('ok');
      };
    }
    const p = await proxy(
      `
defaults
    mode http
frontend fe
    bind 127.0.0.1:{{port}}
    default_backend be
backend be
    balance roundrobin
    stick-table type string len 64 size 1k expire 30m
    stick match req.cook(JSESSIONID)
    stick store-response res.cook(JSESSIONID)
    server web1 127.0.0.1:{{p1}}
    server web2 127.0.0.1:{{p2}}
`,
      { p1: a!.port, p2: b!.port },
    );
    for (let i = 0; i < 6; i++) {
      const r = await request(p.port);
      const sid = String(r.headers['set-cookie']![0]).split(';')[0]!;
      const server = String(r.headers['x-served-by']);
      for (let k = 0; k < 3; k++) expect(String((await request(p.port, { headers: { cookie: sid } })).headers['x-served-by'])).toBe(server);
    }
    expect(p.proxy.tables.get('be')!.count).toBe(6);
  });

  it('consults cookie persistence before stick rules', async () => {
    const [a, b] = await backends(2);
    const p = await proxy(
      `
defaults
    mode http
frontend fe
    bind 127.0.0.1:{{port}}
    default_backend be
backend be
    cookie SRV insert indirect nocache
    stick-table type ip size 1k
    stick on src
    server web1 127.0.0.1:{{p1}} cookie w1
    server web2 127.0.0.1:{{p2}} cookie w2
`,
      { p1: a!.port, p2: b!.port },
    );
    const s = await via(p, '127.21.0.1');
    const other = s === 'web1' ? 'w2' : 'w1';
    expect(await via(p, '127.21.0.1', { cookie: `SRV=${other}` })).toBe(other === 'w1' ? 'web1' : 'web2');
  });
});

describe('TCP mode', () => {
  it('proxies L4 with stick on src', async () => {
    const echo: net.Server[] = [];
    const ports: number[] = [];
    for (const name of ['t1', 't2', 't3']) {
      const srv = net.createServer((s) => s.on('data', (d) => s.end(`${name}:${d.toString()}`)));
      await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
      echo.push(srv);
      ports.push((srv.address() as net.AddressInfo).port);
      scope.defer(() => new Promise<void>((r) => srv.close(() => r())));
    }
    const p = await proxy(
      `
defaults
    mode tcp
    timeout connect 1s
frontend fe
    bind 127.0.0.1:{{port}}
    default_backend be
backend be
    balance leastconn
    stick-table type ip size 1k
    stick on src
    server t1 127.0.0.1:{{p1}}
    server t2 127.0.0.1:{{p2}}
    server t3 127.0.0.1:{{p3}}
`,
      { p1: ports[0]!, p2: ports[1]!, p3: ports[2]! },
    );
    const talk = (src: string) =>
      new Promise<string>((resolve, reject) => {
        const s = net.connect({ port: p.port, host: '127.0.0.1', localAddress: src }, () => s.write('hi'));
        let out = '';
        s.on('data', (d) => (out += d.toString()));
        s.on('end', () => resolve(out));
        s.on('error', reject);
      });
    const first: string[] = [];
    for (let i = 1; i <= 12; i++) first.push(await talk(`127.22.0.${i}`));
    expect(first.every((x) => /^t[123]:hi$/.test(x))).toBe(true);
    expect(new Set(first).size).toBeGreaterThan(1);
    for (let i = 1; i <= 12; i++) expect(await talk(`127.22.0.${i}`)).toBe(first[i - 1]);
    expect(p.proxy.tables.get('be')!.count).toBe(12);
  });
});
