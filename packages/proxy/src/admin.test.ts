import { afterEach, describe, expect, it } from 'vitest';
import http from 'node:http';
import { AdminError, AdminServer } from './admin.js';
import { HostCheck, classifyOrigin, isLoopback, splitHost, type AdminOrigins } from './admin-access.js';
import { DASHBOARD } from './dashboard.js';

let servers: AdminServer[] = [];
afterEach(() => {
  for (const s of servers) s.close();
  servers = [];
});

let writes = 0;

async function start(host: string, token?: string, origins?: AdminOrigins): Promise<string> {
  const s = new AdminServer({
    host,
    port: 0,
    ...(token ? { token } : {}),
    ...(origins ? { origins: () => origins } : {}),
    dashboard: DASHBOARD,
    readiness: () => ({ ready: true, reason: 'ok' }),
    api: [
      { method: 'GET', path: '/api/things/:id', handler: (r) => ({ id: r.params.id }) },
      { method: 'PUT', path: '/api/things/:id', handler: (r) => { if (!r.body) throw new AdminError(400, 'empty'); writes++; return r.body; } },
      { method: 'DELETE', path: '/api/things', handler: () => { writes++; return { deleted: true }; } },
    ],
  });
  servers.push(s);
  const a = await s.listen();
  return `http://127.0.0.1:${a.port}`;
}

describe('AdminServer access rules', () => {
  it('knows loopback addresses', () => {
    expect(isLoopback('127.0.0.2')).toBe(true);
    expect(isLoopback('::1')).toBe(true);
    expect(isLoopback('0.0.0.0')).toBe(false);
    expect(isLoopback('10.0.0.1')).toBe(false);
  });

  it('on loopback: reads open, writes need the configured token, params decoded, errors as JSON', async () => {
    const u = await start('127.0.0.1', 'tok');
    expect(await (await fetch(`${u}/api/things/a%2Fb`)).json()).toEqual({ id: 'a/b' });
    expect((await fetch(`${u}/api/things/x`, { method: 'PUT', body: '{"v":1}' })).status).toBe(401);
    const ok = await fetch(`${u}/api/things/x`, { method: 'PUT', body: '{"v":1}', headers: { authorization: 'Bearer tok' } });
    expect(await ok.json()).toEqual({ v: 1 });
    const bad = await fetch(`${u}/api/things/x`, { method: 'PUT', body: '', headers: { authorization: 'Bearer tok' } });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: 'empty' });
    expect((await fetch(`${u}/api/things/x`, { method: 'DELETE' })).status).toBe(405);
    expect(((await fetch(`${u}/api/things/x`, { method: 'DELETE' })).headers.get('x-content-type-options'))).toBe('nosniff');
  });

  it('bound beyond loopback: everything but healthz/ready needs a token, and is refused without one configured', async () => {
    const open = await start('0.0.0.0');
    expect((await fetch(`${open}/healthz`)).status).toBe(200);
    expect((await fetch(`${open}/ready`)).status).toBe(200);
    const r = await fetch(`${open}/api/things/a`);
    expect(r.status).toBe(403);
    expect(((await r.json()) as { error: string }).error).toMatch(/admin-token/);
    const locked = await start('0.0.0.0', 'tok');
    expect((await fetch(`${locked}/api/things/a`)).status).toBe(401);
    expect((await fetch(`${locked}/api/things/a`, { headers: { authorization: 'Bearer tok' } })).status).toBe(200);
  });
});

