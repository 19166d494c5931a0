// The least a Node.js data plane can cost for the bench's traffic: the `node-floor-tcp` and
// `node-floor-http` targets. Unlike node-relay-server.mjs (the plain way: pipe), this one uses
// every socket trick stickmesh's data plane uses (reads into caller-owned buffers through Node's
// `onread` mode, listen/user-buffer.ts for accepted sockets; writes straight to libuv's
// uv_try_write, listen/raw-write.ts), taken from the build, and does nothing else: no stick table,
// no timers, no limits, no logging, no metrics, no rules, no error answers.
//
//   tcp:  round robin, one server connection per client connection, bytes relayed both ways.
//   http: keep-alive GET only (what wrk sends): a request head is forwarded verbatim to the next
//         server in round robin, over a server connection kept per client connection and server;
//         the response head gets `Set-Cookie: SERVERID=sN; path=/` and `Cache-Control: private`
//         (what `cookie SERVERID insert indirect nocache` adds to a request without the cookie)
//         and its Content-Length body follows. A request with a body, a response without
//         Content-Length, or a head split over reads is not this floor's traffic: the connection
//         is closed.
//
// A bar this floor misses against HAProxy is out of reach of Node's sockets, not of stickmesh's
// code; the distance from stickmesh to it is stickmesh's own JavaScript.
// Usage: node node-floor-server.mjs tcp|http LISTEN_PORT UPSTREAM_PORT...
import net from 'node:net';
import v8 from 'node:v8';
import { readInto } from '../../packages/proxy/dist/listen/user-buffer.js';
import { RawWriter } from '../../packages/proxy/dist/listen/raw-write.js';
import { ReadBuffer } from '../../packages/proxy/dist/listen/read-buffer.js';

// The young-generation cap a stickmesh node runs with (packages/cli/src/young-gen.ts).
v8.setFlagsFromString('--semi-space-growth-factor=1');

const [mode, listenArg, ...upstreamArgs] = process.argv.slice(2);
const listenPort = Number(listenArg);
const upstreamPorts = upstreamArgs.map(Number);
if ((mode !== 'tcp' && mode !== 'http') || !(listenPort > 0) || upstreamPorts.length === 0) {
  process.stderr.write('usage: node node-floor-server.mjs tcp|http LISTEN_PORT UPSTREAM_PORT...\n');
  process.exit(2);
}
let next = 0;
/**
 * Every read buffer is a stickmesh ReadBuffer of this fixed size: reused read after read unless
 * the bytes of the last read are still queued for the other side (then the next read gets a new one).
 */
const READ_BYTES = 16384;
const readBuffer = () => new ReadBuffer(READ_BYTES, READ_BYTES);

function noop() {}

// ------------------------------------------------------------------------------------------ tcp

class TcpRelay {
  constructor(client) {
    this.client = client;
    this.cr = readBuffer();
    this.sr = readBuffer();
    const port = upstreamPorts[next];
    next = (next + 1) % upstreamPorts.length;
    this.server = net.connect({ port, host: '127.0.0.1', noDelay: true, onread: { buffer: this.sr.next, callback: this.onServerRead } });
    this.toClient = new RawWriter(client, this.onClientDrain);
    this.toServer = new RawWriter(this.server, this.onServerDrain);
    client.setNoDelay(true);
    client.on('error', this.close);
    client.on('close', this.close);
    client.on('end', this.onClientEnd);
    this.server.on('error', this.close);
    this.server.on('close', this.close);
    this.server.on('end', this.onServerEnd);
    this.server.on('connect', this.onConnect);
  }

  onConnect = () => {
    if (!readInto(this.client, this.cr.next, this.onClientRead)) this.close();
  };

  onClientRead = (n, buf) => {
    this.toServer.write(buf.subarray(0, n));
    this.cr.afterRead(n, buf, this.toServer.busy);
    if (this.toServer.busy) this.client.pause();
    return true;
  };

  onServerRead = (n, buf) => {
    this.toClient.write(buf.subarray(0, n));
    this.sr.afterRead(n, buf, this.toClient.busy);
    if (this.toClient.busy) this.server.pause();
    return true;
  };

  onServerDrain = () => this.client.resume();
  onClientDrain = () => this.server.resume();
  onClientEnd = () => this.server.end();
  onServerEnd = () => this.client.end();
  close = () => {
    this.client.destroy();
    this.server.destroy();
  };
}

