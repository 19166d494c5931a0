/**
 * Message framing through a real proxy (RFC 9112 §6): Transfer-Encoding on requests and
 * responses, Content-Length together with Transfer-Encoding, and bodies delimited by close.
 * The backends here are raw sockets, so the exact bytes each side sees are checked.
 */
import { describe, expect, it } from 'vitest';
import http from 'node:http';
import net from 'node:net';
import { createHash } from 'node:crypto';
import { startBackend, startRawBackend } from '../../../../test/helpers/backends.js';
import { rawExchange, request } from '../../../../test/helpers/client.js';
import { requestLogs, startProxy, type RunningProxy } from '../../../../test/helpers/proxy.js';
import { waitFor } from '../../../../test/helpers/wait.js';
import { useScope } from '../../../../test/helpers/scope.js';

const CFG = `
defaults
    mode http
    timeout connect 2s
    timeout client 3s
    timeout server 3s
    timeout http-request 2s
frontend fe
    bind 127.0.0.1:{{port}}
    default_backend be
backend be
    retries 0
    server app 127.0.0.1:{{app}}
`;

const scope = useScope();

async function proxyTo(app: number): Promise<RunningProxy> {
  const p = await startProxy(CFG, { app });
  scope.defer(() => p.close());
  return p;
}

/** A raw backend answering every request head it reads with `answer(head)`, recording heads and connections. */
async function scriptedBackend(answer: (head: string) => string, closeAfter = false) {
  const heads: string[] = [];
  let conns = 0;
  const be = await startRawBackend((s) => {
    conns++;
    let pending = '';
    s.on('data', (d: Buffer) => {
      pending += d.toString('latin1');
      for (let i = pending.indexOf('\r\n\r\n'); i !== -1; i = pending.indexOf('\r\n\r\n')) {
        const head = pending.slice(0, i + 4);
        pending = pending.slice(i + 4);
        heads.push(head);
        if (closeAfter) s.end(answer(head), 'latin1');
        else s.write(answer(head), 'latin1');
      }
    });
  });
  scope.defer(() => be.close());
  return { port: be.port, heads, conns: () => conns };
}

/** Header lines of the first response in `raw` (names lower-cased). */
function headerLines(raw: string): string[] {
  const end = raw.indexOf('\r\n\r\n');
  return raw.slice(0, end).split('\r\n').slice(1).map((l) => l.toLowerCase());
}

