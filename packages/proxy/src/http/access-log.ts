/**
 * The access log line and the HTTP metrics of one exchange, written when it ends (endExchange in
 * client-conn.ts), HAProxy's `option httplog` fields under their HAProxy names. Reads the
 * connection; allocates only when the log level takes the line.
 *
 * The line is exactly what pino's `logger.info(fields, 'request')` would write: same keys, same
 * order, undefined fields left out, strings escaped as pino escapes them (`jsonString`). A node's
 * logger (a LogSink behind it) gets it encoded straight into the sink's buffer with as few
 * JavaScript stores as possible, since one store of a byte costs about as much as a native copy
 * of a hundred (profiled: the byte-by-byte encoder spent ~0.8 of its ~2.2 µs per line copying
 * constant keys):
 * - a key with a value from a small set, or several such fields in a row, is one pre-encoded
 *   byte segment copied whole: client address (with the next key), frontend+backend+server
 *   names (`namesSegment`), method (with the next key), version+ssl_fc(+SNI)+`status` key
 *   (`VERSION_STATUS_BYTES`, `S_SNI_STATUS`), and the line's end in its common form, no retry,
 *   redispatch, rule or server error (`TAILS`: per decided_by, stick and termination state);
 * - the keys between numbers are written four bytes per store (`putKey`), numbers below 1000
 *   with one store from a digit table (`putNum`), the URL byte by byte when short and plain, or
 *   checked by a regular expression and copied natively when long.
 * Nothing is kept per connection: the bench's `balance roundrobin` changes the server on every
 * request of a connection, and a WeakMap entry per connection cost more than it saved.
 * Any other logger gets the line as JSON text framed by `writeRawInfo`; a logger whose options
 * would change pino's output (serializers, mixins, redaction...) gets the object through
 * `logger.info`.
 */
import { loopNow } from '@stickmesh/core';
import pino, { type Logger } from 'pino';
import type { Exchange } from './exchange.js';
import { metrics } from '../metrics.js';
import { rawInfoTarget, writeRawInfo, LOG_CHUNK_BYTES, type RawInfoTarget } from '../log.js';

const KEYS = [
  'client_ip', 'client_port', 'frontend', 'backend', 'server', 'method', 'uri', 'http_version', 'ssl_fc', 'ssl_fc_sni', 'status', 'bytes_read', 'bytes_uploaded',
  'TR', 'Tw', 'Tc', 'Tr', 'Ta', 'retries', 'redispatched', 'decided_by', 'stick', 'rule', 'server_error', 'termination_state',
] as const;
const MSG = ',"msg":"request"';

/** `s` as UTF-8 in memory of its own (a slice of Buffer's shared pool would keep the whole slab alive). */
function ownBytes(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'utf8'));
}

const NODE_MAJOR = Number(process.versions.node.split('.')[0]);

/**
 * `s` as a JSON string, as pino writes a string value: before Node 25, `"` and `\` escaped with a
 * backslash and every other character (lone surrogates included) as it is, unless `s` is longer
 * than 100 units or has a control character, when it is `JSON.stringify(s)`; from Node 25 on,
 * always `JSON.stringify(s)`.
 */
export function jsonString(s: string): string {
  if (s.length > 100 || NODE_MAJOR >= 25) return JSON.stringify(s);
  let plain = true;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 32) return JSON.stringify(s);
    if (c === 34 || c === 92) plain = false;
  }
  return plain ? `"${s}"` : `"${s.replace(/["\\]/g, '\\$&')}"`;
}

/** Most values a SegmentCache holds; at the bound it is emptied and fills again from new lines. */
export const SEGMENT_CACHE_MAX = 1024;
/** Longest value (UTF-16 units) a SegmentCache keeps; longer ones are encoded for each line. */
export const SEGMENT_VALUE_MAX = 64;

