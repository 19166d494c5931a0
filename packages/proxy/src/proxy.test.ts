import { afterEach, describe, expect, it } from 'vitest';
import http from 'node:http';
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { WebSocket, WebSocketServer } from 'ws';
import { startBackend, startRawBackend, type TestBackend } from '../../../test/helpers/backends.js';
import { cookieFrom, rawExchange, request } from '../../../test/helpers/client.js';
import { requestLogs, startProxy, type RunningProxy } from '../../../test/helpers/proxy.js';
import { waitFor } from '../../../test/helpers/wait.js';
import { writeInPieces } from '../../../test/helpers/pieces.js';
import { spareCount } from './listen/buffer-pool.js';

const COOKIE_CFG = `
defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{{port}}
    default_backend webservers
backend webservers
    balance roundrobin
    cookie SERVER insert indirect nocache
    option forwardfor
    server web1 127.0.0.1:{{p1}} cookie web1
    server web2 127.0.0.1:{{p2}} cookie web2
`;

let cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

async function twoBackends(): Promise<[TestBackend, TestBackend]> {
  const a = await startBackend('web1');
  const b = await startBackend('web2');
  cleanups.push(() => a.close(), () => b.close());
  return [a, b];
}

async function proxyFor(cfg: string, vars: Record<string, number | string>): Promise<RunningProxy> {
  const p = await startProxy(cfg, vars);
  cleanups.push(() => p.close());
  return p;
}

describe('cookie persistence (insert indirect nocache)', () => {
  it('inserts a cookie for a new client, sticks to it, and hides it from the server', async () => {
    const [a, b] = await twoBackends();
    const p = await proxyFor(COOKIE_CFG, { p1: a.port, p2: b.port });

    const first = await request(p.port);
    expect(first.status).toBe(200);
    const served = first.headers['x-served-by'] as string;
    expect(first.headers['set-cookie']).toEqual([`SERVER=${served}; path=/`]);
    expect(first.headers['cache-control']).toBe('private');
    const jar = cookieFrom(first.headers, 'SERVER')!;

    for (let i = 0; i < 6; i++) {
      const r = await request(p.port, { headers: { cookie: `${jar}; app=1` } });
      expect(r.headers['x-served-by']).toBe(served);
      expect(r.headers['set-cookie']).toBeUndefined();
      expect(JSON.parse(r.body).cookie).toBe('app=1'); // indirect: our cookie removed
    }
    const logs = requestLogs(p);
    expect(logs[0]!.termination_state).toBe('--NI');
    expect(logs[1]!.termination_state).toBe('--VN');
    expect(logs[1]!.server).toBe(served);
  });

  it('balances clients without a cookie round robin', async () => {
    const [a, b] = await twoBackends();
    const p = await proxyFor(COOKIE_CFG, { p1: a.port, p2: b.port });
    const seq: string[] = [];
    for (let i = 0; i < 4; i++) seq.push((await request(p.port)).headers['x-served-by'] as string);
    expect(seq.filter((s) => s === 'web1')).toHaveLength(2);
    expect(seq[0]).not.toBe(seq[1]);
  });

  it('rebalances an unknown cookie value (I) and replaces the cookie', async () => {
    const [a, b] = await twoBackends();
    const p = await proxyFor(COOKIE_CFG, { p1: a.port, p2: b.port });
    const r = await request(p.port, { headers: { cookie: 'SERVER=ghost' } });
    expect(r.status).toBe(200);
    expect(cookieFrom(r.headers, 'SERVER')).toBe(`SERVER=${r.headers['x-served-by']}`);
    expect(requestLogs(p)[0]!.termination_state).toBe('--II');
  });

  it('ignores a malformed cookie header and still serves', async () => {
    const [a, b] = await twoBackends();
    const p = await proxyFor(COOKIE_CFG, { p1: a.port, p2: b.port });
    const r = await request(p.port, { headers: { cookie: ';;; SERVER; =x; SERVER=' } });
    expect(r.status).toBe(200);
    expect(cookieFrom(r.headers, 'SERVER')).toMatch(/^SERVER=web[12]$/);
  });

  it('adds X-Forwarded-For with the client address', async () => {
    const [a, b] = await twoBackends();
    const p = await proxyFor(COOKIE_CFG, { p1: a.port, p2: b.port });
    await request(p.port, { localAddress: '127.0.0.7' });
    const seen = [...a.seen, ...b.seen][0]!;
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.7');
  });
});

