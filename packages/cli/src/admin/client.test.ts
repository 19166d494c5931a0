import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { ADMIN_CONNECT_TIMEOUT_MS, AdminCallError, AdminClient } from './client.js';
import { parseCommand } from '../commands/args.js';

describe('AdminClient', () => {
  let server: http.Server;
  let base: string;
  const seen: Array<{ method: string; url: string; auth: string | undefined; body: string }> = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        seen.push({ method: req.method!, url: req.url!, auth: req.headers.authorization, body });
        if (req.url === '/ok') res.writeHead(200, { 'content-type': 'application/json' }).end('{"a":1}');
        else if (req.url === '/err') res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"no such thing"}');
        else res.writeHead(502).end('<html>bad gateway</html>');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('sends the token and a JSON body, answers the parsed JSON', async () => {
    const c = new AdminClient({ admin: `${base}//`, token: 't0k' }, {});
    expect(c.base).toBe(base);
    expect(await c.call('PUT', '/ok', { state: 'drain' })).toEqual({ a: 1 });
    expect(seen.at(-1)).toEqual({ method: 'PUT', url: '/ok', auth: 'Bearer t0k', body: '{"state":"drain"}' });
  });

  it('takes URL and token from the environment when not given', async () => {
    const c = new AdminClient({}, { STICKMESH_ADMIN: base, STICKMESH_ADMIN_TOKEN: 'envtok' });
    await c.call('GET', '/ok');
    expect(seen.at(-1)?.auth).toBe('Bearer envtok');
  });

  it("reports the node's error message, a non-JSON answer and an unreachable node as AdminCallError", async () => {
    const c = new AdminClient({ admin: base }, {});
    await expect(c.call('GET', '/err')).rejects.toMatchObject({ code: 'SM_ADMIN_CALL', message: `${base}/err: no such thing` });
    await expect(c.call('GET', '/html')).rejects.toMatchObject({ message: `${base}/html: HTTP 502: <html>bad gateway</html>` });
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const err = await new AdminClient({ admin: `http://127.0.0.1:${port}` }, {}).call('GET', '/ok').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AdminCallError);
    expect((err as Error).message).toMatch(new RegExp(`^cannot reach http://127.0.0.1:${port} \\(ECONNREFUSED\\) — pass --admin URL or --config FILE`));
  });
});

