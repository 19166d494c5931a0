/**
 * The request parser, the response parser and the response edit plan are shared by every
 * connection (exchange.ts, response-edit.ts). Two clients whose request heads and whose servers'
 * response heads arrive in pieces, interleaved with each other, each get back exactly their own
 * request and response, and the owner checks count no re-entry.
 */
import { describe, expect, it } from 'vitest';
import net from 'node:net';
import { startRawBackend } from '../../../../test/helpers/backends.js';
import { startProxy } from '../../../../test/helpers/proxy.js';
import { useScope } from '../../../../test/helpers/scope.js';
import { waitFor } from '../../../../test/helpers/wait.js';
import { claimRequestHead, releaseRequestHead, requestHeadReentries, type Exchange } from './exchange.js';
import { responseEditReentries } from './response-edit.js';

const CFG = `
defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
    timeout http-request 5s
frontend fe
    bind 127.0.0.1:{{port}}
    default_backend be
backend be
    retries 0
    stick-table type string len 64 size 1k
    stick on req.hdr(x-who)
    server app 127.0.0.1:{{app}}
`;

const scope = useScope();

/** A connected client that collects what it reads. */
async function client(port: number): Promise<{ sock: net.Socket; got: () => string }> {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  let got = '';
  sock.on('data', (d: Buffer) => (got += d.toString('latin1')));
  scope.defer(() => void sock.destroy());
  return { sock, got: () => got };
}

describe('shared head parsers and edit plan', () => {
  it('keeps two interleaved connections apart: each sees only its own request and response head', async () => {
    const before = { req: requestHeadReentries(), res: responseEditReentries() };
    // The backend holds each request head until both arrived, then answers both in two pieces
    // each, interleaved: A's first half, B's first half, A's second half, B's second half.
    const waiting: Array<{ sock: net.Socket; head: string }> = [];
    const be = await startRawBackend((s) => {
      let pending = '';
      s.on('data', (d: Buffer) => {
        pending += d.toString('latin1');
        const i = pending.indexOf('\r\n\r\n');
        if (i !== -1) waiting.push({ sock: s, head: pending.slice(0, i + 4) });
      });
    });
    scope.defer(() => be.close());
    const px = await startProxy(CFG, { app: be.port });
    scope.defer(() => px.close());

    const a = await client(px.port);
    const b = await client(px.port);
    a.sock.write('GET /from-a HTTP/1.1\r\nHost: a\r\nX-Who: al');
    b.sock.write('GET /from-b HTTP/1.1\r\nHost: b\r\nX-Who: bo');
    await new Promise((r) => setImmediate(r));
    a.sock.write('ice\r\n\r\n');
    b.sock.write('b\r\n\r\n');
    await waitFor(() => waiting.length === 2, 4000);

    const answer = (head: string): [string, string] => {
      const who = /x-who: (\w+)/i.exec(head)?.[1] ?? '?';
      const body = `hello ${who}`;
      const full = `HTTP/1.1 200 OK\r\nX-For: ${who}\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
      return [full.slice(0, 20), full.slice(20)];
    };
    const [w0, w1] = [waiting[0]!, waiting[1]!];
    const [p0, q0] = answer(w0.head);
    const [p1, q1] = answer(w1.head);
    w0.sock.write(p0);
    w1.sock.write(p1);
    // Give the first halves a moment to be read on their own (the result must hold either way).
    await new Promise((r) => setTimeout(r, 20));
    w0.sock.write(q0);
    w1.sock.write(q1);
    await waitFor(() => a.got().includes('hello ') && b.got().includes('hello '), 4000);

    const heads = waiting.map((w) => w.head);
    const headA = heads.find((h) => h.startsWith('GET /from-a '))!;
    const headB = heads.find((h) => h.startsWith('GET /from-b '))!;
    expect(headA).toMatch(/\r\nx-who: alice\r\n/i);
    expect(headA).not.toMatch(/bob|from-b|Host: b/);
    expect(headB).toMatch(/\r\nx-who: bob\r\n/i);
    expect(headB).not.toMatch(/alice|from-a|Host: a/);
    expect(a.got()).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(a.got()).toMatch(/\r\nX-For: alice\r\n[^]*\r\n\r\nhello alice$/);
    expect(a.got()).not.toContain('bob');
    expect(b.got()).toMatch(/\r\nX-For: bob\r\n[^]*\r\n\r\nhello bob$/);
    expect(b.got()).not.toContain('alice');

    expect(requestHeadReentries()).toBe(before.req);
    expect(responseEditReentries()).toBe(before.res);
    expect(requestHeadReentries()).toBe(0);
    expect(responseEditReentries()).toBe(0);
  });

  it('counts a claim of the shared request head while another connection holds it', () => {
    const before = requestHeadReentries();
    const x = {} as Exchange;
    const y = {} as Exchange;
    claimRequestHead(x);
    releaseRequestHead(x);
    expect(requestHeadReentries()).toBe(before);
    claimRequestHead(x);
    claimRequestHead(y); // x has not released: re-entry
    expect(requestHeadReentries()).toBe(before + 1);
    releaseRequestHead(x); // y holds it now: re-entry
    expect(requestHeadReentries()).toBe(before + 2);
  });
});
