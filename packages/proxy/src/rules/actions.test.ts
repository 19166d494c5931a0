/**
 * Each rule action against real requests: config text through the real parser, a real
 * StickmeshProxy, real upstreams (test/helpers).
 */
import { describe, expect, it } from 'vitest';
import net from 'node:net';
import http from 'node:http';
import { parseConfigText } from '@stickmesh/core';
import { rawExchange, request } from '../../../../test/helpers/client.js';
import { fill, requestLogs } from '../../../../test/helpers/proxy.js';
import { waitFor } from '../../../../test/helpers/wait.js';
import { useScope } from '../../../../test/helpers/scope.js';
import { metrics } from '../metrics.js';
import { StickmeshProxy } from '../proxy.js';

const scope = useScope();

const HEAD = `
defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
`;

/** Sends `text` (one or more requests) on one connection; resolves with what came back once `n` responses arrived or the socket closed. */
function exchange(port: number, text: string, n: number, timeoutMs = 3000): Promise<{ out: string; closed: boolean }> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1', () => sock.write(text));
    let out = '';
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ out, closed });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    sock.on('data', (d: Buffer) => {
      out += d.toString('latin1');
      if (countResponses(out) >= n) setImmediate(() => finish(sock.destroyed || sock.readableEnded));
    });
    sock.on('error', () => finish(true));
    sock.on('close', () => finish(true));
  });
}

/** Complete responses in `s` (heads with a content-length body fully present). */
function countResponses(s: string): number {
  let n = 0;
  let at = 0;
  for (;;) {
    const end = s.indexOf('\r\n\r\n', at);
    if (end === -1) return n;
    const head = s.slice(at, end);
    const m = /content-length: *(\d+)/i.exec(head);
    const len = m ? Number(m[1]) : 0;
    if (s.length < end + 4 + len) return n;
    n++;
    at = end + 4 + len;
  }
}

describe('http-request deny, return, redirect', () => {
  it('denies with 403 by default and a custom deny_status, keeps the connection alive, logs the rule (PR--)', async () => {
    const a = await scope.backend('web1');
    const p = await scope.proxy(
      `${HEAD}
frontend fe
    bind 127.0.0.1:{{port}}
    http-request deny if { path /deny }
    http-request deny deny_status 429 if { path_beg /slow }
    default_backend be
backend be
    server web1 127.0.0.1:{{p1}}
`,
      { p1: a.port },
    );
    const r = await exchange(p.port, 'GET /deny HTTP/1.1\r\nHost: x\r\n\r\nGET /slow/x HTTP/1.1\r\nHost: x\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\n\r\n', 3);
    const heads = r.out.split('HTTP/1.1 ').slice(1).map((x) => x.slice(0, 3));
    expect(heads).toEqual(['403', '429', '200']);
    expect(r.out).toContain('cache-control: no-cache');
    expect(r.out).not.toContain('connection: close');
    expect(a.seen.map((s) => s.url)).toEqual(['/ok']);
    const logs = requestLogs(p);
    expect(logs.map((l) => l.termination_state)).toEqual(['PR--', 'PR--', '----']);
    expect(logs[0]!.rule).toBe('test.cfg:10');
    expect(logs[1]!.rule).toBe('test.cfg:11');
    expect(logs[2]!.rule).toBeUndefined();
    expect(logs[1]!.status).toBe(429);
    expect(metrics.denyCounts('fe').requests).toBeGreaterThanOrEqual(2);
  });

  it('answers return with its status, content-type and body (no body for HEAD), logged LR--', async () => {
    const a = await scope.backend('web1');
    const p = await scope.proxy(
      `${HEAD}
frontend fe
    bind 127.0.0.1:{{port}}
    http-request return status 200 content-type text/plain string hello if { path /ret }
    http-request return status 404 if { path /gone }
    default_backend be
backend be
    server web1 127.0.0.1:{{p1}}
`,
      { p1: a.port },
    );
    const r = await request(p.port, { path: '/ret' });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/plain');
    expect(r.body).toBe('hello');
    const g = await request(p.port, { path: '/gone' });
    expect(g.status).toBe(404);
    expect(g.body).toBe('');
    const h = await request(p.port, { path: '/ret', method: 'HEAD' });
    expect(h.status).toBe(200);
    expect(h.headers['content-length']).toBe('5');
    expect(h.body).toBe('');
    expect(a.seen).toHaveLength(0);
    expect(requestLogs(p).map((l) => l.termination_state)).toEqual(['LR--', 'LR--', 'LR--']);
  });

  it('redirects with location, prefix (drop-query, "/"), scheme, and codes as HAProxy builds them', async () => {
    const a = await scope.backend('web1');
    const p = await scope.proxy(
      `${HEAD}
frontend fe
    bind 127.0.0.1:{{port}}
    http-request redirect location /loc code 301 if { path_beg /l/ }
    http-request redirect prefix /pre if { path_beg /p/ }
    http-request redirect prefix /pre drop-query if { path_beg /pd/ }
    http-request redirect prefix / if { path_beg /root/ }
    http-request redirect scheme https code 308 if { path_beg /s/ }
    http-request redirect location /x%[path] code 307 if { path_beg /f/ }
    default_backend be
backend be
    server web1 127.0.0.1:{{p1}}
`,
      { p1: a.port },
    );
    const cases: Array<[string, number, string, boolean]> = [
      ['/l/x', 301, '/loc', false],
      ['/p/x?a=1', 302, '/pre/p/x?a=1', true],
      ['/pd/x?a=1', 302, '/pre/pd/x', true],
      ['/root/y?q', 302, '/root/y?q', true],
      ['/s/x?a=1', 308, 'https://h.example:8080/s/x?a=1', false],
      ['/f/z', 307, '/x/f/z', true],
    ];
    for (const [path, code, loc, noCache] of cases) {
      const r = await request(p.port, { path, headers: { host: 'h.example:8080' } });
      expect(r.status, path).toBe(code);
      expect(r.headers.location, path).toBe(loc);
      expect(r.headers['cache-control'], path).toBe(noCache ? 'no-cache' : undefined);
      expect(r.headers['content-length']).toBe('0');
    }
    expect(a.seen).toHaveLength(0);
    expect(requestLogs(p).every((l) => l.termination_state === 'LR--')).toBe(true);
  });

  it('closes after a reply to a request with a body (its bytes are not read), and keeps serving others', async () => {
    const a = await scope.backend('web1');
    const p = await scope.proxy(
      `${HEAD}
frontend fe
    bind 127.0.0.1:{{port}}
    http-request deny if METH_POST
    default_backend be
backend be
    server web1 127.0.0.1:{{p1}}
`,
      { p1: a.port },
    );
    const r = await exchange(p.port, 'POST / HTTP/1.1\r\nHost: x\r\ncontent-length: 3\r\n\r\nabc', 1);
    expect(r.out).toMatch(/^HTTP\/1\.1 403 /);
    expect(r.out).toContain('connection: close');
    expect((await request(p.port)).status).toBe(200);
  });
});