describe('request Transfer-Encoding (RFC 9112 §6.1, §6.3)', () => {
  const refused: Array<[string, string]> = [
    ['identity, chunked', 'Transfer-Encoding: identity, chunked\r\n'],
    ['gzip, chunked', 'Transfer-Encoding: gzip, chunked\r\n'],
    ['chunked, chunked', 'Transfer-Encoding: chunked, chunked\r\n'],
    ['chunked, (empty)', 'Transfer-Encoding: chunked,\r\n'],
    [', chunked', 'Transfer-Encoding: , chunked\r\n'],
    ['chunked;q=1', 'Transfer-Encoding: chunked;q=1\r\n'],
    ['chunked with a tab', 'Transfer-Encoding: chunked\t\r\n'],
    ['empty value', 'Transfer-Encoding: \r\n'],
    ['identity alone', 'Transfer-Encoding: identity\r\n'],
    ['two lines', 'Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n'],
    ['with Content-Length', 'Content-Length: 5\r\nTransfer-Encoding: chunked\r\n'],
  ];
  it.each(refused)('refuses %s with 400, forwards nothing, and keeps serving', async (_name, te) => {
    const be = await startBackend('web1');
    scope.defer(() => be.close());
    const p = await proxyTo(be.port);
    const smuggled = 'GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n';
    const out = await rawExchange(p.port, `POST /te HTTP/1.1\r\nHost: x\r\n${te}\r\n5\r\nhello\r\n0\r\n\r\n${smuggled}`);
    expect(out).toMatch(/^HTTP\/1\.1 400 /);
    expect(out.match(/HTTP\/1\.1 /g)).toHaveLength(1); // closed after the 400: nothing else parsed
    expect(be.seen).toEqual([]);
    const ok = await request(p.port);
    expect(ok.status).toBe(200);
    expect(be.seen.map((r) => r.url)).toEqual(['/']);
    expect(requestLogs(p).some((l) => l.status === 400 && l.termination_state === 'PR--')).toBe(true);
  });

  it('accepts exactly `chunked` in any case with surrounding spaces, forwards it as `chunked` and the body intact', async () => {
    const be = await startBackend('web1');
    scope.defer(() => be.close());
    const p = await proxyTo(be.port);
    for (const te of ['chunked', 'Chunked', '  CHUNKED  ']) {
      const out = await rawExchange(
        p.port,
        `POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:${te}\r\nConnection: close\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n`,
      );
      expect(out, JSON.stringify(te)).toMatch(/^HTTP\/1\.1 200 /);
      const seen = be.seen.at(-1)!;
      expect(seen.bodySha).toBe(createHash('sha256').update('hello world').digest('hex'));
      // The server sees the coding spelled plainly, whatever the client wrote.
      const raw = seen.rawHeaders;
      const at = raw.findIndex((h, i) => i % 2 === 0 && h.toLowerCase() === 'transfer-encoding');
      expect(raw[at + 1]).toBe('chunked');
    }
    expect(be.seen).toHaveLength(3);
  });

  it('refuses Transfer-Encoding in an HTTP/1.0 request with 400', async () => {
    const be = await startBackend('web1');
    scope.defer(() => be.close());
    const p = await proxyTo(be.port);
    const out = await rawExchange(p.port, 'POST /old HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
    expect(out).toMatch(/^HTTP\/1\.1 400 /);
    expect(be.seen).toEqual([]);
  });

  it('answers 400 to a malformed request that follows a served one on the same connection', async () => {
    const be = await startBackend('web1');
    try {
      const p = await proxyTo(be.port);
      const out = await rawExchange(p.port, 'GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n');
      expect(out).toMatch(/^HTTP\/1\.1 200 /);
      expect(out).toMatch(/\r\n0\r\n\r\nHTTP\/1\.1 400 [^]*$/);
      expect(be.seen.map((r) => r.url)).toEqual(['/first']);
    } finally {
      await be.close();
    }
  });
});

describe('response Transfer-Encoding and Content-Length (RFC 9112 §6.3)', () => {
  it('drops Content-Length from a chunked response, keeps the body intact, and does not reuse that server connection', async () => {
    const be = await scriptedBackend(
      () => 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-Before: 1\r\nTransfer-Encoding: chunked\r\nX-After: 2\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n',
    );
    const p = await proxyTo(be.port);
    const raw = await rawExchange(p.port, 'GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    const responses = raw.split(/(?=HTTP\/1\.1 )/);
    expect(responses).toHaveLength(2);
    for (const r of responses) {
      const lines = headerLines(r);
      expect(lines.filter((l) => l.startsWith('content-length:'))).toEqual([]);
      expect(lines).toContain('transfer-encoding: chunked');
      expect(lines).toContain('x-before: 1');
      expect(lines).toContain('x-after: 2');
      expect(r.slice(r.indexOf('\r\n\r\n') + 4)).toBe('5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n');
    }
    // The client connection stayed open for /b; each exchange used a fresh server connection.
    expect(be.heads).toHaveLength(2);
    expect(be.conns()).toBe(2);

    // A real HTTP client (llhttp refuses a response carrying both) reads the body.
    const viaNode = await request(p.port, { path: '/c' });
    expect(viaNode.status).toBe(200);
    expect(viaNode.headers['content-length']).toBeUndefined();
    expect(viaNode.body).toBe('hello world');
  });

  it('drops Content-Length when a response body is delimited by close (Transfer-Encoding without chunked last)', async () => {
    const body = 'gzip-bytes-that-are-not-chunked\r\n0\r\n\r\n';
    for (const te of ['gzip', 'chunked, gzip']) {
      const be = await scriptedBackend(() => `HTTP/1.1 200 OK\r\nContent-Length: 4\r\nTransfer-Encoding: ${te}\r\n\r\n${body}`, true);
      const p = await proxyTo(be.port);
      const raw = await rawExchange(p.port, 'GET /z HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n');
      const lines = headerLines(raw);
      expect(lines.filter((l) => l.startsWith('content-length:'))).toEqual([]);
      expect(lines).toContain(`transfer-encoding: ${te}`);
      expect(lines).toContain('connection: close');
      // Everything up to the server's close is the body; the client connection closes with it.
      expect(raw.slice(raw.indexOf('\r\n\r\n') + 4)).toBe(body);
      expect(be.heads).toHaveLength(1);
    }
  });

  const bad: Array<[string, string]> = [
    ['chunked twice', 'Transfer-Encoding: chunked, chunked\r\n'],
    ['an empty coding', 'Transfer-Encoding: gzip,,chunked\r\n'],
    ['an empty value', 'Transfer-Encoding:\r\n'],
    ['a non-token coding', 'Transfer-Encoding: gz/ip\r\n'],
    ['two Content-Length values', 'Content-Length: 5\r\nContent-Length: 6\r\n'],
    ['a Content-Length list', 'Content-Length: 5, 5\r\n'],
    ['a signed Content-Length', 'Content-Length: +5\r\n'],
    ['a Content-Length with a space inside', 'Content-Length: 5 5\r\n'],
    ['obs-fold', 'X-A: 1\r\n folded\r\nContent-Length: 5\r\n'],
    ['a space before the colon', 'Content-Length : 5\r\n'],
    ['a bare LF', 'X-A: 1\nContent-Length: 5\r\n'],
    ['a NUL in a value', 'X-A: a\u0000b\r\nContent-Length: 5\r\n'],
  ];
  it.each(bad)('answers 502 for a response with %s and keeps serving', async (_name, lines) => {
    const be = await scriptedBackend((head) =>
      head.startsWith('GET /ok ') ? 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok' : `HTTP/1.1 200 OK\r\n${lines}\r\nhello`,
    );
    const p = await proxyTo(be.port);
    const out = await rawExchange(p.port, 'GET /bad HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(out).toMatch(/^HTTP\/1\.1 502 /);
    expect(out).not.toContain('hello');
    const ok = await request(p.port, { path: '/ok' });
    expect(ok.status).toBe(200);
    expect(ok.body).toBe('ok');
  });

  it('forwards a chunked response whose chunk size overflows as an aborted body, never as a desync', async () => {
    const be = await scriptedBackend(
      (head) =>
        head.startsWith('GET /ok ')
          ? 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'
          : 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n',
    );
    const p = await proxyTo(be.port);
    const sock = net.connect(p.port, '127.0.0.1');
    const got: Buffer[] = [];
    sock.on('data', (d: Buffer) => got.push(d));
    const closed = new Promise<void>((r) => sock.on('close', () => r()));
    sock.on('error', () => {});
    sock.write('GET /big HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => sock.destroyed || got.length > 0, 3000, 'an answer or a close');
    await closed;
    expect(Buffer.concat(got).toString('latin1')).not.toContain('hello');
    const ok = await request(p.port, { path: '/ok', agent: new http.Agent({ keepAlive: false }) });
    expect(ok.status).toBe(200);
  });
});