describe('cookie persistence when the server is down', () => {
  it('redispatches a client whose server died (D) and gives it a new cookie', async () => {
    const [a, b] = await twoBackends();
    const cfg = COOKIE_CFG.replace('option forwardfor', 'option redispatch\n    retries 1')
      .replace('cookie web1', 'check inter 50 fall 1 rise 1 cookie web1')
      .replace('cookie web2', 'check inter 50 fall 1 rise 1 cookie web2');
    const p = await proxyFor(cfg, { p1: a.port, p2: b.port });
    await a.close();
    const s1 = p.proxy.backends.get('webservers')!.serverByName('web1')!;
    await waitFor(() => !s1.checkUp, 3000, 'web1 marked down');
    const r = await request(p.port, { headers: { cookie: 'SERVER=web1' } });
    expect(r.headers['x-served-by']).toBe('web2');
    expect(cookieFrom(r.headers, 'SERVER')).toBe('SERVER=web2');
    expect(requestLogs(p).at(-1)!.termination_state).toBe('--DI');
  });

  it('redispatches on connection failure with option redispatch even without checks', async () => {
    const [a, b] = await twoBackends();
    const cfg = COOKIE_CFG.replace('option forwardfor', 'option redispatch\n    retries 2');
    const p = await proxyFor(cfg, { p1: a.port, p2: b.port });
    await a.close();
    const r = await request(p.port, { headers: { cookie: 'SERVER=web1' } });
    expect(r.status).toBe(200);
    expect(r.headers['x-served-by']).toBe('web2');
    expect(cookieFrom(r.headers, 'SERVER')).toBe('SERVER=web2');
    const log = requestLogs(p).at(-1)!;
    expect(log.retries).toBe(2);
    expect(log.redispatched).toBe(true);
  });

  it('answers 503 when no server can take the request', async () => {
    const [a, b] = await twoBackends();
    const cfg = COOKIE_CFG.replace('option forwardfor', 'retries 1');
    const p = await proxyFor(cfg, { p1: a.port, p2: b.port });
    await a.close();
    await b.close();
    const r = await request(p.port);
    expect(r.status).toBe(503);
    expect(r.body).toContain('503');
    expect(requestLogs(p).at(-1)!.termination_state).toMatch(/^SC/);
    // the proxy keeps serving once a server is back
    const c = await startBackend('web1', a.port);
    cleanups.push(() => c.close());
    const ok = await request(p.port, { headers: { cookie: 'SERVER=web1' } });
    expect(ok.status).toBe(200);
  });
});