describe('http-request tarpit', () => {
  it('holds the request timeout tarpit on the wheel, then answers 500 (PT--), keeping the connection', async () => {
    const a = await scope.backend('web1');
    const p = await scope.proxy(
      `${HEAD}
    timeout tarpit 300
frontend fe
    bind 127.0.0.1:{{port}}
    http-request tarpit if { path /trap }
    default_backend be
backend be
    server web1 127.0.0.1:{{p1}}
`,
      { p1: a.port },
    );
    const t0 = Date.now();
    const r = await exchange(p.port, 'GET /trap HTTP/1.1\r\nHost: x\r\n\r\n', 1);
    const elapsed = Date.now() - t0;
    expect(r.out).toMatch(/^HTTP\/1\.1 500 /);
    expect(elapsed).toBeGreaterThanOrEqual(280);
    expect(requestLogs(p)[0]!.termination_state).toBe('PT--');
    expect(a.seen).toHaveLength(0);
  });

  it('forgets a tarpitted request whose client left (nothing left on the wheel, logged once)', async () => {
    const a = await scope.backend('web1');
    const p = await scope.proxy(
      `${HEAD}
    timeout tarpit 10s
frontend fe
    bind 127.0.0.1:{{port}}
    http-request tarpit
    default_backend be
backend be
    server web1 127.0.0.1:{{p1}}
`,
      { p1: a.port },
    );
    const r = await exchange(p.port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', 1, 200);
    expect(r.out).toBe('');
    await waitFor(() => p.proxy.connectionCount() === 0, 3000, 'tarpitted connection closed');
    expect(requestLogs(p)).toHaveLength(1);
    expect(requestLogs(p)[0]!.termination_state).toBe('CT--');
  });
});

describe('header actions', () => {
  it('sets, adds and deletes request headers the server sees; later rules see the edits', async () => {
    const a = await scope.backend('web1');
    const p = await scope.proxy(
      `${HEAD}
frontend fe
    bind 127.0.0.1:{{port}}
    http-request set-header X-Client %[src]
    http-request add-header X-Multi one
    http-request add-header X-Multi two
    http-request del-header X-Secret
    http-request set-header X-Seen %[req.hdr(x-client)]
    http-request set-header X-Replaced new
    default_backend be
backend be
    http-request add-header X-Backend be
    server web1 127.0.0.1:{{p1}}
`,
      { p1: a.port },
    );
    const r = await request(p.port, { localAddress: '127.0.0.9', headers: { 'x-secret': 's', 'x-replaced': 'old', 'x-client': 'spoofed' } });
    expect(r.status).toBe(200);
    const h = a.seen[0]!.headers;
    expect(h['x-client']).toBe('127.0.0.9');
    expect(h['x-multi']).toBe('one, two');
    expect(h['x-secret']).toBeUndefined();
    expect(h['x-seen']).toBe('127.0.0.9');
    expect(h['x-replaced']).toBe('new');
    expect(h['x-backend']).toBe('be');
    expect(h.host).toBeDefined();
  });

  it('edits response headers, the backend rules first and then the frontend ones (HAProxy order)', async () => {
    const a = await scope.backend('web1');
    const p = await scope.proxy(
      `${HEAD}
frontend fe
    bind 127.0.0.1:{{port}}
    http-response set-header X-Order fe
    http-response add-header X-Status %[status]
    default_backend be
backend be
    http-response set-header X-Order be
    http-response del-header x-served-by
    server web1 127.0.0.1:{{p1}}
`,
      { p1: a.port },
    );
    const r = await request(p.port);
    expect(r.status).toBe(200);
    expect(r.headers['x-order']).toBe('fe');
    expect(r.headers['x-status']).toBe('200');
    expect(r.headers['x-served-by']).toBeUndefined();
    expect(JSON.parse(r.body).server).toBe('web1');
  });

  it('refuses to edit framing headers at load, naming the rule', async () => {
    const { config } = parseConfigText(
      `${HEAD}
frontend fe
    bind 127.0.0.1:1
    http-request set-header Content-Length 0
    default_backend be
backend be
    server web1 127.0.0.1:2
`,
      'bad.cfg',
    );
    await expect(StickmeshProxy.create(config, { logger: (await import('pino')).default({ level: 'silent' }) })).rejects.toThrow(/bad\.cfg:10:.*framing/);
  });
});

describe('use_backend', () => {
  it('routes by path and by header, first match wins, else default_backend; backend rules run for their requests only', async () => {
    const [a, b, c] = [await scope.backend('web1'), await scope.backend('api1'), await scope.backend('admin1')];
    const p = await scope.proxy(
      `${HEAD}
frontend fe
    bind 127.0.0.1:{{port}}
    acl is_api path_beg /api
    use_backend admin if { hdr(x-role) -i admin }
    use_backend api if is_api
    default_backend be
backend be
    server web1 127.0.0.1:{{p1}}
backend api
    http-request set-header X-Api yes
    timeout server 3s
    server api1 127.0.0.1:{{p2}}
backend admin
    server admin1 127.0.0.1:{{p3}}
`,
      { p1: a.port, p2: b.port, p3: c.port },
    );
    expect((await request(p.port, { path: '/api/x' })).headers['x-served-by']).toBe('api1');
    expect((await request(p.port, { path: '/api/x', headers: { 'x-role': 'ADMIN' } })).headers['x-served-by']).toBe('admin1');
    expect((await request(p.port, { path: '/x' })).headers['x-served-by']).toBe('web1');
    expect(b.seen[0]!.headers['x-api']).toBe('yes');
    expect(a.seen[0]!.headers['x-api']).toBeUndefined();
    expect(requestLogs(p).map((l) => l.backend)).toEqual(['api', 'admin', 'be']);
  });

  it('switches backends on one keep-alive connection request by request', async () => {
    const [a, b] = [await scope.backend('web1'), await scope.backend('api1')];
    const p = await scope.proxy(
      `${HEAD}
frontend fe
    bind 127.0.0.1:{{port}}
    use_backend api if { path_beg /api }
    default_backend be
backend be
    server web1 127.0.0.1:{{p1}}
backend api
    server api1 127.0.0.1:{{p2}}
`,
      { p1: a.port, p2: b.port },
    );
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    scope.defer(() => agent.destroy());
    const seq: string[] = [];
    for (const path of ['/api/1', '/x', '/api/2', '/y']) seq.push((await request(p.port, { path, agent })).headers['x-served-by'] as string);
    expect(seq).toEqual(['api1', 'web1', 'api1', 'web1']);
    expect(new Set(requestLogs(p).map((l) => l.client_port)).size).toBe(1);
  });
});

describe('tcp-request connection', () => {
  it('rejects a connection by source address before any byte is read (reset, no log line), others are served', async () => {
    const a = await scope.backend('web1');
    const p = await scope.proxy(
      `${HEAD}
frontend fe
    bind 127.0.0.1:{{port}}
    tcp-request connection reject if { src 127.0.0.66 }
    default_backend be
backend be
    server web1 127.0.0.1:{{p1}}
`,
      { p1: a.port },
    );
    const before = metrics.denyCounts('fe').connections;
    await expect(request(p.port, { localAddress: '127.0.0.66' })).rejects.toThrow();
    expect((await request(p.port, { localAddress: '127.0.0.67' })).status).toBe(200);
    expect(metrics.denyCounts('fe').connections).toBe(before + 1);
    expect(requestLogs(p)).toHaveLength(1);
  });
});

describe('mode tcp rules', () => {
  it('tcp-request content reject closes before connecting; use_backend picks the backend', async () => {
    const echo = (tag: string) =>
      new Promise<net.Server>((resolve) => {
        const s = net.createServer((c) => c.end(tag));
        s.listen(0, '127.0.0.1', () => resolve(s));
      });
    const s1 = await echo('one');
    const s2 = await echo('two');
    scope.defer(() => void s1.close());
    scope.defer(() => void s2.close());
    const p = await scope.proxy(
      `
defaults
    mode tcp
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{{port}}
    tcp-request content reject if { src 127.0.0.50 }
    use_backend two if { src 127.0.0.51 }
    default_backend one
backend one
    server s1 127.0.0.1:{{p1}}
backend two
    server s2 127.0.0.1:{{p2}}
`,
      { p1: (s1.address() as net.AddressInfo).port, p2: (s2.address() as net.AddressInfo).port },
    );
    const read = (local: string) =>
      new Promise<string>((resolve) => {
        const c = net.connect({ port: p.port, host: '127.0.0.1', localAddress: local });
        let out = '';
        c.on('data', (d: Buffer) => (out += d.toString()));
        c.on('error', () => resolve(out));
        c.on('close', () => resolve(out));
      });
    expect(await read('127.0.0.49')).toBe('one');
    expect(await read('127.0.0.51')).toBe('two');
    expect(await read('127.0.0.50')).toBe('');
    await waitFor(() => p.logs.filter((l) => l.msg === 'connection').length === 3, 3000, 'three connection logs');
    const rejected = p.logs.find((l) => l.msg === 'connection' && l.client_ip === '127.0.0.50')!;
    expect(rejected.termination_state).toBe('PR');
    expect(rejected.rule).toBe('test.cfg:9');
  });
});

describe('malformed input with rules', () => {
  it('keeps serving after bad requests and odd header values', async () => {
    const a = await scope.backend('web1');
    const p = await scope.proxy(
      `${HEAD}
frontend fe
    bind 127.0.0.1:{{port}}
    http-request set-header X-Copy %[req.hdr(x-in)]
    http-request deny if { hdr_cnt(x-in) gt 3 }
    default_backend be
backend be
    server web1 127.0.0.1:{{p1}}
`,
      { p1: a.port },
    );
    expect(await rawExchange(p.port, 'GARBAGE\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 /);
    const many = Array.from({ length: 5 }, () => 'x-in: a').join('\r\n');
    expect(await rawExchange(p.port, `GET / HTTP/1.1\r\nHost: x\r\n${many}\r\nConnection: close\r\n\r\n`)).toMatch(/^HTTP\/1\.1 403 /);
    const r = await request(p.port, { headers: { 'x-in': 'v\u00e9' } });
    expect(r.status).toBe(200);
    expect((await request(p.port)).status).toBe(200);
  });
});

describe('reload', () => {
  it('swaps compiled rules whole on reload, and keeps the running rules when the new ones do not compile', async () => {
    const a = await scope.backend('web1');
    const cfg = (rule: string) => `${HEAD}
frontend fe
    bind 127.0.0.1:{{port}}
    ${rule}
    default_backend be
backend be
    server web1 127.0.0.1:{{p1}}
`;
    const p = await scope.proxy(cfg('http-request deny if { path /a }'), { p1: a.port });
    const reload = (rule: string) => p.proxy.reload(parseConfigText(fill(cfg(rule), { p1: a.port, port: p.port }), 'test.cfg').config, p.proxy.tables);
    expect((await request(p.port, { path: '/a' })).status).toBe(403);
    await reload('http-request deny deny_status 404 if { path /b }');
    expect((await request(p.port, { path: '/a' })).status).toBe(200);
    expect((await request(p.port, { path: '/b' })).status).toBe(404);
    await expect(reload('http-request set-header Transfer-Encoding x')).rejects.toThrow(/test\.cfg:10: .*framing/);
    expect((await request(p.port, { path: '/b' })).status).toBe(404);
    await reload('# no rules');
    expect((await request(p.port, { path: '/b' })).status).toBe(200);
  });
});