/**
 * `<before><value as jsonString><after>` as UTF-8 bytes, per value, for a field whose values come
 * from a small set (config names, methods, error codes). Holds at most SEGMENT_CACHE_MAX values of
 * at most SEGMENT_VALUE_MAX units (a client can send many methods or SNI names: beyond the bound
 * the cache is emptied, so it costs one allocation per such line and never grows).
 */
class SegmentCache {
  static readonly all: SegmentCache[] = [];
  readonly map = new Map<string, Uint8Array>();
  constructor(
    private readonly before: string,
    private readonly after: string,
  ) {
    SegmentCache.all.push(this);
  }

  /** The bytes for `s`: cached when `s` is short, built for this line otherwise. */
  get(s: string): Uint8Array {
    let seg = this.map.get(s);
    if (seg !== undefined) return seg;
    seg = ownBytes(this.before + jsonString(s) + this.after);
    if (s.length <= SEGMENT_VALUE_MAX) {
      if (this.map.size >= SEGMENT_CACHE_MAX) this.map.clear();
      this.map.set(s, seg);
    }
    return seg;
  }
}

const S_CLIENT_IP = new SegmentCache(',"client_ip":', ',"client_port":');
const S_METHOD = new SegmentCache(',"method":', ',"uri":');
const S_SNI_STATUS = new SegmentCache(',"ssl_fc_sni":', ',"status":');
const S_DECIDED_BY = new SegmentCache(',"decided_by":', '');
const S_STICK = new SegmentCache(',"stick":', '');
const S_RULE = new SegmentCache(',"rule":', '');
const S_SERVER_ERROR = new SegmentCache(',"server_error":', '');
const S_TERM = new SegmentCache(',"termination_state":', '');
/**
 * `,"http_version":"HTTP/1.<minor>","ssl_fc":<tls>` for minor 0 and 1 (`[minor * 2 + tls]`), and
 * the same followed by `,"status":` (a line without SNI).
 */
const VERSION = [0, 1, 2, 3].map((i) => `,"http_version":"HTTP/1.${i >> 1}","ssl_fc":${(i & 1) === 1}`);
const VERSION_BYTES = VERSION.map(ownBytes);
const VERSION_STATUS_BYTES = VERSION.map((v) => ownBytes(`${v},"status":`));

/** Most (frontend, backend, server) name triples `names` holds; at the bound it is emptied. */
export const NAMES_CACHE_MAX = 1024;
let namesCount = 0;
/** `,"frontend":...,"backend":...,"server":...` by frontend, backend and server name (config names). */
const names = new Map<string, Map<string, Map<string, Uint8Array>>>();

function namesSegment(fe: string, backend: string, server: string): Uint8Array {
  let seg = names.get(fe)?.get(backend)?.get(server);
  if (seg !== undefined) return seg;
  seg = ownBytes(`,"frontend":${jsonString(fe)},"backend":${jsonString(backend)},"server":${jsonString(server)}`);
  if (fe.length > SEGMENT_VALUE_MAX || backend.length > SEGMENT_VALUE_MAX || server.length > SEGMENT_VALUE_MAX) return seg;
  if (namesCount >= NAMES_CACHE_MAX) {
    names.clear();
    namesCount = 0;
  }
  let byBackend = names.get(fe);
  if (byBackend === undefined) names.set(fe, (byBackend = new Map()));
  let byServer = byBackend.get(backend);
  if (byServer === undefined) byBackend.set(backend, (byServer = new Map()));
  byServer.set(server, seg);
  namesCount++;
  return seg;
}

const REDISPATCHED_FALSE = ownBytes(',"redispatched":false');
const REDISPATCHED_TRUE = ownBytes(',"redispatched":true');
const END = ownBytes(`${MSG}}\n`);

/**
 * A constant fragment of at most KEY_MAX bytes, as five little-endian 32-bit words (padded with
 * spaces): `putKey` writes it with five stores and no loop.
 */
