/**
 * Hostile-input fuzzer for the peers port. `startFuzzRig` runs the target PeersService in a child
 * process (test/fuzz-target.mjs, from the build in dist/) plus a legitimate peer in this process;
 * `runPeersFuzz` throws seeded cases at the target's port and reports every outcome that breaks a
 * promise of docs/PEERS-PROTOCOL.md as a violation instead of throwing, so one run lists them all.
 *
 * Case inputs depend only on (seed, case index), never on timing or concurrency: a violation's
 * `case` number plus the seed reproduces its input.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { Packr } from 'msgpackr';
import { pino } from 'pino';
import WebSocket from 'ws';
import { StickTable, TicketKeyRing } from '@stickmesh/core';
import { decode, encode, PEERS_PATH, PROTO, type Msg } from '../src/codec.js';
import { computeMac } from '../src/handshake.js';
import { boxAad, deriveBoxKey, seal } from '../src/ticket-box.js';
import { PeersService } from '../src/service.js';
import { FakeCounters } from './fake-counters.js';
import { rng } from '../../../test/helpers/rng.js';

export const SECRET = 'fuzz-secret';
const CLUSTER = 'fuzz';
/** Counters schema of t1 on the target and the legitimate peer (fake counters of width 2, see fuzz-target.mjs). */
export const COUNTER_SCHEMA = 'fuzz_cnt,fuzz_cur';
const SCHEMA = [{ id: 't1', type: 'string', keyLen: 32, counters: COUNTER_SCHEMA }];
/** Target limits, small so that floods and oversized frames are cheap to produce. */
export const TARGET_LIMITS = { maxUnauthenticated: 16, maxFrameBytes: 64 * 1024, handshakeTimeoutMs: 1000 };
/**
 * This fuzzer sends every case from 127.0.0.1, like the legitimate peer: the per-source bounds and
 * the failed-handshake budget (exercised by test/fuzz/peers-http.fuzz.test.ts) are opened wide here
 * so that each case meets the check it targets.
 */
export const TARGET_SOURCE_LIMITS = { maxRawConnections: 10_000, maxRawConnectionsPerSource: 10_000, authFailureBurst: 1e9, authFailuresPerSecond: 1e9 };
/** Longest a case waits for the target to react; a well-behaved target answers in milliseconds. */
const REACT_MS = 2000;


