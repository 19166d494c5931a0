/**
 * Sticky counters through the data plane: track-sc0 with HAProxy's counting (checked against
 * haproxy 2.6 with the same configs), rate limits, and every acquired slot released.
 */
import { describe, expect, it } from 'vitest';
import net from 'node:net';
import http from 'node:http';
import { request } from '../../../../test/helpers/client.js';
import { requestLogs, type RunningProxy } from '../../../../test/helpers/proxy.js';
import { waitFor } from '../../../../test/helpers/wait.js';
import { useScope } from '../../../../test/helpers/scope.js';

const scope = useScope();

/** The value of `col` for `key` in table `id` now (undefined: key absent). */
function counter(p: RunningProxy, id: string, key: string, col: string): number | undefined {
  const c = p.proxy.tables.get(id)!.counters!;
  return c.shares(key)?.total[col];
}

const HEAD = `
defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
`;

describe('http-request track-sc0 and a rate limit', () => {
  it('admits exactly N requests of a client per window (the request is counted when tracked; denied ones count too)', async () => {
    const a = await scope.backend('web1');
    const p = await scope.proxy(
      `${HEAD}
frontend fe
    bind 127.0.0.1:{{port}}
    stick-table type ip size 1k expire 60s store http_req_rate(10s),http_req_cnt,http_err_cnt,conn_cur,conn_cnt
    http-request track-sc0 src
    http-request deny deny_status 429 if { sc_http_req_rate(0) gt 20 }
    default_backend be
backend be
    server web1 127.0.0.1:{{p1}}
`,
      { p1: a.port },
    );
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    scope.defer(() => agent.destroy());
    const statuses: number[] = [];
    for (let i = 0; i < 50; i++) statuses.push((await request(p.port, { agent, localAddress: '127.0.0.20' })).status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(20);
    expect(statuses.slice(0, 20).every((s) => s === 200)).toBe(true);
    expect(statuses.filter((s) => s === 429)).toHaveLength(30);
    expect(counter(p, 'fe', '127.0.0.20', 'http_req_cnt')).toBe(50);
    expect(counter(p, 'fe', '127.0.0.20', 'http_err_cnt')).toBe(30);
    expect(counter(p, 'fe', '127.0.0.20', 'conn_cnt')).toBe(50);
    // Another client has its own count.
    expect((await request(p.port, { localAddress: '127.0.0.21' })).status).toBe(200);
    agent.destroy();
    await waitFor(() => p.proxy.connectionCount() === 0, 3000, 'connections closed');
    expect(counter(p, 'fe', '127.0.0.20', 'conn_cur')).toBe(0);
    expect(requestLogs(p).filter((l) => l.status === 429).every((l) => l.rule === 'test.cfg:12')).toBe(true);
  });

  it('keeps the first tracking of an index per request; sc1 tracks another key in another table', async () => {
    const a = await scope.backend('web1');
    const p = await scope.proxy(
      `${HEAD}
frontend fe
    bind 127.0.0.1:{{port}}
    http-request track-sc0 src table per_ip
    http-request track-sc0 req.hdr(x-user) table per_ip
    http-request track-sc1 req.hdr(x-user) table per_user
    http-request sc-inc-gpc0(1) if { path /inc }
    http-request set-header X-Gpc %[sc_get_gpc0(1)]
    default_backend be
backend be
    server web1 127.0.0.1:{{p1}}
backend per_ip
    stick-table type ip size 1k expire 60s store http_req_cnt
backend per_user
    stick-table type string size 1k expire 60s store http_req_cnt,gpc0
`,
      { p1: a.port },
    );
    for (let i = 0; i < 3; i++) await request(p.port, { path: '/inc', headers: { 'x-user': 'alice' }, localAddress: '127.0.0.30' });
    expect(counter(p, 'per_ip', '127.0.0.30', 'http_req_cnt')).toBe(3);
    expect(p.proxy.tables.get('per_ip')!.counters!.shares('alice')).toBeUndefined();
    expect(counter(p, 'per_user', 'alice', 'http_req_cnt')).toBe(3);
    expect(counter(p, 'per_user', 'alice', 'gpc0')).toBe(3);
    expect(a.seen.map((s) => s.headers['x-gpc'])).toEqual(['1', '2', '3']);
  });

  it('tcp-request connection tracking counts the connection once and every request on it (sess_cnt, http_req_cnt), conn_cur back to 0', async () => {
    const a = await scope.backend('web1');
    const p = await scope.proxy(
      `${HEAD}
frontend fe
    bind 127.0.0.1:{{port}}
    stick-table type ip size 1k expire 60s store conn_cnt,conn_cur,sess_cnt,http_req_cnt,bytes_in_cnt,bytes_out_cnt
    tcp-request connection track-sc1 src
    http-request set-header X-Conn-Cur %[sc_conn_cur(1)]
    default_backend be
backend be
    server web1 127.0.0.1:{{p1}}
`,
      { p1: a.port },
    );
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    scope.defer(() => agent.destroy());
    for (let i = 0; i < 4; i++) expect((await request(p.port, { agent, localAddress: '127.0.0.40' })).status).toBe(200);
    expect(counter(p, 'fe', '127.0.0.40', 'conn_cnt')).toBe(1);
    expect(counter(p, 'fe', '127.0.0.40', 'sess_cnt')).toBe(1);
    expect(counter(p, 'fe', '127.0.0.40', 'http_req_cnt')).toBe(4);
    expect(counter(p, 'fe', '127.0.0.40', 'conn_cur')).toBe(1);
    expect(a.seen.map((s) => s.headers['x-conn-cur'])).toEqual(['1', '1', '1', '1']);
    expect(counter(p, 'fe', '127.0.0.40', 'bytes_out_cnt')).toBeGreaterThan(400);
    expect(counter(p, 'fe', '127.0.0.40', 'bytes_in_cnt')).toBeGreaterThan(100);
    agent.destroy();
    await waitFor(() => counter(p, 'fe', '127.0.0.40', 'conn_cur') === 0, 3000, 'conn_cur back to 0');
  });

  it('releases every tracked slot: conn_cur returns to 0 after many aborted, refused and timed-out connections', async () => {
    const a = await scope.backend('web1');
    a.handler = (_req, res) => setTimeout(() => res.end('late'), 50);
    const p = await scope.proxy(
      `${HEAD}
    timeout http-request 200
frontend fe
    bind 127.0.0.1:{{port}}
    stick-table type ip size 1k expire 60s store conn_cur,conn_cnt
    tcp-request connection track-sc0 src
    tcp-request connection reject if { src 127.0.0.52 }
    http-request track-sc1 src
    http-request deny if { path /deny }
    default_backend be
backend be
    server web1 127.0.0.1:{{p1}}
`,
      { p1: a.port },
    );
    const open = (local: string, text: string, endAfterMs: number) =>
      new Promise<void>((resolve) => {
        const c = net.connect({ port: p.port, host: '127.0.0.1', localAddress: local }, () => {
          if (text) c.write(text);
          setTimeout(() => c.destroy(), endAfterMs);
        });
        c.on('error', () => resolve());
        c.on('close', () => resolve());
      });
    const jobs: Promise<void>[] = [];
    for (let i = 0; i < 20; i++) {
      jobs.push(open('127.0.0.51', 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', i % 5)); // aborted mid-exchange
      jobs.push(open('127.0.0.51', 'GET /deny HTTP/1.1\r\nHost: x\r\n\r\n', 20)); // denied, kept alive, then closed
      jobs.push(open('127.0.0.51', 'GET / HTTP/1.1\r\nHo', 400)); // partial head: 408 after timeout http-request
      jobs.push(open('127.0.0.52', 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', 50)); // rejected at accept
    }
    await Promise.all(jobs);
    await waitFor(() => p.proxy.connectionCount() === 0, 5000, 'every connection closed');
    expect(counter(p, 'fe', '127.0.0.51', 'conn_cur')).toBe(0);
    expect(counter(p, 'fe', '127.0.0.52', 'conn_cur')).toBe(0);
    expect(counter(p, 'fe', '127.0.0.52', 'conn_cnt')).toBe(20);
    expect(counter(p, 'fe', '127.0.0.51', 'conn_cnt')).toBeGreaterThanOrEqual(60);
  });
});

describe('http-response tracking', () => {
  it('http-response track-sc1 tracks for the exchange and counts its error, conn_cur back to 0', async () => {
    const a = await scope.backend('web1');
    a.handler = (_req, res) => res.writeHead(404).end('no');
    const p = await scope.proxy(
      `${HEAD}
frontend fe
    bind 127.0.0.1:{{port}}
    stick-table type ip size 1k expire 60s store http_err_cnt,http_req_cnt,conn_cur
    http-response track-sc1 src
    default_backend be
backend be
    server web1 127.0.0.1:{{p1}}
`,
      { p1: a.port },
    );
    for (let i = 0; i < 3; i++) expect((await request(p.port, { localAddress: '127.0.0.70' })).status).toBe(404);
    expect(counter(p, 'fe', '127.0.0.70', 'http_err_cnt')).toBe(3);
    expect(counter(p, 'fe', '127.0.0.70', 'http_req_cnt')).toBe(0);
    expect(counter(p, 'fe', '127.0.0.70', 'conn_cur')).toBe(0);
  });
});

describe('mode tcp tracking', () => {
  it('tracks connections with tcp-request content and limits concurrent ones per client', async () => {
    const held: net.Socket[] = [];
    const srv = net.createServer((c) => {
      held.push(c);
      c.write('hi');
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    scope.defer(() => {
      for (const c of held) c.destroy();
      srv.close();
    });
    const p = await scope.proxy(
      `
defaults
    mode tcp
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{{port}}
    stick-table type ip size 1k expire 60s store conn_cur,conn_cnt,bytes_out_cnt
    tcp-request content track-sc0 src
    tcp-request content reject if { sc_conn_cur(0) gt 2 }
    default_backend be
backend be
    server s1 127.0.0.1:{{p1}}
`,
      { p1: (srv.address() as net.AddressInfo).port },
    );
    const conns: Array<{ sock: net.Socket; got: () => string; closed: () => boolean }> = [];
    for (let i = 0; i < 4; i++) {
      const sock = net.connect({ port: p.port, host: '127.0.0.1', localAddress: '127.0.0.60' });
      let got = '';
      let closed = false;
      sock.on('data', (d: Buffer) => (got += d.toString()));
      sock.on('error', () => (closed = true));
      sock.on('close', () => (closed = true));
      conns.push({ sock, got: () => got, closed: () => closed });
      await waitFor(() => got === 'hi' || closed, 3000, `connection ${i} settled`);
    }
    expect(conns.map((c) => c.got())).toEqual(['hi', 'hi', '', '']);
    expect(counter(p, 'fe', '127.0.0.60', 'conn_cnt')).toBe(4);
    for (const c of conns) c.sock.destroy();
    await waitFor(() => p.proxy.connectionCount() === 0, 3000, 'closed');
    expect(counter(p, 'fe', '127.0.0.60', 'conn_cur')).toBe(0);
    expect(counter(p, 'fe', '127.0.0.60', 'bytes_out_cnt')).toBe(4);
  });
});