interface Key {
  readonly w0: number;
  readonly w1: number;
  readonly w2: number;
  readonly w3: number;
  readonly w4: number;
  readonly len: number;
}
/** Longest Key; also the most bytes `putKey` writes. */
const KEY_MAX = 20;

function key(s: string): Key {
  const bytes = Buffer.alloc(KEY_MAX, 0x20);
  bytes.write(s, 'latin1');
  const w = (i: number): number => bytes.readUInt32LE(4 * i);
  return { w0: w(0), w1: w(1), w2: w(2), w3: w(3), w4: w(4), len: s.length };
}

const K_STATUS = key(',"status":');
const K_BYTES_READ = key(',"bytes_read":');
const K_BYTES_UPLOADED = key(',"bytes_uploaded":');
const K_TR = key(',"TR":');
const K_TW_TC = key(',"Tw":0,"Tc":');
const K_TR2 = key(',"Tr":');
const K_TA = key(',"Ta":');
const K_RETRIES = key(',"retries":');

/** The sink buffer `view` writes into (a DataView is made once per buffer, not per line). */
let viewBuf: Buffer | null = null;
let view: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));

function viewOf(buf: Buffer): DataView<ArrayBufferLike> {
  if (buf !== viewBuf) {
    viewBuf = buf;
    view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  return view;
}

/** Writes `k` at `o`, and padding up to KEY_MAX bytes that what follows overwrites; returns the end of `k`. */
function putKey(dv: DataView<ArrayBufferLike>, o: number, k: Key): number {
  dv.setUint32(o, k.w0, true);
  dv.setUint32(o + 4, k.w1, true);
  dv.setUint32(o + 8, k.w2, true);
  dv.setUint32(o + 12, k.w3, true);
  dv.setUint32(o + 16, k.w4, true);
  return o + k.len;
}

function putSeg(buf: Buffer, o: number, seg: Uint8Array): number {
  buf.set(seg, o);
  return o + seg.length;
}

/** `String(n)` of 0..999 as little-endian bytes (zero padded): one 32-bit store writes it. */
const DIGITS = new Uint32Array(1000);
/** 0..999 as three digits, leading zeros kept: the lower groups of a larger number. */
const DIGITS3 = new Uint32Array(1000);
for (let n = 0; n < 1000; n++) {
  const le = (s: string): number => [...s].reduceRight((w, ch) => w * 256 + ch.charCodeAt(0), 0);
  DIGITS[n] = le(String(n));
  DIGITS3[n] = le(String(n).padStart(3, '0'));
}

/** Writes 0 <= n < 1000 (an integer) at `o`, plus one byte of padding; returns the end of its digits. */
function put3(dv: DataView<ArrayBufferLike>, o: number, n: number): number {
  dv.setUint32(o, DIGITS[n]!, true);
  return o + (n < 10 ? 1 : n < 100 ? 2 : 3);
}

/** A finite number as pino writes it (`String(n)`); integers below 2^31 without a string. */
function putNum(buf: Buffer, dv: DataView<ArrayBufferLike>, o: number, n: number): number {
  if ((n | 0) !== n) return o + buf.write(Number.isFinite(n) ? String(n) : 'null', o, 'latin1');
  if (n < 0) {
    if (n === -0x80000000) return o + buf.write(String(n), o, 'latin1');
    buf[o++] = 45;
    n = -n;
  }
  if (n < 1000) return put3(dv, o, n);
  // The first group of up to three digits, then each lower group as three digits.
  let g = 1000;
  while (g < 1000000000 && n >= g * 1000) g *= 1000;
  let q = (n / g) | 0;
  o = put3(dv, o, q);
  n -= q * g;
  for (g /= 1000; g >= 1; g /= 1000) {
    q = (n / g) | 0;
    dv.setUint32(o, DIGITS3[q]!, true);
    o += 3;
    n -= q * g;
  }
  return o;
}

/** Strings at least this long are checked by a regular expression and copied natively. */
const LONG_STR = 24;
/** A character `putStr` may copy as it is: printable ASCII but `"` and `\`. */
const UNSAFE = /[^\x20\x21\x23-\x5b\x5d-\x7e]/;

/** `s` as `jsonString` writes it; bytes at most 6 per UTF-16 unit plus 2. */
function putStr(buf: Buffer, o: number, s: string): number {
  if (s.length >= LONG_STR) {
    if (UNSAFE.test(s)) return o + buf.write(jsonString(s), o);
    buf[o] = 34;
    o += 1 + buf.write(s, o + 1, 'latin1');
    buf[o] = 34;
    return o + 1;
  }
  const start = o;
  buf[o++] = 34;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 32 || c === 34 || c === 92 || c > 126) return start + buf.write(jsonString(s), start);
    buf[o++] = c;
  }
  buf[o++] = 34;
  return o;
}