describe('HTTP/1.1 data plane', () => {
  it('keeps both sides alive: one client connection, one reused server connection', async () => {
    const [a, b] = await twoBackends();
    const p = await proxyFor(COOKIE_CFG, { p1: a.port, p2: b.port });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    cleanups.push(() => agent.destroy());
    const first = await request(p.port, { agent });
    const jar = cookieFrom(first.headers, 'SERVER')!;
    const ports = new Set<number>();
    for (let i = 0; i < 5; i++) {
      const r = await request(p.port, { agent, headers: { cookie: jar } });
      ports.add(r.localPort);
    }
    expect(ports.size).toBe(1);
    const seen = first.headers['x-served-by'] === 'web1' ? a.seen : b.seen;
    expect(new Set(seen.map((s) => s.remotePort)).size).toBe(1);
  });

  it('keeps partial and pipelined request bytes intact while other connections read (shared read buffer)', async () => {
    // Request heads are read into one buffer shared by all connections; bytes a connection keeps
    // (a partial head, body bytes and a pipelined request that came with it) must be its own copy,
    // or the next connection's read overwrites them.
    const [a, b] = await twoBackends();
    const p = await proxyFor(COOKIE_CFG, { p1: a.port, p2: b.port });
    const n = 30;
    const bodies = Array.from({ length: n }, (_, i) => `body-of-client-${String(i).padStart(3, '0')}`);
    const socks = Array.from({ length: n }, () => net.connect(p.port, '127.0.0.1'));
    const got = socks.map(() => '');
    const closed = socks.map(
      (s, i) =>
        new Promise<void>((resolve, reject) => {
          s.on('data', (c: Buffer) => (got[i] += c.toString('latin1')));
          s.on('close', () => resolve());
          s.on('error', reject);
        }),
    );
    await Promise.all(socks.map((s) => new Promise((r) => s.once('connect', r))));
    // Every connection sends half a head; the halves are read one after another.
    socks.forEach((s, i) => s.write(`POST /c${i} HTTP/1.1\r\nHost: x\r\nX-Id: ${i}\r\nContent-Len`));
    await waitFor(() => p.proxy.connectionCount() === n, 2000);
    // Then the rest of the head, the body and a second, pipelined request in one write each.
    socks.forEach((s, i) =>
      s.write(`gth: ${bodies[i]!.length}\r\n\r\n${bodies[i]}GET /d${i} HTTP/1.1\r\nHost: x\r\nX-Id: ${i}\r\nConnection: close\r\n\r\n`),
    );
    await Promise.all(closed);
    const seen = [...a.seen, ...b.seen];
    for (let i = 0; i < n; i++) {
      const answers = got[i]!.split('HTTP/1.1 200 OK').length - 1;
      expect(answers, `client ${i}: ${got[i]}`).toBe(2);
      expect(got[i]).toContain(`"url":"/c${i}","bodyBytes":${bodies[i]!.length}`);
      expect(got[i]).toContain(`"url":"/d${i}"`);
      const c = seen.find((r) => r.url === `/c${i}`)!;
      expect(c.headers['x-id']).toBe(String(i));
      expect(c.bodySha).toBe(createHash('sha256').update(bodies[i]!).digest('hex'));
      expect(seen.find((r) => r.url === `/d${i}`)!.headers['x-id']).toBe(String(i));
    }
  });

  it('keeps partial response heads intact while other connections read (shared read buffer)', async () => {
    // The server answers each request with its head in two writes, the second after every
    // other exchange has had a chance to read: the first half must survive those reads.
    const pending: Array<{ sock: net.Socket; id: string }> = [];
    const n = 30;
    let flushed = false;
    const raw = await startRawBackend((sock) => {
      let buf = '';
      sock.on('data', (c: Buffer) => {
        buf += c.toString('latin1');
        const end = buf.indexOf('\r\n\r\n');
        if (end === -1) return;
        const id = /^GET \/r(\d+) /.exec(buf)![1]!;
        buf = buf.slice(end + 4);
        sock.write(`HTTP/1.1 200 OK\r\nX-Id: ${id}\r\nX-Pad: ${'p'.repeat(Number(id))}\r\nContent-Le`);
        pending.push({ sock, id });
        if (pending.length === n && !flushed) {
          flushed = true;
          for (const q of pending) q.sock.write(`ngth: ${q.id.length + 4}\r\n\r\nid=${q.id};`);
        }
      });
    });
    cleanups.push(() => raw.close());
    const p = await proxyFor(COOKIE_CFG.replace('server web2 127.0.0.1:{{p2}} cookie web2', ''), { p1: raw.port, p2: raw.port });
    const rs = await Promise.all(Array.from({ length: n }, (_, i) => request(p.port, { path: `/r${i}` })));
    rs.forEach((r, i) => {
      expect(r.status).toBe(200);
      expect(r.headers['x-id']).toBe(String(i));
      expect(r.headers['x-pad']).toBe('p'.repeat(i));
      expect(r.body).toBe(`id=${i};`);
    });
  });

  it('streams large request and response bodies both ways (content-length and chunked)', async () => {
    const [a, b] = await twoBackends();
    const big = randomBytes(3 * 1024 * 1024);
    for (const be of [a, b]) {
      be.handler = (_req, res, body) => {
        res.writeHead(200, { 'x-sha': createHash('sha256').update(body).digest('hex') });
        // chunked download of 2 MiB
        for (let i = 0; i < 32; i++) res.write(Buffer.alloc(65536, i));
        res.end();
      };
    }
    const p = await proxyFor(COOKIE_CFG, { p1: a.port, p2: b.port });
    const sha = createHash('sha256').update(big).digest('hex');
    const r1 = await request(p.port, { method: 'POST', body: big, headers: { 'content-length': big.length } });
    expect(r1.headers['x-sha']).toBe(sha);
    expect(Buffer.byteLength(r1.body, 'latin1')).toBeGreaterThan(0);
    // chunked upload via a streaming request
    const r2 = await new Promise<{ sha: string; len: number }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: p.port, method: 'PUT', path: '/up' }, (res) => {
        let len = 0;
        res.on('data', (c: Buffer) => (len += c.length));
        res.on('end', () => resolve({ sha: res.headers['x-sha'] as string, len }));
      });
      req.on('error', reject);
      for (let i = 0; i < big.length; i += 100000) req.write(big.subarray(i, i + 100000));
      req.end();
    });
    expect(r2.sha).toBe(sha);
    expect(r2.len).toBe(32 * 65536);
  });

  it('delivers every response byte intact to a client that reads late, and heads split across reads', async () => {
    // The upstream read buffer is reused between reads unless the proxy still points into it:
    // a client that does not read makes the proxy's writes queue up, and a head arriving in
    // pieces is kept across reads. Either case would corrupt bytes if the buffer were reused.
    const body = randomBytes(12 * 1024 * 1024); // more than the kernel buffers on both sides hold
    const sha = createHash('sha256').update(body).digest('hex');
    const raw = await startRawBackend((s) => {
      s.once('data', () => {
        s.write('HTTP/1.1 200 OK\r\nContent-Le');
        setTimeout(() => {
          s.write(`ngth: ${body.length}\r\nX-Part: `);
          setTimeout(() => {
            s.write('two\r\n\r\n');
            writeInPieces(s, body, () => {});
          }, 20);
        }, 20);
      });
    });
    cleanups.push(() => raw.close());
    const p = await proxyFor(
      COOKIE_CFG.replace('server web2 127.0.0.1:{{p2}} cookie web2', ''),
      { p1: raw.port, p2: raw.port },
    );
    const got = await new Promise<Buffer>((resolve, reject) => {
      const sock = net.connect({ port: p.port, host: '127.0.0.1' }, () => {
        sock.write('GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
        sock.pause(); // let the proxy's writes back up before reading anything
        setTimeout(() => sock.resume(), 300);
      });
      const parts: Buffer[] = [];
      sock.on('data', (c: Buffer) => parts.push(c));
      sock.on('end', () => resolve(Buffer.concat(parts)));
      sock.on('error', reject);
    });
    const sep = got.indexOf('\r\n\r\n');
    const head = got.subarray(0, sep).toString('latin1');
    expect(head).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(head).toMatch(/\r\nX-Part: two(\r\n|$)/);
    const rest = got.subarray(sep + 4);
    expect(rest.length).toBe(body.length);
    expect(createHash('sha256').update(rest).digest('hex')).toBe(sha);
  });

  it('delivers many pipelined responses intact to a client that reads late (response heads written while the socket is backed up)', { timeout: 8000 }, async () => {
    // Each response head and its small body are copied into one output buffer owned by the
    // connection. While the client does not read, those writes stay queued; reusing the buffer
    // for the next response would overwrite bytes not yet sent.
    const bodyOf = (n: number): Buffer => Buffer.from(createHash('sha256').update(String(n)).digest('hex').repeat(40)); // 2560 bytes
    const raw = await startRawBackend((s) => {
      let text = '';
      s.on('data', (c: Buffer) => {
        text += c.toString('latin1');
        for (let end = text.indexOf('\r\n\r\n'); end !== -1; end = text.indexOf('\r\n\r\n')) {
          const n = Number(/^GET \/(\d+) /.exec(text)?.[1]);
          text = text.slice(end + 4);
          const body = bodyOf(n);
          // One write: head and body in two small writes would meet Nagle and delayed ACKs (40 ms each).
          s.write(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nX-N: ${n}\r\nContent-Length: ${body.length}\r\n\r\n`), body]));
        }
      });
    });
    cleanups.push(() => raw.close());
    const p = await proxyFor(COOKIE_CFG.replace('server web2 127.0.0.1:{{p2}} cookie web2', ''), { p1: raw.port, p2: raw.port });
    const count = 6000; // about 17 MB of responses: more than the kernel buffers on both sides hold
    let reqs = '';
    for (let i = 0; i < count; i++) reqs += `GET /${i} HTTP/1.1\r\nHost: x\r\n${i === count - 1 ? 'Connection: close\r\n' : ''}\r\n`;
    const got = await new Promise<Buffer>((resolve, reject) => {
      const sock = net.connect({ port: p.port, host: '127.0.0.1' }, () => {
        sock.write(reqs);
        sock.pause();
        setTimeout(() => sock.resume(), 300);
      });
      const parts: Buffer[] = [];
      sock.on('data', (c: Buffer) => parts.push(c));
      sock.on('end', () => resolve(Buffer.concat(parts)));
      sock.on('error', reject);
    });
    let at = 0;
    for (let i = 0; i < count; i++) {
      const end = got.indexOf('\r\n\r\n', at);
      expect(end).toBeGreaterThan(at);
      const head = got.subarray(at, end).toString('latin1');
      expect(head).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(head).toContain(`\r\nX-N: ${i}\r\n`);
      const len = Number(/\r\nContent-Length: (\d+)/i.exec(head)?.[1]);
      const body = got.subarray(end + 4, end + 4 + len);
      if (!body.equals(bodyOf(i))) throw new Error(`response ${i}: body differs`);
      at = end + 4 + len;
    }
    expect(at).toBe(got.length);
  });

  it('forwards every request byte intact to a server that reads late, with heads split across reads and pipelined', async () => {
    // The client read buffer is reused between reads unless the proxy still points into it: a
    // server that does not read makes the proxy's writes queue up; a head arriving in pieces and a
    // pipelined request behind a body are kept across reads. Reusing the buffer in any of these
    // cases would corrupt bytes.
    const body = randomBytes(12 * 1024 * 1024);
    const sha = createHash('sha256').update(body).digest('hex');
    const seen: Array<{ head: string; sha: string }> = [];
    const raw = await startRawBackend((s) => {
      s.pause();
      setTimeout(() => s.resume(), 300);
      let pending = Buffer.alloc(0);
      let head: string | null = null;
      let left = 0;
      let hash = createHash('sha256');
      s.on('data', (c: Buffer) => {
        pending = Buffer.concat([pending, c]);
        for (;;) {
          if (head === null) {
            const end = pending.indexOf('\r\n\r\n');
            if (end === -1) return;
            head = pending.subarray(0, end).toString('latin1');
            left = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
            pending = pending.subarray(end + 4);
            hash = createHash('sha256');
          }
          const take = Math.min(left, pending.length);
          hash.update(pending.subarray(0, take));
          pending = pending.subarray(take);
          left -= take;
          if (left > 0) return;
          const digest = hash.digest('hex');
          seen.push({ head, sha: digest });
          s.write(`HTTP/1.1 200 OK\r\nX-Sha: ${digest}\r\nContent-Length: 0\r\n\r\n`);
          head = null;
        }
      });
    });
    cleanups.push(() => raw.close());
    const p = await proxyFor(COOKIE_CFG.replace('server web2 127.0.0.1:{{p2}} cookie web2', ''), { p1: raw.port, p2: raw.port });
    const got = await new Promise<string>((resolve, reject) => {
      const sock = net.connect({ port: p.port, host: '127.0.0.1' });
      let text = '';
      sock.on('data', (c: Buffer) => {
        text += c.toString('latin1');
        if ((text.match(/X-Sha: /g) ?? []).length === 2) {
          sock.destroy();
          resolve(text);
        }
      });
      sock.on('error', reject);
      sock.write('POST /up HTTP/1.1\r\nHost: x\r\nContent-Le');
      setTimeout(() => {
        sock.write(`ngth: ${body.length}\r\nX-Part: `);
        setTimeout(() => {
          sock.write('two\r\n\r\n');
          // The body's last piece carries the next request's head, split in the middle.
          const tail = Buffer.from('POST /second HTTP/1.1\r\nHost: x\r\nContent-');
          writeInPieces(sock, Buffer.concat([body, tail]), () => setTimeout(() => sock.write('Length: 5\r\n\r\nhello'), 20));
        }, 20);
      }, 20);
    });
    expect(seen).toHaveLength(2);
    expect(seen[0]!.head).toMatch(/^POST \/up HTTP\/1\.1\r\n/);
    expect(seen[0]!.head).toMatch(/\r\nX-Part: two(\r\n|$)/);
    expect(seen[0]!.sha).toBe(sha);
    expect(seen[1]!.head).toMatch(/^POST \/second HTTP\/1\.1\r\n/);
    expect(seen[1]!.sha).toBe(createHash('sha256').update('hello').digest('hex'));
    expect(got.indexOf(`X-Sha: ${sha}`)).toBeGreaterThan(-1);
  });

  it('leaves nothing of closed connections on the timer wheel, and recycles their buffers', async () => {
    // Each connection arms request, keep-alive and client timeouts of 5 s on the shared wheel; a
    // closed one must not stay reachable from it until those would have passed (at thousands of
    // new connections per second that pinned hundreds of MB).
    const [a, b] = await twoBackends();
    const p = await proxyFor(COOKIE_CFG, { p1: a.port, p2: b.port });
    const before = spareCount();
    await Promise.all(Array.from({ length: 40 }, () => request(p.port, { headers: { connection: 'close' } })));
    await waitFor(() => p.proxy.connectionCount() === 0, 2000);
    // What is left is live: the idle server connections' expiry (one entry each), nothing else.
    const idle = [...p.proxy.backends.values()].reduce((n, be) => n + be.servers.reduce((m, s) => m + s.idle.length, 0), 0);
    expect(idle).toBeGreaterThan(0);
    expect(p.wheel.retained()).toBe(p.wheel.pending());
    expect(p.wheel.pending()).toBe(idle);
    // Heads are read and written through the shared buffers: those exchanges took none.
    expect(spareCount()).toBe(before);
    // A body read after its head goes into a buffer the connection owns; closing gives it back.
    const posts = 5;
    const answers = await Promise.all(
      Array.from(
        { length: posts },
        () =>
          new Promise<string>((resolve, reject) => {
            const sock = net.connect(p.port, '127.0.0.1');
            let got = '';
            sock.on('data', (c: Buffer) => (got += c.toString('latin1')));
            sock.on('close', () => resolve(got));
            sock.on('error', reject);
            sock.write('POST /late HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\n');
            setTimeout(() => sock.write('hello'), 30);
          }),
      ),
    );
    for (const r of answers) expect(r).toMatch(/^HTTP\/1\.1 200 /);
    await waitFor(() => p.proxy.connectionCount() === 0, 2000);
    // Each took one from the pool (or made one when it was empty) and gave it back.
    expect(spareCount()).toBeGreaterThanOrEqual(Math.max(before, posts));
  });

  it('forwards response header lines as received, minus hop-by-hop ones, with cookies rewritten in place', async () => {
    const raw = await startRawBackend((s) => {
      s.once('data', () => {
        s.end(
          'HTTP/1.0 200 Fine\r\n' +
            'Connection: keep-alive\r\n' +
            'X-First:   spaced value  \r\n' +
            'Keep-Alive: timeout=5\r\n' +
            'Set-Cookie: SRV=from-app; Path=/; HttpOnly\r\n' +
            'set-cookie: other=1\r\n' +
            'Proxy-Connection: keep-alive\r\n' +
            'x-last: z\r\n' +
            'Content-Length: 2\r\n\r\nhi',
        );
      });
    });
    cleanups.push(() => raw.close());
    const cfg = COOKIE_CFG.replace('cookie SERVER insert indirect nocache', 'cookie SRV rewrite').replace(
      'server web2 127.0.0.1:{{p2}} cookie web2',
      '',
    );
    const p = await proxyFor(cfg, { p1: raw.port, p2: raw.port });
    const out = await rawExchange(p.port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(out).toBe(
      'HTTP/1.1 200 Fine\r\n' +
        'X-First:   spaced value  \r\n' +
        'Set-Cookie: SRV=web1; Path=/; HttpOnly\r\n' +
        'set-cookie: other=1\r\n' +
        'x-last: z\r\n' +
        'Content-Length: 2\r\n' +
        'connection: close\r\n\r\nhi',
    );
  });

  it('forwards request header lines as received, minus hop-by-hop ones (Upgrade without a Connection token too), plus X-Forwarded-For', async () => {
    let seen = '';
    const raw = await startRawBackend((s) => {
      s.on('data', (d: Buffer) => {
        seen += d.toString('latin1');
        if (seen.includes('\r\n\r\n')) s.end('HTTP/1.1 204 No Content\r\n\r\n');
      });
    });
    cleanups.push(() => raw.close());
    const cfg = COOKIE_CFG.replace('server web2 127.0.0.1:{{p2}} cookie web2', '');
    const p = await proxyFor(cfg, { p1: raw.port, p2: raw.port });
    await rawExchange(
      p.port,
      '\r\nGET /a?b=c HTTP/1.1\r\n' +
        'Host: x\r\n' +
        'Connection: keep-alive\r\n' +
        'X-Odd:spaced  \r\n' +
        'Upgrade: h2c\r\n' +
        'Keep-Alive: 300\r\n' +
        'Proxy-Connection: keep-alive\r\n' +
        'accept: */*\r\n\r\n',
      { endAfterWrite: true },
    );
    expect(seen).toBe(
      'GET /a?b=c HTTP/1.1\r\n' +
        'Host: x\r\n' +
        'X-Odd:spaced  \r\n' +
        'accept: */*\r\n' +
        'X-Forwarded-For: 127.0.0.1\r\n\r\n',
    );
  });

  it('does not reuse a server connection whose upgrade request the server declined', async () => {
    // Node's http server answers an Upgrade request it has no handler for with a plain response,
    // but afterwards no longer answers a request it cannot parse on that connection (a fresh
    // connection gets 400): reusing it turns the next odd request into a 504.
    const [a] = await twoBackends();
    const cfg = COOKIE_CFG.replace('timeout server 5s', 'timeout server 1s').replace('server web2 127.0.0.1:{{p2}} cookie web2', '');
    const p = await proxyFor(cfg, { p1: a.port, p2: a.port });
    const up = await rawExchange(p.port, 'GET /up HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n', { endAfterWrite: true });
    expect(up).toMatch(/^HTTP\/1\.1 200 /);
    const odd = await rawExchange(p.port, 'GET odd/target HTTP/1.1\r\nHost: x\r\n\r\n', { endAfterWrite: true });
    expect(odd).toMatch(/^HTTP\/1\.1 400 /);
  });

  it('with forwardfor if-none, keeps a client X-Forwarded-For (any case) and adds none; without, adds ours', async () => {
    let seen = '';
    const raw = await startRawBackend((s) => {
      s.on('data', (d: Buffer) => {
        seen += d.toString('latin1');
        if (seen.endsWith('\r\n\r\n')) s.end('HTTP/1.1 204 No Content\r\n\r\n');
      });
    });
    cleanups.push(() => raw.close());
    const base = COOKIE_CFG.replace('server web2 127.0.0.1:{{p2}} cookie web2', '');
    const send = 'GET / HTTP/1.1\r\nHost: x\r\nx-forwarded-FOR: 10.9.8.7\r\n\r\n';
    const p1 = await proxyFor(base.replace('option forwardfor', 'option forwardfor if-none'), { p1: raw.port, p2: raw.port });
    await rawExchange(p1.port, send, { endAfterWrite: true });
    expect(seen).toBe('GET / HTTP/1.1\r\nHost: x\r\nx-forwarded-FOR: 10.9.8.7\r\n\r\n');
    seen = '';
    const p2 = await proxyFor(base, { p1: raw.port, p2: raw.port });
    await rawExchange(p2.port, send, { endAfterWrite: true });
    expect(seen).toBe('GET / HTTP/1.1\r\nHost: x\r\nx-forwarded-FOR: 10.9.8.7\r\nX-Forwarded-For: 127.0.0.1\r\n\r\n');
  });

  it('answers pipelined requests in order', async () => {
    const [a, b] = await twoBackends();
    const p = await proxyFor(COOKIE_CFG, { p1: a.port, p2: b.port });
    const reqs =
      'GET /1 HTTP/1.1\r\nHost: x\r\n\r\n' +
      'GET /2 HTTP/1.1\r\nHost: x\r\n\r\n' +
      'GET /3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
    const out = await rawExchange(p.port, reqs);
    const urls = [...out.matchAll(/"url":"(\/\d)"/g)].map((m) => m[1]);
    expect(urls).toEqual(['/1', '/2', '/3']);
  });

  it('frames HEAD, 204 and 304 responses without a body', async () => {
    const [a, b] = await twoBackends();
    for (const be of [a, b]) {
      be.handler = (req, res) => {
        if (req.url === '/204') res.writeHead(204).end();
        else if (req.url === '/304') res.writeHead(304, { etag: '"x"' }).end();
        else res.writeHead(200, { 'content-length': '5' }).end(req.method === 'HEAD' ? undefined : 'hello');
      };
    }
    const p = await proxyFor(COOKIE_CFG, { p1: a.port, p2: b.port });
    const out = await rawExchange(
      p.port,
      'HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET /204 HTTP/1.1\r\nHost: x\r\n\r\nGET /304 HTTP/1.1\r\nHost: x\r\n\r\nGET /end HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    const statuses = [...out.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => m[1]);
    expect(statuses).toEqual(['200', '204', '304', '200']);
    expect(out.endsWith('hello')).toBe(true);
  });

  it('aborts at once when the client half-closes mid-body, and answers a complete request whose client half-closed', async () => {
    const [a, b] = await twoBackends();
    const p = await proxyFor(COOKIE_CFG, { p1: a.port, p2: b.port });
    const full = await rawExchange(p.port, 'POST /full HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello', { endAfterWrite: true });
    expect(full).toMatch(/^HTTP\/1\.1 200 /);
    const t0 = Date.now();
    const cut = await rawExchange(p.port, 'POST /cut HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel', { endAfterWrite: true });
    expect(Date.now() - t0).toBeLessThan(2000); // timeout server is 5s
    expect(cut).toBe('');
    await waitFor(() => requestLogs(p).some((l) => l.uri === '/cut'), 2000, 'log of the cut request');
    expect(String(requestLogs(p).find((l) => l.uri === '/cut')!.termination_state)).toMatch(/^CD/);
  });

  it('answers malformed requests with 400 and keeps serving', async () => {
    const [a, b] = await twoBackends();
    const p = await proxyFor(COOKIE_CFG, { p1: a.port, p2: b.port });
    const bad = [
      'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n',
      'BAD\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n',
      'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
      '\x00\x01\x02\r\n\r\n',
    ];
    for (const req of bad) {
      const out = await rawExchange(p.port, req);
      expect(out).toMatch(/^HTTP\/1\.1 400 /);
    }
    const big = await rawExchange(p.port, 'GET / HTTP/1.1\r\nHost: x\r\nX: ' + 'a'.repeat(20000) + '\r\n\r\n');
    expect(big).toMatch(/^HTTP\/1\.1 431 /);
    const ok = await request(p.port);
    expect(ok.status).toBe(200);
    expect(requestLogs(p).some((l) => l.termination_state === 'PR--' && l.status === 400)).toBe(true);
  });

  it('answers 502 for an invalid server response and 504 on server timeout', async () => {
    const garbage = await startRawBackend((s) => s.once('data', () => s.end('NOT HTTP AT ALL\r\n\r\n')));
    const silent = await startRawBackend(() => {});
    cleanups.push(() => garbage.close(), () => silent.close());
    const cfg = COOKIE_CFG.replace('timeout server 5s', 'timeout server 300ms').replace('option forwardfor', 'retries 0');
    const p1 = await proxyFor(cfg.replace('server web2', '#'), { p1: garbage.port, p2: 1 });
    expect((await request(p1.port)).status).toBe(502);
    const p2 = await proxyFor(cfg.replace('server web2', '#'), { p1: silent.port, p2: 1 });
    const t0 = Date.now();
    const r = await request(p2.port);
    expect(r.status).toBe(504);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(requestLogs(p2).at(-1)!.termination_state).toMatch(/^sH/);
  });

  it('passes WebSocket upgrades through with persistence applied', async () => {
    const [a, b] = await twoBackends();
    for (const be of [a, b]) {
      const wss = new WebSocketServer({ server: be.server });
      wss.on('connection', (ws, req) => {
        ws.on('message', (m) => ws.send(`${be.name}:${String(m)}:${req.headers.cookie ?? ''}`));
      });
      cleanups.push(() => new Promise<void>((r) => wss.close(() => r())));
    }
    const p = await proxyFor(COOKIE_CFG, { p1: a.port, p2: b.port });
    const first = await request(p.port);
    const served = first.headers['x-served-by'];
    const jar = cookieFrom(first.headers, 'SERVER')!;
    for (let i = 0; i < 3; i++) {
      const ws = new WebSocket(`ws://127.0.0.1:${p.port}/ws`, { headers: { cookie: `${jar}; app=1` } });
      const reply = await new Promise<string>((resolve, reject) => {
        ws.on('open', () => ws.send('ping'));
        ws.on('message', (m) => resolve(String(m)));
        ws.on('error', reject);
      });
      ws.close();
      expect(reply).toBe(`${served}:ping:app=1`);
    }
    // a new client's upgrade gets a cookie on the 101
    const upgradeHeaders = await new Promise<http.IncomingHttpHeaders>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${p.port}/ws`);
      ws.on('upgrade', (res) => {
        resolve(res.headers);
        ws.close();
      });
      ws.on('error', reject);
    });
    expect(cookieFrom(upgradeHeaders, 'SERVER')).toMatch(/^SERVER=web[12]$/);
  });

  it('closes idle keep-alive connections after timeout http-keep-alive', async () => {
    const [a, b] = await twoBackends();
    const cfg = COOKIE_CFG.replace('timeout server 5s', 'timeout server 5s\n    timeout http-keep-alive 200ms');
    const p = await proxyFor(cfg, { p1: a.port, p2: b.port });
    const sock = net.connect({ host: '127.0.0.1', port: p.port });
    const closed = new Promise<number>((resolve) => {
      const t0 = Date.now();
      sock.on('close', () => resolve(Date.now() - t0));
    });
    sock.on('error', () => {});
    sock.resume(); // read the response so the proxy's FIN is seen
    sock.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    const ms = await closed;
    expect(ms).toBeGreaterThanOrEqual(150);
    expect(ms).toBeLessThan(3000);
  });
});

describe('backup servers and health', () => {
  it('uses a backup only when no primary is up', async () => {
    const [a, b] = await twoBackends();
    const bk = await startBackend('spare');
    cleanups.push(() => bk.close());
    const cfg = `
defaults
    mode http
frontend fe
    bind 127.0.0.1:{{port}}
    default_backend be
backend be
    option httpchk GET /health
    server web1 127.0.0.1:{{p1}} check inter 50 fall 1 rise 1
    server web2 127.0.0.1:{{p2}} check inter 50 fall 1 rise 1
    server spare 127.0.0.1:{{p3}} check inter 50 fall 1 rise 1 backup
`;
    const p = await proxyFor(cfg, { p1: a.port, p2: b.port, p3: bk.port });
    for (let i = 0; i < 4; i++) expect((await request(p.port)).headers['x-served-by']).not.toBe('spare');
    await a.close();
    await b.close();
    const be = p.proxy.backends.get('be')!;
    await waitFor(() => be.candidates.length === 1 && be.candidates[0]!.name === 'spare', 3000, 'backup takes over');
    expect((await request(p.port)).headers['x-served-by']).toBe('spare');
  });
});