/** A raw request with exactly the headers given (fetch sets Host and Origin itself). */
function raw(url: string, method: string, headers: Record<string, string>, body?: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method, headers, setHost: false }, (res) => {
      let b = '';
      res.on('data', (c: Buffer) => (b += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('AdminServer browser rules', () => {
  it('checks Host: bind address, localhost, loopback forms with the port; DNS-rebinding names get 421', () => {
    const lo = new HostCheck('127.0.0.1', 9100, []);
    for (const h of ['127.0.0.1:9100', 'localhost:9100', 'LOCALHOST:9100', '[::1]:9100', undefined]) expect(lo.accepts(h)).toBe(true);
    for (const h of ['evil.example:9100', '127.0.0.1:9101', 'localhost', '127.0.0.2:9100', '', '127.0.0.1:9100:1', '[::1', 'a b:9100', 'localhost:99999']) expect(lo.accepts(h)).toBe(false);
    const any = new HostCheck('0.0.0.0', 9100, ['https://ops.example', 'http://fwd.example:19100']);
    for (const h of ['10.1.2.3:9100', '[2001:db8::1]:9100', 'localhost:9100', 'ops.example', 'ops.example:443', 'fwd.example:19100']) expect(any.accepts(h)).toBe(true);
    for (const h of ['ops.example:9100', 'fwd.example', 'lb1.example:9100']) expect(any.accepts(h)).toBe(false);
    const v6 = new HostCheck('::1', 80, []);
    expect(v6.accepts('[::1]')).toBe(true);
    expect(v6.accepts('localhost')).toBe(true);
    expect(splitHost('[::1]:80')).toEqual({ name: '::1', port: 80 });
    expect(splitHost('Example.COM')).toEqual({ name: 'example.com', port: undefined });
  });

  it('classifies origins: own, trusted, foreign, and no-cors cross-site loads', () => {
    const trusted = new Set(['http://127.0.0.1:9200']);
    const self = 'http://127.0.0.1:9100';
    expect(classifyOrigin(undefined, undefined, self, trusted)).toEqual({ browser: false, foreign: false, allowOrigin: undefined });
    expect(classifyOrigin(undefined, 'same-origin', self, trusted).foreign).toBe(false);
    expect(classifyOrigin(undefined, 'none', self, trusted).foreign).toBe(false);
    expect(classifyOrigin(undefined, 'cross-site', self, trusted).foreign).toBe(true);
    expect(classifyOrigin(undefined, 'same-site', self, trusted).foreign).toBe(true);
    expect(classifyOrigin(self, 'same-origin', self, trusted)).toEqual({ browser: true, foreign: false, allowOrigin: self });
    expect(classifyOrigin('http://127.0.0.1:9200', 'same-site', self, trusted).allowOrigin).toBe('http://127.0.0.1:9200');
    expect(classifyOrigin('http://127.0.0.1:8080', 'same-site', self, trusted)).toEqual({ browser: true, foreign: true, allowOrigin: undefined });
    expect(classifyOrigin('null', undefined, self, trusted).foreign).toBe(true);
  });

  it('refuses foreign origins (reads, writes, preflight) with a token configured or not; trusted origins get CORS', async () => {
    writes = 0;
    const origins = { peers: ['http://127.0.0.1:9200'], allowed: ['https://ops.example'] };
    for (const token of [undefined, 'tok']) {
      const u = await start('127.0.0.1', token, origins);
      const host = new URL(u).host;
      const evil = { host, origin: 'http://127.0.0.1:8080', 'sec-fetch-site': 'same-site' };
      const read = await raw(`${u}/api/things/a`, 'GET', evil);
      expect(read.status).toBe(403);
      expect(read.headers['access-control-allow-origin']).toBeUndefined();
      expect((await raw(`${u}/api/things/a`, 'PUT', { ...evil, 'content-type': 'text/plain' }, '{"v":1}')).status).toBe(403);
      expect((await raw(`${u}/api/things`, 'DELETE', evil)).status).toBe(403);
      expect((await raw(`${u}/metrics`, 'GET', evil)).status).toBe(403);
      // No-cors loads from another site (<img>, <script src>) carry no Origin.
      expect((await raw(`${u}/api/things/a`, 'GET', { host, 'sec-fetch-site': 'cross-site' })).status).toBe(403);
      const pre = await raw(`${u}/api/things/a`, 'OPTIONS', { ...evil, 'access-control-request-method': 'PUT', 'access-control-request-headers': 'content-type' });
      expect(pre.status).toBe(403);
      expect(pre.headers['access-control-allow-origin']).toBeUndefined();
      // A trusted sibling: preflight answered, reads allowed with CORS, writes by the token rules.
      const sib = { host, origin: 'http://127.0.0.1:9200', 'sec-fetch-site': 'same-site' };
      const ok = await raw(`${u}/api/things/a`, 'OPTIONS', { ...sib, 'access-control-request-method': 'PUT' });
      expect(ok.status).toBe(204);
      expect(ok.headers['access-control-allow-origin']).toBe('http://127.0.0.1:9200');
      expect(ok.headers['access-control-allow-methods']).toMatch(/PUT/);
      const r = await raw(`${u}/api/things/a`, 'GET', sib);
      expect(r.status).toBe(200);
      expect(r.headers['access-control-allow-origin']).toBe('http://127.0.0.1:9200');
      expect(r.headers.vary).toBe('origin');
      expect((await raw(`${u}/api/things/a`, 'PUT', sib, '{"v":1}')).status).toBe(token ? 401 : 200);
      // Its own origin (the dashboard page) is trusted; DNS rebinding is not.
      expect((await raw(`${u}/api/things/a`, 'GET', { host, origin: `http://${host}`, 'sec-fetch-site': 'same-origin' })).status).toBe(200);
      const rebound = await raw(`${u}/api/things/a`, 'GET', { host: `evil.example:${new URL(u).port}` });
      expect(rebound.status).toBe(421);
      expect(JSON.parse(rebound.body).error).toMatch(/does not name this admin listener/);
      expect((await raw(`${u}/api/things`, 'DELETE', { host: `evil.example:${new URL(u).port}`, origin: `http://evil.example:${new URL(u).port}` })).status).toBe(421);
      expect((await raw(`${u}/`, 'GET', { host: `evil.example:${new URL(u).port}` })).status).toBe(421);
      // Liveness probes pass whatever their Host.
      expect((await raw(`${u}/healthz`, 'GET', { host: 'probe.example' })).status).toBe(200);
    }
    expect(writes).toBe(1);
  });

  it('a valid token passes the Host and Origin rules (a scraper by DNS name, a tool that sets Origin)', async () => {
    const u = await start('127.0.0.1', 'tok');
    const port = new URL(u).port;
    expect((await raw(`${u}/api/things/a`, 'GET', { host: `lb1.example:${port}`, authorization: 'Bearer tok' })).status).toBe(200);
    expect((await raw(`${u}/api/things/a`, 'PUT', { host: `127.0.0.1:${port}`, origin: 'http://tool.example', authorization: 'Bearer tok' }, '{"v":2}')).status).toBe(200);
    expect((await raw(`${u}/api/things/a`, 'GET', { host: `lb1.example:${port}`, authorization: 'Bearer nope' })).status).toBe(421);
  });

  it('serves the dashboard under a strict CSP, its script and style, and the sibling list', async () => {
    const u = await start('127.0.0.1', undefined, { peers: ['http://127.0.0.2:9100'], allowed: ['https://ops.example'] });
    const page = await fetch(`${u}/`);
    const csp = page.headers.get('content-security-policy')!;
    expect(csp).toMatch(/script-src 'self';/);
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|http:(?!\/\/)|https:(?!\/\/)/);
    expect(csp).toMatch(/connect-src 'self' http:\/\/127\.0\.0\.2:9100 https:\/\/ops\.example;/);
    expect(csp).toMatch(/frame-ancestors 'none'/);
    const html = await page.text();
    expect(html).not.toMatch(/<script>|<style>|\son\w+=|style=/);
    expect((await fetch(`${u}/dashboard.js`)).headers.get('content-type')).toMatch(/javascript/);
    expect((await fetch(`${u}/dashboard.css`)).headers.get('content-type')).toMatch(/text\/css/);
    // A browser asks for /favicon.ico: answered without a body, so its console shows no 404 line.
    expect((await fetch(`${u}/favicon.ico`)).status).toBe(204);
    expect(await (await fetch(`${u}/api/dashboard`)).json()).toEqual({ siblings: ['http://127.0.0.2:9100'], accepted: ['http://127.0.0.2:9100', 'https://ops.example'] });
  });
});

describe('AdminServer and a client that half-closes', () => {
  it('still answers a request whose answer comes later than the client FIN (the first /metrics scrape)', async () => {
    const s = new AdminServer({
      host: '127.0.0.1',
      port: 0,
      readiness: () => ({ ready: true, reason: 'ok' }),
      metrics: () => new Promise((resolve) => setTimeout(() => resolve({ contentType: 'text/plain', body: 'm 1\n' }), 50)),
    });
    servers.push(s);
    const { port } = await s.listen();
    const { exchangeUntilClose } = await import('../../../test/helpers/client.js');
    const r = await exchangeUntilClose(port, 3000, (sock) => sock.end(`GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`));
    expect(r.out).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(r.out).toMatch(/\r\n\r\n(4\r\n)?m 1\n/);
    expect(r.closed).toBe(true);
  });
});
