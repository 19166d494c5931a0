/**
 * Test backends: real HTTP servers on loopback that report what they received, so tests can
 * assert on what the proxy forwarded.
 */
import http from 'node:http';
import fs from 'node:fs';
import net from 'node:net';
import { createHash } from 'node:crypto';

export interface SeenRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  remotePort: number;
  bodyBytes: number;
  bodySha: string;
}

export interface TestBackend {
  name: string;
  port: number;
  server: http.Server;
  seen: SeenRequest[];
  /** Set a custom handler for the next requests (default: echo JSON). */
  handler?: (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => void;
  close(): Promise<void>;
}

/**
 * Starts a backend that answers `{"server": name, ...}` as JSON with `x-served-by: name`, after
 * reading the whole body. `/health` answers 200 `ok`.
 */
export async function startBackend(name: string, port = 0, host = '127.0.0.1'): Promise<TestBackend> {
  const b: TestBackend = {
    name,
    port: 0,
    seen: [],
    server: undefined as unknown as http.Server,
    close: async () => {
      b.server.closeAllConnections();
      await new Promise<void>((r) => b.server.close(() => r()));
    },
  };
  b.server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (req.url === '/health') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
        return;
      }
      b.seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        remotePort: req.socket.remotePort ?? 0,
        bodyBytes: body.length,
        bodySha: createHash('sha256').update(body).digest('hex'),
      });
      if (b.handler) {
        b.handler(req, res, body);
        return;
      }
      const payload = JSON.stringify({ server: name, url: req.url, bodyBytes: body.length, cookie: req.headers.cookie ?? null });
      res.writeHead(200, { 'content-type': 'application/json', 'x-served-by': name }).end(payload);
    });
  });
  await new Promise<void>((resolve) => b.server.listen(port, host, () => resolve()));
  b.port = (b.server.address() as net.AddressInfo).port;
  return b;
}

/** A TCP server that answers every connection with fixed bytes (for malformed upstream tests). */
export async function startRawBackend(
  onConn: (sock: net.Socket) => void,
): Promise<{ port: number; close: () => Promise<void> }> {
  const socks = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    socks.add(s);
    s.on('close', () => socks.delete(s));
    s.on('error', () => {});
    onConn(s);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  return {
    port: (srv.address() as net.AddressInfo).port,
    close: async () => {
      for (const s of socks) s.destroy();
      await new Promise<void>((r) => srv.close(() => r()));
    },
  };
}

/** Ports this process handed out already (never twice). */
const handedOut = new Set<number>();

/** The kernel's ephemeral port range (outgoing connections take their local port from it). */
function ephemeralRange(): [number, number] {
  try {
    const [lo, hi] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (lo && hi) return [lo, hi];
  } catch {
    /* not Linux: assume the IANA range */
  }
  return [49152, 65535];
}

function canListen(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

/**
 * Returns a port that was free a moment ago. It is picked below the ephemeral range: a port the
 * kernel hands out for bind(0) can meanwhile become the local port of an outgoing connection
 * (chaos runs open thousands), and the node that was meant to listen there fails with EADDRINUSE.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const [lo] = ephemeralRange();
  const span = Math.min(12000, lo - 1025);
  for (let i = 0; span > 0 && i < 200; i++) {
    const p = lo - 1 - Math.floor(Math.random() * span);
    if (handedOut.has(p)) continue;
    if (await canListen(p, host)) {
      handedOut.add(p);
      return p;
    }
  }
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, host, () => r()));
  const p = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return p;
}