/** A termination-state character the tail may hold as it is: printable ASCII but `"` and `\`. */
function plainChar(s: string): number {
  if (s.length !== 1) return -1;
  const c = s.charCodeAt(0);
  return c < 32 || c === 34 || c === 92 || c > 126 ? -1 : c;
}

/**
 * The end of a line as it most often is (no retry, no redispatch, no rule, no server error),
 * `,"retries":0,"redispatched":false,"decided_by":...[,"stick":...],"termination_state":"....",
 * "msg":"request"}\n`, per decided_by and stick value (`TAILS[decidedIndex * 4 + stickIndex]`)
 * and termination state (4 characters of 7 bits as a 28-bit key). At most TAIL_CACHE_MAX per
 * map; at the bound the map is emptied.
 */
const TAILS = Array.from({ length: 6 * 4 }, () => new Map<number, Uint8Array>());
export const TAIL_CACHE_MAX = 256;

function decidedIndex(d: string): number {
  switch (d) {
    case '':
      return 0;
    case 'balance':
      return 1;
    case 'cookie':
      return 2;
    case 'stick':
      return 3;
    case 'stick-first':
      return 4;
    case 'redispatch':
      return 5;
    default:
      return -1;
  }
}

function stickIndex(s: string): number {
  switch (s) {
    case '':
      return 0;
    case 'hit':
      return 1;
    case 'miss':
      return 2;
    case 'down':
      return 3;
    default:
      return -1;
  }
}

/** For tests: the most values one segment cache and one tail map hold now. */
export function accessLogCacheSizes(): { segments: number; tails: number } {
  return { segments: Math.max(namesCount, ...SegmentCache.all.map((c) => c.map.size)), tails: Math.max(...TAILS.map((m) => m.size)) };
}

/** The common tail (see TAILS) for these values; null when one is outside the sets TAILS covers. */
function commonTail(decidedBy: string, stick: string, term0: string, term1: string, reqFlag: string, resFlag: string): Uint8Array | null {
  const t0 = plainChar(term0);
  const t1 = plainChar(term1);
  const t2 = plainChar(reqFlag);
  const t3 = plainChar(resFlag);
  const di = decidedIndex(decidedBy);
  const si = stickIndex(stick);
  if ((t0 | t1 | t2 | t3 | di | si) < 0) return null;
  const tails = TAILS[di * 4 + si]!;
  const code = (t0 << 21) | (t1 << 14) | (t2 << 7) | t3;
  let tail = tails.get(code);
  if (tail === undefined) {
    if (tails.size >= TAIL_CACHE_MAX) tails.clear();
    tail = ownBytes(
      `,"retries":0,"redispatched":false,"decided_by":${jsonString(decidedBy)}${stick ? `,"stick":${jsonString(stick)}` : ''},"termination_state":${jsonString(term0 + term1 + reqFlag + resFlag)}${MSG}}\n`,
    );
    tails.set(code, tail);
  }
  return tail;
}

/**
 * Bytes a line may take beyond its prefix and 6 per UTF-16 unit of its strings: every key and
 * constant, two quotes for each of 12 strings, 10 numbers of at most 24 characters (`String(n)`
 * of a double), and what the word stores write past their end.
 */
