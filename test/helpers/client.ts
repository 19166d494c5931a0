/**
 * Minimal HTTP clients for tests: `rawExchange` writes exact bytes and collects whatever comes
 * back until the server closes or `untilResponses` complete responses were seen; `request` is a
 * thin `http.request` wrapper with an optional cookie jar and keep-alive agent; `openClient`
 * keeps a connection open and lets a test poll what it received; `exchangeUntilClose` is the
 * fuzz targets' one exchange with a per-case deadline.
 */
import http from 'node:http';
import net from 'node:net';
import type { Scope } from './scope.js';

export async function rawExchange(
  port: number,
  data: string | Buffer,
  opts: { host?: string; timeoutMs?: number; endAfterWrite?: boolean } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: opts.host ?? '127.0.0.1', port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      resolve(Buffer.concat(chunks).toString('latin1'));
    }, opts.timeoutMs ?? 3000);
    sock.on('connect', () => {
      sock.write(data);
      if (opts.endAfterWrite) sock.end();
    });
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', (e) => {
      clearTimeout(timer);
      if (chunks.length > 0) resolve(Buffer.concat(chunks).toString('latin1'));
      else reject(e);
    });
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
  });
}

export interface Resp {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  localPort: number;
}

export async function request(
  port: number,
  opts: {
    path?: string;
    method?: string;
    headers?: http.OutgoingHttpHeaders;
    body?: string | Buffer;
    agent?: http.Agent;
    host?: string;
    localAddress?: string;
  } = {},
): Promise<Resp> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: opts.host ?? '127.0.0.1',
        port,
        path: opts.path ?? '/',
        method: opts.method ?? 'GET',
        headers: opts.headers,
        agent: opts.agent ?? false,
        localAddress: opts.localAddress,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
            localPort: req.socket?.localPort ?? 0,
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Extracts `NAME=value` of a Set-Cookie list as a Cookie header fragment. */
export function cookieFrom(headers: http.IncomingHttpHeaders, name: string): string | undefined {
  for (const sc of headers['set-cookie'] ?? []) {
    if (sc.startsWith(`${name}=`)) return sc.split(';')[0];
  }
  return undefined;
}

/** A connection `openClient` keeps open: what it received so far, and whether it closed. */
export interface OpenClient {
  sock: net.Socket;
  text: () => string;
  closed: () => boolean;
}

/**
 * Connects to 127.0.0.1:`port`, writes `data` once connected and collects the answer; the socket
 * is destroyed after the test through `scope`. An error counts as closed.
 */
export function openClient(scope: Scope, port: number, data: string): OpenClient {
  let text = '';
  let closed = false;
  const sock = net.connect({ port, host: '127.0.0.1' }, () => sock.write(data));
  sock.on('data', (d: Buffer) => (text += d.toString('latin1')));
  sock.on('error', () => (closed = true));
  sock.on('close', () => (closed = true));
  scope.defer(() => void sock.destroy());
  return { sock, text: () => text, closed: () => closed };
}

/**
 * Connects to 127.0.0.1:`port`, lets `send` write (and half-close) once connected, and collects
 * the answer until the server closes (`closed: true`; a socket error ends the same way) or
 * `deadlineMs` passes (the socket is destroyed, `closed: false`).
 */
export function exchangeUntilClose(port: number, deadlineMs: number, send: (sock: net.Socket) => void): Promise<{ out: string; closed: boolean }> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      resolve({ out: Buffer.concat(chunks).toString('latin1'), closed: false });
    }, deadlineMs);
    sock.on('connect', () => send(sock));
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', () => {});
    sock.on('close', () => {
      clearTimeout(timer);
      resolve({ out: Buffer.concat(chunks).toString('latin1'), closed: true });
    });
  });
}