class Gen {
  constructor(readonly r: () => number) {}
  int(n: number): number {
    return Math.floor(this.r() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
  str(max = 40): string {
    const n = this.int(max + 1);
    let s = '';
    for (let i = 0; i < n; i++) s += String.fromCharCode(this.r() < 0.9 ? 32 + this.int(95) : this.int(0xd800));
    return s;
  }
  /** A number from the edges of every numeric type the decoder might meet. */
  num(): number {
    return this.pick([0, 1, -1, 255, 65535, 2 ** 31, 2 ** 32, 2 ** 53 - 1, 2 ** 53 + 2, -(2 ** 53), 1.5, NaN, Infinity, -Infinity, Date.now(), this.int(1e9)]);
  }
  value(depth = 0): unknown {
    const k = this.int(depth > 3 ? 6 : 9);
    switch (k) {
      case 0: return null;
      case 1: return this.r() < 0.5;
      case 2: return this.num();
      case 3: return this.str(this.r() < 0.05 ? 3000 : 40);
      case 4: return this.bytes(this.int(this.r() < 0.1 ? 200 : 40));
      case 5: return undefined;
      case 6: return Array.from({ length: this.int(6) }, () => this.value(depth + 1));
      default: {
        const o: Record<string, unknown> = {};
        // defineProperty: a '__proto__' key becomes an own property (sent as such), not our prototype.
        for (let i = this.int(6); i > 0; i--) {
          const k = this.pick(['t', 'table', 'seq', 'updates', '__proto__', 'constructor', 'epoch', this.str(8)]);
          Object.defineProperty(o, k, { value: this.value(depth + 1), enumerable: true, writable: true, configurable: true });
        }
        return o;
      }
    }
  }
  /** A field: usually well-typed and plausible, sometimes anything. */
  field<T>(good: () => T): unknown {
    return this.r() < 0.75 ? good() : this.value(2);
  }
  update(): unknown {
    if (this.r() < 0.1) return this.value(2);
    return [
      this.field(() => `k${this.int(50)}`), this.field(() => this.pick(['s1', 's2', ''])), this.field(() => this.int(100_000)),
      this.field(() => Date.now() + this.int(1e6)), this.field(() => this.int(70_000)), this.field(() => this.pick(['a', 'a0', 'b', 'zz'])),
      this.field(() => this.int(10)), this.field(() => this.int(10)),
    ].slice(0, this.r() < 0.9 ? 8 : this.int(9));
  }
  /** One share `[key, ...v]` of `width` values: usually plausible, sometimes anything. */
  share(width: number): unknown {
    if (this.r() < 0.1) return this.value(2);
    return [this.field(() => (this.r() < 0.05 ? this.str(2000) : `k${this.int(50)}`)), ...Array.from({ length: width }, () => (this.r() < 0.9 ? this.int(1000) : this.field(() => this.num())))];
  }
  /**
   * A key list (the plaintext of a `tk` box) with at least one defect the decoder must refuse, so
   * that even sealed with the right key it never installs a key.
   */
  badKeyList(): unknown {
    const entry = (): unknown[] => [this.bytes(48), this.int(10), Date.now() - this.int(1000), this.pick(['a', 'a0', 'b'])];
    const list = Array.from({ length: 1 + this.int(3) }, entry);
    const e = this.pick(list);
    switch (this.int(9)) {
      case 0: return this.value(2) ?? {}; // anything but a list, mostly
      case 1: return Array.from({ length: 9 + this.int(20) }, entry); // too many keys
      case 2: e[0] = this.bytes(this.pick([0, 16, 47, 49, 80])); break;
      case 3: e[1] = this.pick([-1, 1.5, NaN, Infinity, 2 ** 53 + 2, '1', null]); break;
      case 4: e[2] = this.pick([-1, 0.5, NaN, -Infinity, 2 ** 60, 'now', null]); break;
      case 5: e[3] = this.pick(['', 'x'.repeat(256), 7, null, this.bytes(4)]); break;
      case 6: e.length = this.int(4); break;
      case 7: e.push(this.value(2)); break;
      default: list[this.int(list.length)] = this.pick([null, 'k', 5, { key: this.bytes(48) }, this.bytes(48)]); break;
    }
    return list;
  }
  /** A message of a known (or unknown) type with plausible-to-hostile fields. */
  message(type?: string): Record<string, unknown> {
    const t = type ?? this.pick(['hello', 'auth', 'welcome', 'resume', 'u', 'resync', 'resync-done', 'ack', 'digest', 'repair', 'repair-u', 'repair-end', 'c', 'c', 'c', 'c', 'tk', 'nope', '']);
    const table = () => this.pick(['t1', 't1', 'other', '']);
    const m: Record<string, unknown> = { t: this.field(() => t) };
    const put = (k: string, good: () => unknown) => {
      if (this.r() < 0.95) m[k] = this.field(good);
    };
    switch (t) {
      case 'hello': put('proto', () => PROTO); put('cluster', () => CLUSTER); put('node', () => 'b'); put('nonce', () => this.bytes(32)); break;
      case 'auth':
        put('proto', () => PROTO); put('cluster', () => CLUSTER); put('node', () => this.pick(['a', 'a0', 'zz'])); put('nonce2', () => this.bytes(32));
        put('mac', () => this.bytes(32)); put('tables', () => SCHEMA); put('caps', () => ['ae', 'ctr']); break;
      case 'welcome': put('mac2', () => this.bytes(32)); put('tables', () => SCHEMA); break;
      case 'resume': case 'resync-done': put('table', table); put('epoch', () => this.str(16)); put('seq', () => this.int(100)); break;
      case 'u': case 'resync': case 'repair-u':
        put('table', table); put('seq', () => this.int(100));
        put('updates', () => Array.from({ length: this.int(this.r() < 0.05 ? 3000 : 6) }, () => this.update())); break;
      case 'ack': put('table', table); put('seq', () => this.int(100)); break;
      case 'digest': put('table', table); put('digests', () => this.bytes(this.r() < 0.8 ? 2048 : this.int(4096))); break;
      case 'repair': put('table', table); put('buckets', () => Array.from({ length: this.int(5) }, () => this.int(300))); put('differing', () => this.int(300)); break;
      case 'repair-end': put('table', table); break;
      // Never sealed with the cluster's key: the box must fail to open (or the frame to decode).
      case 'tk': put('seq', () => 1 + this.int(3)); put('iv', () => this.bytes(this.r() < 0.9 ? 12 : this.int(20))); put('box', () => this.bytes(this.r() < 0.9 ? 16 + this.int(200) : this.int(5000))); break;
      case 'c': {
        // Mostly the table's width (2), sometimes another one, a huge count, or a hostile share.
        const width = this.r() < 0.8 ? 2 : this.int(5);
        put('table', () => 't1'); put('wall', () => this.pick([0, Date.now(), Date.now() + 1e9, 1]));
        put('shares', () => Array.from({ length: this.int(this.r() < 0.05 ? 5000 : 6) }, () => this.share(width))); break;
      }
    }
    return m;
  }
}

const packr = new Packr({ useRecords: false });
const MSGPACK_BOMBS = [
  [0xdd, 0xff, 0xff, 0xff, 0xff], // array32 of 2^32-1 elements, none present
  [0xdf, 0xff, 0xff, 0xff, 0xff], // map32, same
  [0xdb, 0xff, 0xff, 0xff, 0xf0, 0x61], // str32 claiming 4 GiB
  [0xc6, 0x7f, 0xff, 0xff, 0xff], // bin32 claiming 2 GiB
  [0xc9, 0xff, 0xff, 0xff, 0xff, 0x01], // ext32
  [0xd4, 0xff, 0x00], // fixext1 with type -1 (timestamp)
  [0xc1], // never-used byte
];

/** One hostile frame body (binary unless `text`). */
function frame(g: Gen): { data: Buffer | string; text?: boolean } {
  const k = g.int(10);
  if (k === 0) return { data: g.bytes(g.int(300)) };
  if (k === 1) return { data: g.str(100), text: true };
  if (k === 2) return { data: Buffer.from(g.pick(MSGPACK_BOMBS)) };
  if (k === 3) return { data: Buffer.alloc(1 + g.int(60_000), 0x91) }; // deeply nested arrays
  if (k === 4) return { data: packr.pack(g.value()) };
  const buf = packr.pack(g.message());
  if (k === 5) return { data: buf.subarray(0, g.int(buf.length)) }; // truncated
  if (k === 6) {
    const m = Buffer.from(buf); // a few flipped bytes
    for (let i = 1 + g.int(3); i > 0 && m.length > 0; i--) m[g.int(m.length)] = g.int(256);
    return { data: m };
  }
  return { data: buf };
}

interface Opened {
  ws: WebSocket;
  hello?: Buffer;
  rejected?: number;
  error?: string;
}

/** Opens a WebSocket to the target and waits for its hello (or a refusal of the upgrade). */
function open(port: number): Promise<Opened> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${PEERS_PATH}`, { perMessageDeflate: false, maxPayload: 16 * 1024 * 1024 });
    const done = (o: Omit<Opened, 'ws'>) => {
      clearTimeout(timer);
      resolve({ ws, ...o });
    };
    const timer = setTimeout(() => done({ error: 'no hello' }), REACT_MS);
    ws.once('message', (d: Buffer) => done({ hello: d }));
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      done({ rejected: res.statusCode ?? 0 });
      ws.terminate();
    });
    ws.on('error', (e) => done({ error: e.message }));
  });
}

/** Resolves with the close code/reason the target sent, 'timeout', or 'gone' for a dropped socket. */
function closed(ws: WebSocket, ms = REACT_MS): Promise<{ code: number; reason: string } | 'timeout'> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve({ code: 1006, reason: '' });
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('timeout'), ms);
    ws.once('close', (code, reason) => {
      clearTimeout(timer);
      resolve({ code, reason: reason.toString() });
    });
  });
}

function send(ws: WebSocket, f: { data: Buffer | string; text?: boolean }): void {
  if (ws.readyState !== WebSocket.OPEN) return;
  ws.send(f.data, { binary: !f.text });
}

interface Auth {
  node: string;
  cluster?: string;
  proto?: number;
  secret?: string;
  tables?: unknown;
}

/** The auth message answering `hello` (valid for a0 with the right secret unless overridden). */
function authFor(hello: Buffer, a: Auth, nonce2: Buffer = randomBytes(32)): Buffer {
  const h = decode(hello);
  if (h.t !== 'hello') throw new Error('first frame is not hello');
  const mac = computeMac(a.secret ?? SECRET, 'c', h.nonce, nonce2, a.node, 'b', a.cluster ?? CLUSTER);
  return packr.pack({ t: 'auth', proto: a.proto ?? PROTO, cluster: a.cluster ?? CLUSTER, node: a.node, nonce2, mac, tables: a.tables ?? SCHEMA, caps: ['ae', 'ctr', 'tk'] });
}

/**
 * Authenticates as a0; resolves with the socket once the welcome arrived (undefined if refused) and
 * the session's id (server nonce | client nonce, for sealing `tk` boxes).
 */
async function authenticated(port: number): Promise<{ ws: WebSocket; auth: Buffer; sid: Buffer } | { error: string }> {
  const o = await open(port);
  if (!o.hello) {
    o.ws.terminate();
    return { error: o.rejected ? `upgrade ${o.rejected}` : (o.error ?? 'no hello') };
  }
  const nonce2 = randomBytes(32);
  const h = decode(o.hello);
  if (h.t !== 'hello') throw new Error('first frame is not hello');
  const sid = Buffer.concat([h.nonce, nonce2]);
  const auth = authFor(o.hello, { node: 'a0' }, nonce2);
  const welcome = new Promise<Msg | undefined>((resolve) => {
    const timer = setTimeout(() => resolve(undefined), REACT_MS);
    o.ws.once('message', (d: Buffer) => {
      clearTimeout(timer);
      resolve(decode(d));
    });
  });
  o.ws.send(auth);
  const w = await welcome;
  if (w?.t !== 'welcome') {
    o.ws.terminate();
    return { error: `expected welcome, got ${w?.t ?? 'nothing'}` };
  }
  return { ws: o.ws, auth, sid };
}

const BOX_KEY = deriveBoxKey(SECRET);

/** A `tk` sealed for a0's session with the cluster's key (it opens), whose key list is defective. */
function sealedBadTk(g: Gen, sid: Buffer): Buffer {
  const seq = 1 + g.int(3);
  const { iv, box } = seal(BOX_KEY, boxAad('a0', 'b', CLUSTER, sid, seq), packr.pack(g.badKeyList()));
  return encode({ t: 'tk', seq, iv, box });
}

export type Kind = 'tcp-random' | 'ws-raw' | 'pre-frames' | 'bad-auth' | 'replay' | 'oversize' | 'post-frames' | 'post-oversize';
export const UNAUTH_KINDS: Kind[] = ['tcp-random', 'ws-raw', 'pre-frames', 'bad-auth', 'replay', 'oversize'];
export const ALL_KINDS: Kind[] = [...UNAUTH_KINDS, 'post-frames', 'post-frames', 'post-oversize'];

export interface Violation {
  case: number;
  kind: string;
  detail: string;
}

/** Runs one case; returns a violation detail, or undefined if the target behaved as documented. */
async function runCase(kind: Kind, g: Gen, port: number, replayAuth: Buffer): Promise<string | undefined> {
  switch (kind) {
    case 'tcp-random': {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => {});
      const prefix = g.r() < 0.3 ? `${g.pick(['GET', 'POST', 'PRI', 'G\0T'])} ${g.pick([PEERS_PATH, '/', g.str(20)])} HTTP/1.1\r\n${g.r() < 0.5 ? 'Upgrade: websocket\r\nConnection: Upgrade\r\n' : ''}` : '';
      s.end(Buffer.concat([Buffer.from(prefix, 'latin1'), g.bytes(g.int(2048))]));
      await new Promise<void>((r) => {
        const t = setTimeout(() => r(), 300);
        s.once('close', () => (clearTimeout(t), r()));
      });
      s.destroy();
      return;
    }
    case 'ws-raw': {
      // A real upgrade, then bytes that are not valid WebSocket framing (bad opcodes, unmasked, RSV bits...).
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => {});
      const got101 = new Promise<boolean>((r) => {
        const t = setTimeout(() => r(false), REACT_MS);
        s.once('data', (d: Buffer) => (clearTimeout(t), r(d.toString('latin1').startsWith('HTTP/1.1 101'))));
      });
      s.write(`GET ${PEERS_PATH} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n\r\n`);
      const ok = await got101;
      if (ok) {
        // No verdict on the close itself: a random prefix may be a valid partial frame still waiting
        // for bytes (the handshake deadline ends those). The promise checked is survival.
        const gone = new Promise<void>((r) => {
          const t = setTimeout(() => r(), 200);
          s.once('close', () => (clearTimeout(t), r()));
        });
        s.write(g.bytes(1 + g.int(512)));
        if (g.r() < 0.5) s.end();
        await gone;
      }
      s.destroy();
      return;
    }
    case 'pre-frames':
    case 'oversize': {
      const o = await open(port);
      if (!o.hello) {
        o.ws.terminate();
        return o.rejected === 503 ? undefined : `no hello: ${o.error ?? o.rejected}`;
      }
      if (kind === 'oversize') send(o.ws, { data: g.bytes(TARGET_LIMITS.maxFrameBytes + 1 + g.int(4096)) });
      else for (let i = 1 + g.int(3); i > 0; i--) send(o.ws, frame(g));
      const c = await closed(o.ws);
      o.ws.terminate();
      if (c === 'timeout') return 'hostile frame before auth did not close the connection';
      if (kind === 'oversize' && c.code !== 1009) return `oversized frame: close ${c.code}, expected 1009`;
      if (kind === 'pre-frames' && c.code !== 1008 && c.code !== 1009) return `close ${c.code} ${c.reason}, expected 1008`;
      return;
    }
    case 'bad-auth': {
      const o = await open(port);
      if (!o.hello) {
        o.ws.terminate();
        return o.rejected === 503 ? undefined : `no hello: ${o.error ?? o.rejected}`;
      }
      const variants: [Auth, string][] = [
        [{ node: 'a0', secret: 'wrong' }, 'bad-secret'],
        [{ node: 'a0', secret: '' }, 'bad-secret'],
        [{ node: 'a0', cluster: 'other' }, 'wrong-cluster'],
        [{ node: 'mallory' }, 'unknown-peer'],
        [{ node: 'a0', proto: 2 }, 'proto-mismatch'],
        [{ node: 'a0', tables: [{ id: 't1', type: 'ip', keyLen: 32 }] }, 'table-mismatch'],
        [{ node: 'a0', tables: [] }, 'unknown-table'],
      ];
      const [a, want] = g.pick(variants);
      o.ws.send(authFor(o.hello, a));
      const c = await closed(o.ws);
      o.ws.terminate();
      if (c === 'timeout') return `bad auth (${want}) not refused`;
      return c.code === 1008 && c.reason === want ? undefined : `bad auth: close ${c.code} '${c.reason}', expected 1008 '${want}'`;
    }
    case 'replay': {
      // A recorded valid auth answers an old nonce: on a new connection it must be refused.
      const o = await open(port);
      if (!o.hello) {
        o.ws.terminate();
        return o.rejected === 503 ? undefined : `no hello: ${o.error ?? o.rejected}`;
      }
      o.ws.send(replayAuth);
      const c = await closed(o.ws);
      o.ws.terminate();
      if (c === 'timeout') return 'replayed auth was accepted (no close)';
      return c.code === 1008 && c.reason === 'bad-secret' ? undefined : `replayed auth: close ${c.code} '${c.reason}'`;
    }
    case 'post-frames':
    case 'post-oversize': {
      const a = await authenticated(port);
      if ('error' in a) return a.error === 'upgrade 503' ? undefined : `legit a0 auth failed: ${a.error}`;
      if (kind === 'post-oversize') {
        send(a.ws, { data: g.bytes(TARGET_LIMITS.maxFrameBytes + 1 + g.int(4096)) });
        const c = await closed(a.ws);
        a.ws.terminate();
        // 4000: a concurrent a0 case replaced this session first (newest session wins), also documented.
        if (c === 'timeout' || (c.code !== 1009 && c.code !== 4000)) return `oversized frame in session: ${c === 'timeout' ? 'no close' : `close ${c.code}`}, expected 1009`;
        return;
      }
      // The first frame decides most sessions (a violation closes them): some cases aim at `tk`
      // (sealed with the cluster's key around a defective list, or boxes that do not open) and at `c`.
      for (let i = 1 + g.int(4); i > 0; i--) {
        const aim = g.r();
        send(a.ws, aim < 0.1 ? { data: sealedBadTk(g, a.sid) } : aim < 0.2 ? { data: packr.pack(g.message('tk')) } : aim < 0.35 ? { data: packr.pack(g.message('c')) } : frame(g));
      }
      // A frame may happen to be valid (then the session simply goes on): end it ourselves shortly after.
      await closed(a.ws, 20);
      a.ws.terminate();
      return;
    }
  }
}

/**
 * Opens `n` connections at once and leaves them in the handshake. Returns how many got past the
 * upgrade; the target promises at most maxUnauthenticated (the rest get 503).
 */
export async function flood(port: number, n: number): Promise<{ opened: number; rejected: number }> {
  const all = await Promise.all(Array.from({ length: n }, () => open(port)));
  const opened = all.filter((o) => o.hello).length;
  const rejected = all.filter((o) => o.rejected === 503).length;
  await Promise.all(all.map((o) => {
    const c = closed(o.ws, 500);
    o.ws.terminate();
    return c;
  }));
  return { opened, rejected };
}

/** The target child process, driven over IPC (one outstanding request per id; ids never reused). */
export class Target {
  port = 0;
  exited: string | undefined;
  private readonly child: ChildProcess;
  private readonly waiting = new Map<number, (m: Record<string, unknown>) => void>();
  private nextId = 1;

  /** `extra`: PeersServiceOptions (JSON) for the target, over the defaults of this fuzzer. */
  constructor(extra: Record<string, unknown> = {}) {
    const script = fileURLToPath(new URL('./fuzz-target.mjs', import.meta.url));
    this.child = fork(script, [JSON.stringify({ secret: SECRET, ...TARGET_LIMITS, ...TARGET_SOURCE_LIMITS, ...extra })], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('exit', (code, sig) => {
      this.exited = `exited code ${code} signal ${sig}`;
      for (const w of this.waiting.values()) w({ error: this.exited });
      this.waiting.clear();
    });
    this.child.on('message', (m: Record<string, unknown>) => {
      const w = this.waiting.get(m.id as number);
      this.waiting.delete(m.id as number);
      w?.(m);
    });
  }

  async started(): Promise<void> {
    const m = await new Promise<Record<string, unknown>>((r) => this.waiting.set(0, r));
    if (typeof m.port !== 'number') throw new Error(`fuzz target did not start: ${String(m.error)}`);
    this.port = m.port;
  }

  /** One request; rejects if the process is gone or does not answer within 10 s. */
  rpc(cmd: string, args: Record<string, unknown> = {}): Promise<Record<string, any>> {
    if (this.exited) return Promise.reject(new Error(`fuzz target ${this.exited}`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`fuzz target did not answer '${cmd}'`));
      }, 10_000);
      this.waiting.set(id, (m) => {
        clearTimeout(t);
        if (m.error) reject(new Error(String(m.error)));
        else resolve(m);
      });
      this.child.send({ id, cmd, ...args });
    });
  }

  get alive(): boolean {
    return !this.exited && this.child.exitCode === null;
  }

  async stop(): Promise<void> {
    if (!this.alive) return;
    const gone = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    await gone;
  }
}

/** The target plus a legitimate peer 'a' (this process) that dials it and replicates both ways. */
export interface FuzzRig {
  target: Target;
  legit: PeersService;
  legitTable: StickTable;
  legitCounters: FakeCounters;
  /** The legitimate peer's TLS ticket keys (shared with the target's ring). */
  legitRing: TicketKeyRing;
  /** Round trip: a write on each side reaches the other within `ms`. Throws otherwise. */
  checkReplication(tag: string, ms?: number): Promise<void>;
  stop(): Promise<void>;
}

/** `targetOpts`: PeersServiceOptions (JSON) for the target over this fuzzer's defaults. */
export async function startFuzzRig(targetOpts: Record<string, unknown> = {}): Promise<FuzzRig> {
  const target = new Target(targetOpts);
  await target.started();
  const legitTable = new StickTable(
    { id: 't1', name: 't1', type: 'string', keyLen: 32, size: 10_000, expire: 0, store: [], srvkey: 'name', loc: { file: 'fuzz', line: 1 } },
    { node: 'a' },
  );
  const legitCounters = new FakeCounters('a', 't1', COUNTER_SCHEMA);
  const legitRing = new TicketKeyRing({ node: 'a' });
  legitRing.start();
  const legit = new PeersService({
    node: 'a', cluster: CLUSTER, secret: SECRET, bind: { host: '127.0.0.1', port: 0 },
    peers: [{ name: 'b', host: '127.0.0.1', port: target.port }], tables: [legitTable], counters: [legitCounters], ticketKeys: legitRing, logger: pino({ level: 'silent' }),
    heartbeatMs: 200, deadAfterMs: 3000, antiEntropyMs: 200,
  });
  await legit.start();
  const until = async (what: string, ms: number, f: () => Promise<boolean> | boolean) => {
    const end = Date.now() + ms;
    while (!(await f())) {
      if (Date.now() > end) throw new Error(`timed out: ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return {
    target, legit, legitTable, legitCounters, legitRing,
    async checkReplication(tag, ms = 5000) {
      legitTable.setLocal(`from-a-${tag}`, 'sa');
      legit.notify();
      await until(`a -> b (${tag})`, ms, async () => (await target.rpc('get', { key: `from-a-${tag}` })).server === 'sa');
      await target.rpc('set', { key: `from-b-${tag}`, server: 'sb' });
      await until(`b -> a (${tag})`, ms, () => legitTable.lookup(`from-b-${tag}`) === 'sb');
      // Counter shares both ways: a's share reaches b's sum, b's share reaches a's.
      legitCounters.add(`ctr-${tag}`, 3);
      await target.rpc('counter-add', { key: `ctr-${tag}`, n: 4 });
      await until(`counters a <-> b (${tag})`, ms, async () =>
        legitCounters.read(`ctr-${tag}`) === 7 && (await target.rpc('counter-read', { key: `ctr-${tag}` })).sum === 7);
    },
    async stop() {
      legitRing.stop();
      await legit.stop();
      await target.stop();
    },
  };
}

export interface FuzzReport {
  cases: number;
  byKind: Record<string, number>;
  violations: Violation[];
  floods: { opened: number; rejected: number }[];
  ms: number;
}

/**
 * Runs `cases` cases from `kinds` (uniformly, by seeded choice) with `concurrency` in flight, plus a
 * flood of 3 x maxUnauthenticated connections every `floodEvery` cases (run alone, so the bound it
 * checks is not disturbed by other cases). Violations are collected, at most 50 kept (the first ones).
 */
export async function runPeersFuzz(
  rig: FuzzRig,
  o: { seed: number; cases: number; first?: number; kinds?: Kind[]; concurrency?: number; floodEvery?: number },
): Promise<FuzzReport> {
  const t0 = Date.now();
  const kinds = o.kinds ?? ALL_KINDS;
  const first = o.first ?? 0;
  const concurrency = o.concurrency ?? 8;
  const floodEvery = o.floodEvery ?? 1000;
  const port = rig.target.port;
  const report: FuzzReport = { cases: 0, byKind: {}, violations: [], floods: [], ms: 0 };
  const violation = (c: number, kind: string, detail: string) => {
    if (report.violations.length < 50) report.violations.push({ case: c, kind, detail });
  };
  // A valid auth captured from a real exchange, for the replay cases.
  const captured = await authenticated(port);
  if ('error' in captured) throw new Error(`cannot authenticate as a0: ${captured.error}`);
  captured.ws.terminate();

  for (let start = first; start < first + o.cases; start += floodEvery) {
    const end = Math.min(first + o.cases, start + floodEvery);
    let next = start;
    const worker = async () => {
      while (next < end && rig.target.alive) {
        const c = next++;
        const g = new Gen(rng((o.seed ^ Math.imul(c + 1, 0x9e3779b1)) >>> 0));
        const kind = g.pick(kinds);
        report.byKind[kind] = (report.byKind[kind] ?? 0) + 1;
        report.cases++;
        try {
          const v = await runCase(kind, g, port, captured.auth);
          if (v) violation(c, kind, v);
        } catch (err) {
          violation(c, kind, `fuzzer error: ${(err as Error).message}`);
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    if (!rig.target.alive) {
      violation(next, 'process', `target ${rig.target.exited}`);
      break;
    }
    const f = await flood(port, TARGET_LIMITS.maxUnauthenticated * 3);
    report.floods.push(f);
    if (f.opened > TARGET_LIMITS.maxUnauthenticated) violation(end, 'flood', `${f.opened} unauthenticated connections accepted, bound ${TARGET_LIMITS.maxUnauthenticated}`);
    if (f.opened + f.rejected !== TARGET_LIMITS.maxUnauthenticated * 3) violation(end, 'flood', `flood: ${f.opened} opened + ${f.rejected} refused of ${TARGET_LIMITS.maxUnauthenticated * 3}`);
  }
  report.ms = Date.now() - t0;
  return report;
}

/**
 * Waits until the target holds at most `max` connections (the legit session, maybe a0) and no
 * unauthenticated socket (the last hostile ones close at their timeouts, later on a loaded machine),
 * or until `ms` pass, and returns its state.
 */
export async function settle(rig: FuzzRig, max = 2, ms = 10_000): Promise<Record<string, any>> {
  const end = Date.now() + ms;
  for (;;) {
    const s = await rig.target.rpc('state');
    if ((s.conns <= max && !s.raw) || Date.now() > end) return s;
    await new Promise((r) => setTimeout(r, 100));
  }
}