const FIXED_MAX =
  ',"client_ip":,"client_port":,"frontend":,"backend":,"server":,"method":,"uri":,"http_version":"HTTP/1.","ssl_fc":false,"ssl_fc_sni":,"status":,"bytes_read":,"bytes_uploaded":,"TR":,"Tw":0,"Tc":,"Tr":,"Ta":,"retries":,"redispatched":false,"decided_by":,"stick":,"rule":,"server_error":,"termination_state":'
    .length +
  MSG.length + 2 + 12 * 2 + 10 * 24 + KEY_MAX + 4;

/** The logger of the last line, its target (rawInfoTarget), and its info check at level `lastLevelVal`. */
let lastLogger: Logger | null = null;
let lastTarget: RawInfoTarget | null = null;
let lastLevelVal: unknown = NaN;
/** Where pino keeps a logger's level value (`logger.levelVal` reads it). */
const LEVEL_VAL = (pino.symbols as unknown as { levelValSym: symbol }).levelValSym;
let lastInfoEnabled = false;

/** Records the exchange `conn` is ending: metrics when enabled, one `request` line at info. */
export function logExchange(conn: Exchange): void {
  const ctx = conn.ctx;
  const now = loopNow();
  if (metrics.enabled) {
    const c = ctx.cookie;
    metrics.http(conn.backend?.name ?? '<NOSRV>', ctx.server, ctx.status, now - ctx.tStart, ctx.term0 !== '-', c.reqFlag, c.resFlag, ctx.decidedBy, conn.stickState.result);
  }
  const logger = conn.fe.logger;
  if (logger !== lastLogger) {
    lastLogger = logger;
    lastTarget = rawInfoTarget(logger, KEYS);
    lastLevelVal = NaN;
  }
  // isLevelEnabled('info') depends on the logger's level alone (its levels and comparison are
  // fixed when it is made): asked again only when the level changed. A pino logger's properties
  // are a dictionary: the level's own slot is read (~20 ns here), not the levelVal getter (~50).
  const levelVal = (logger as unknown as Record<symbol, unknown>)[LEVEL_VAL];
  if (levelVal !== lastLevelVal) {
    lastLevelVal = levelVal;
    lastInfoEnabled = logger.isLevelEnabled('info');
  }
  if (!lastInfoEnabled) return;
  const tHead = ctx.tHead || now;
  const backend = conn.backend?.name ?? '<NOSRV>';
  const server = ctx.server?.name ?? '<NOSRV>';
  const Tc = ctx.tConnected ? ctx.tConnected - ctx.tConnStart : -1;
  const Tr = ctx.tResHead && ctx.tConnected ? ctx.tResHead - ctx.tConnected : -1;
  const stick = conn.stickState.result;
  const target = lastTarget;
  if (target) {
    const strChars =
      conn.clientIp.length + conn.fe.name.length + backend.length + server.length + ctx.method.length + ctx.target.length + (conn.sni?.length ?? 0) +
      ctx.decidedBy.length + stick.length + ctx.rule.length + ctx.connectError.length + 4;
    const max = target.prefixMax() + FIXED_MAX + 6 * strChars;
    if (max <= LOG_CHUNK_BYTES / 3) {
      const sink = target.sink;
      const buf = sink.begin(max);
      if (buf === null) return; // dropped and counted: stdout is too far behind
      const dv = viewOf(buf);
      let o = target.prefix(buf, sink.pos);
      o = putNum(buf, dv, putSeg(buf, o, S_CLIENT_IP.get(conn.clientIp)), conn.clientPort);
      o = putSeg(buf, o, namesSegment(conn.fe.name, backend, server));
      o = putStr(buf, putSeg(buf, o, S_METHOD.get(ctx.method)), ctx.target);
      const minor = ctx.versionMinor;
      if (minor === 0 || minor === 1) {
        const v = minor * 2 + (conn.tls ? 1 : 0);
        if (conn.sni === undefined) o = putSeg(buf, o, VERSION_STATUS_BYTES[v]!);
        else o = putSeg(buf, putSeg(buf, o, VERSION_BYTES[v]!), S_SNI_STATUS.get(conn.sni));
      } else {
        o = putSeg(buf, o, ownBytes(`,"http_version":"HTTP/1.${minor}","ssl_fc":${conn.tls}`));
        o = conn.sni === undefined ? putKey(dv, o, K_STATUS) : putSeg(buf, o, S_SNI_STATUS.get(conn.sni));
      }
      o = putNum(buf, dv, o, ctx.status);
      o = putNum(buf, dv, putKey(dv, o, K_BYTES_READ), ctx.bytesOut);
      o = putNum(buf, dv, putKey(dv, o, K_BYTES_UPLOADED), ctx.bytesIn);
      o = putNum(buf, dv, putKey(dv, o, K_TR), tHead - ctx.tStart);
      o = putNum(buf, dv, putKey(dv, o, K_TW_TC), Tc);
      o = putNum(buf, dv, putKey(dv, o, K_TR2), Tr);
      o = putNum(buf, dv, putKey(dv, o, K_TA), now - ctx.tStart);
      if (ctx.retries === 0 && !ctx.redispatched && !ctx.rule && !ctx.connectError) {
        const c = ctx.cookie;
        const tail = commonTail(ctx.decidedBy, stick, ctx.term0, ctx.term1, c.reqFlag, c.resFlag);
        if (tail !== null) {
          sink.commit(putSeg(buf, o, tail));
          return;
        }
      }
      o = putNum(buf, dv, putKey(dv, o, K_RETRIES), ctx.retries);
      o = putSeg(buf, o, ctx.redispatched ? REDISPATCHED_TRUE : REDISPATCHED_FALSE);
      o = putSeg(buf, o, S_DECIDED_BY.get(ctx.decidedBy));
      if (stick) o = putSeg(buf, o, S_STICK.get(stick));
      if (ctx.rule) o = putSeg(buf, o, S_RULE.get(ctx.rule));
      if (ctx.connectError) o = putSeg(buf, o, S_SERVER_ERROR.get(ctx.connectError));
      o = putSeg(buf, o, S_TERM.get(ctx.terminationState()));
      sink.commit(putSeg(buf, o, END));
      return;
    }
  }
  const fields =
    `,"client_ip":${jsonString(conn.clientIp)},"client_port":${conn.clientPort},"frontend":${jsonString(conn.fe.name)},"backend":${jsonString(backend)},"server":${jsonString(server)}` +
    `,"method":${jsonString(ctx.method)},"uri":${jsonString(ctx.target)},"http_version":"HTTP/1.${ctx.versionMinor}","ssl_fc":${conn.tls}` +
    (conn.sni === undefined ? '' : `,"ssl_fc_sni":${jsonString(conn.sni)}`) +
    `,"status":${ctx.status},"bytes_read":${ctx.bytesOut},"bytes_uploaded":${ctx.bytesIn},"TR":${tHead - ctx.tStart},"Tw":0,"Tc":${Tc},"Tr":${Tr},"Ta":${now - ctx.tStart}` +
    `,"retries":${ctx.retries},"redispatched":${ctx.redispatched},"decided_by":${jsonString(ctx.decidedBy)}` +
    (stick ? `,"stick":${jsonString(stick)}` : '') +
    (ctx.rule ? `,"rule":${jsonString(ctx.rule)}` : '') +
    (ctx.connectError ? `,"server_error":${jsonString(ctx.connectError)}` : '') +
    `,"termination_state":${jsonString(ctx.terminationState())}`;
  if (writeRawInfo(logger, fields, MSG, KEYS)) return;
  logger.info(JSON.parse(`{${fields.slice(1)}}`) as Record<string, unknown>, 'request');
}