// ----------------------------------------------------------------------------------------- http

const HEAD_END = Buffer.from('\r\n\r\n');
const CL = Buffer.from('\r\ncontent-length:');
const COOKIES = upstreamPorts.map((_, i) => Buffer.from(`\r\nSet-Cookie: SERVERID=s${i + 1}; path=/\r\nCache-Control: private\r\n\r\n`));

/** Position of `\r\ncontent-length:` (ASCII case-insensitive) in buf[from, to), or -1. */
function findContentLength(buf, from, to) {
  const last = to - CL.length;
  outer: for (let i = from; i <= last; i++) {
    if (buf[i] !== 13) continue;
    for (let j = 1; j < CL.length; j++) if ((buf[i + j] | 0x20) !== CL[j] && buf[i + j] !== CL[j]) continue outer;
    return i;
  }
  return -1;
}

/** One server connection of an HttpRelay (per client connection and server). */
class HttpUpstream {
  constructor(owner, index) {
    this.owner = owner;
    this.index = index;
    this.reads = readBuffer();
    this.socket = net.connect({ port: upstreamPorts[index], host: '127.0.0.1', noDelay: true, onread: { buffer: this.reads.next, callback: this.onRead } });
    this.out = new RawWriter(this.socket, noop);
    this.socket.on('error', owner.close);
    this.socket.on('close', owner.close);
    /** Body bytes of the current response still to come; -1 while its head is expected. */
    this.left = -1;
  }

  onRead = (n, buf) => {
    const o = this.owner;
    if (this.left >= 0) {
      this.left -= n;
      o.toClient.write(buf.subarray(0, n));
      this.reads.afterRead(n, buf, o.toClient.busy);
      if (this.left <= 0) o.responseDone();
      return true;
    }
    const end = buf.indexOf(HEAD_END, 0);
    const at = end < 0 || end + 4 > n ? -1 : findContentLength(buf, 0, end + 2);
    if (at < 0) {
      o.close();
      return true;
    }
    let v = 0;
    for (let i = at + CL.length; i < end; i++) {
      const c = buf[i];
      if (c >= 48 && c <= 57) v = v * 10 + c - 48;
      else if (c === 13) break;
    }
    const cookie = COOKIES[this.index];
    // One write: the head without its last CRLF, the two headers, then the body bytes read so far.
    const body = n - (end + 4);
    const len = end + cookie.length + body;
    const out = o.outBuf(len);
    buf.copy(out, 0, 0, end);
    cookie.copy(out, end);
    buf.copy(out, end + cookie.length, end + 4, n);
    o.toClient.write(out.subarray(0, len));
    this.left = v - body;
    if (this.left <= 0) o.responseDone();
    return true;
  };
}

class HttpRelay {
  constructor(client) {
    this.client = client;
    this.reads = readBuffer();
    this.ups = new Array(upstreamPorts.length).fill(null);
    this.cur = null;
    this.out = null;
    this.toClient = new RawWriter(client, noop);
    client.setNoDelay(true);
    client.on('error', this.close);
    client.on('close', this.close);
    if (!readInto(client, this.reads.next, this.onRead)) this.close();
  }

  onRead = (n, buf) => {
    const end = buf.indexOf(HEAD_END, 0);
    if (end < 0 || end + 4 !== n || this.cur !== null) {
      this.close(); // split or pipelined heads, or a body: not the floor's traffic
      return true;
    }
    const i = next;
    next = (next + 1) % upstreamPorts.length;
    const up = this.ups[i] ?? (this.ups[i] = new HttpUpstream(this, i));
    this.cur = up;
    up.left = -1;
    up.out.write(buf.subarray(0, n));
    this.reads.afterRead(n, buf, up.out.busy);
    return true;
  };

  /** A buffer of at least `len` bytes for a response head: the connection's own unless still queued. */
  outBuf(len) {
    if (this.out === null || this.toClient.busy || this.out.length < len) this.out = Buffer.allocUnsafe(Math.max(len, 4096));
    return this.out;
  }

  responseDone() {
    this.cur = null;
  }

  close = () => {
    this.client.destroy();
    for (const u of this.ups) if (u !== null) u.socket.destroy();
  };
}

const listener = net.createServer({ noDelay: true, pauseOnConnect: true }, mode === 'tcp' ? (c) => new TcpRelay(c) : (c) => new HttpRelay(c));
listener.listen(listenPort, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