describe('AdminClient over several nodes', () => {
  let live: http.Server;
  let liveUrl: string;
  let deadUrl: string;
  let deadUrl2: string;
  beforeAll(async () => {
    live = http.createServer((req, res) => {
      if (req.url === '/missing') res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"no such table"}');
      else res.writeHead(200, { 'content-type': 'application/json' }).end('{"node":"n2"}');
    });
    await new Promise<void>((r) => live.listen(0, '127.0.0.1', r));
    liveUrl = `http://127.0.0.1:${(live.address() as AddressInfo).port}`;
    const ports: number[] = [];
    for (let i = 0; i < 2; i++) {
      const s = http.createServer();
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
      ports.push((s.address() as AddressInfo).port);
      await new Promise<void>((r) => s.close(() => r()));
    }
    deadUrl = `http://127.0.0.1:${ports[0]}`;
    deadUrl2 = `http://127.0.0.1:${ports[1]}`;
  });
  afterAll(() => new Promise<void>((r) => live.close(() => r())));

  it('passes over a refused node, says so once, and keeps asking the node that answered', async () => {
    const lines: string[] = [];
    const c = new AdminClient({ nodes: [{ url: deadUrl, node: 'n1' }, { url: liveUrl, node: 'n2' }], onFailover: (l) => lines.push(l) }, {});
    expect(await c.call('GET', '/x')).toEqual({ node: 'n2' });
    expect(lines).toEqual([`${deadUrl} (n1): ECONNREFUSED; answered by ${liveUrl} (n2)`]);
    expect(c.base).toBe(liveUrl);
    expect(await c.call('GET', '/x')).toEqual({ node: 'n2' });
    expect(lines).toHaveLength(1);
  });

  it('passes over a node that does not accept the connection within 1 s', async () => {
    // A listener with a backlog of 0 that never accepts: once one connection fills its queue,
    // the kernel drops further SYNs, as for a host that is down without saying so.
    const py = spawn('python3', ['-c', "import socket,time\ns=socket.socket();s.bind(('127.0.0.1',0));s.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(30)"], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        py.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
        py.once('error', reject);
      });
      const filler = net.connect(port, '127.0.0.1');
      await new Promise((r) => filler.once('connect', r));
      const lines: string[] = [];
      const c = new AdminClient({ nodes: [{ url: `http://127.0.0.1:${port}`, node: 'hung' }, { url: liveUrl, node: 'n2' }], onFailover: (l) => lines.push(l) }, {});
      const t0 = Date.now();
      expect(await c.call('GET', '/x')).toEqual({ node: 'n2' });
      const took = Date.now() - t0;
      expect(took).toBeGreaterThanOrEqual(ADMIN_CONNECT_TIMEOUT_MS - 50);
      expect(took).toBeLessThan(ADMIN_CONNECT_TIMEOUT_MS + 2000);
      expect(lines).toEqual([`http://127.0.0.1:${port} (hung): no connection within 1 s; answered by ${liveUrl} (n2)`]);
      filler.destroy();
    } finally {
      py.kill();
    }
  });

  it("takes a node's error answer as final (no failover past an HTTP error)", async () => {
    const lines: string[] = [];
    const c = new AdminClient({ nodes: [{ url: liveUrl, node: 'n2' }, { url: deadUrl, node: 'n1' }], onFailover: (l) => lines.push(l) }, {});
    await expect(c.call('GET', '/missing')).rejects.toMatchObject({ message: `${liveUrl}/missing: no such table` });
    expect(lines).toEqual([]);
  });

  it('names every node tried when none answers, and the others to try when only one was asked', async () => {
    const all = new AdminClient({ nodes: [{ url: deadUrl, node: 'n1' }, { url: deadUrl2, node: 'n3' }] }, {});
    await expect(all.call('GET', '/x')).rejects.toMatchObject({ message: `cannot reach any node: ${deadUrl} (n1) (ECONNREFUSED), ${deadUrl2} (n3) (ECONNREFUSED)` });
    const one = new AdminClient({ nodes: [{ url: deadUrl }], others: () => [{ url: liveUrl, node: 'n2' }] }, {});
    await expect(one.call('GET', '/x')).rejects.toMatchObject({
      message: `cannot reach ${deadUrl} (ECONNREFUSED); other nodes: ${liveUrl} (n2) — or pass --config FILE to try them in turn`,
    });
  });
});

describe('parseCommand', () => {
  it('refuses unknown options and positionals unless allowed, answers --help with exit 0', () => {
    const err = process.stderr.write;
    const out = process.stdout.write;
    const written: string[] = [];
    process.stderr.write = process.stdout.write = ((s: string) => written.push(s) > 0) as typeof process.stdout.write;
    try {
      expect(parseCommand(['--nope'], 'HELP\n', {})).toEqual({ exit: 2 });
      expect(parseCommand(['pos'], 'HELP\n', {})).toEqual({ exit: 2 });
      expect(parseCommand(['-h'], 'HELP\n', {})).toEqual({ exit: 0 });
    } finally {
      process.stderr.write = err;
      process.stdout.write = out;
    }
    expect(written.join('')).toContain('HELP');
    const p = parseCommand(['show', 't1', '--admin', 'http://x', '--json'], 'HELP\n', { admin: { type: 'string' }, json: { type: 'boolean' } }, true);
    expect(p).toEqual({ exit: undefined, values: { admin: 'http://x', json: true }, positionals: ['show', 't1'] });
  });
});
