/**
 * The access log line and the HTTP metrics of one exchange, written when it ends (endExchange in
 * client-conn.ts), HAProxy's `option httplog` fields under their HAProxy names. Reads the
 * connection; allocates only when the log level takes the line.
 *
 * The line is exactly what pino's `logger.info(fields, 'request')` would write: same keys, same
 * order, undefined fields left out, strings escaped as pino escapes them (`jsonString`). A node's
 * logger (a LogSink behind it) gets it encoded straight into the sink's buffer, with as few
 * JavaScript byte stores as possible, since a store costs as much as a native copy of a few dozen
 * bytes: a field's key and a value drawn from a small set (frontend, backend and server names,
 * method, decided_by, stick, rule, server_error, SNI) are copied together as one pre-encoded byte
 * segment (`SegmentCache`); the short keys between numbers are written four bytes per store
 * (`putFrag`); integers as digits; other strings byte by byte when plain printable ASCII. Any
 * other logger gets the line as JSON text framed by `writeRawInfo`; a logger whose options would
 * change pino's output (serializers, mixins, redaction...) gets the object through `logger.info`.
 */
import { loopNow } from '@stickmesh/core';
import type { Logger } from 'pino';
import type { Exchange } from './exchange.js';
import { metrics } from '../metrics.js';
import { rawInfoTarget, writeRawInfo, LOG_CHUNK_BYTES, type RawInfoTarget } from '../log.js';

const KEYS = [
  'client_ip', 'client_port', 'frontend', 'backend', 'server', 'method', 'uri', 'http_version', 'ssl_fc', 'ssl_fc_sni', 'status', 'bytes_read', 'bytes_uploaded',
  'TR', 'Tw', 'Tc', 'Tr', 'Ta', 'retries', 'redispatched', 'decided_by', 'stick', 'rule', 'server_error', 'termination_state',
] as const;
const MSG = ',"msg":"request"';

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
  private readonly map = new Map<string, Uint8Array>();
  constructor(
    private readonly before: string,
    private readonly after: string,
  ) {}

  /** The bytes for `s`: cached when `s` is short, built for this line otherwise. */
  get(s: string): Uint8Array {
    let seg = this.map.get(s);
    if (seg !== undefined) return seg;
    seg = Buffer.from(this.before + jsonString(s) + this.after, 'utf8');
    if (s.length <= SEGMENT_VALUE_MAX) {
      if (this.map.size >= SEGMENT_CACHE_MAX) this.map.clear();
      this.map.set(s, seg);
    }
    return seg;
  }
}

const S_FRONTEND = new SegmentCache(',"frontend":', '');
const S_BACKEND = new SegmentCache(',"backend":', '');
const S_SERVER = new SegmentCache(',"server":', '');
const S_METHOD = new SegmentCache(',"method":', ',"uri":');
const S_SNI = new SegmentCache(',"ssl_fc_sni":', '');
const S_DECIDED_BY = new SegmentCache(',"decided_by":', '');
const S_STICK = new SegmentCache(',"stick":', '');
const S_RULE = new SegmentCache(',"rule":', '');
const S_SERVER_ERROR = new SegmentCache(',"server_error":', '');

/**
 * A constant fragment, as little-endian 32-bit words (the last one padded with zeros): `putFrag`
 * writes it with one store per four bytes.
 */
interface Frag {
  readonly words: Uint32Array;
  readonly len: number;
}
function frag(s: string): Frag {
  const bytes = Buffer.from(s, 'latin1');
  const words = new Uint32Array(Math.ceil(bytes.length / 4));
  new Uint8Array(words.buffer).set(bytes);
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) for (let i = 0; i < words.length; i++) words[i] = new DataView(words.buffer).getUint32(i * 4, true);
  return { words, len: bytes.length };
}

const F_CLIENT_IP = frag(',"client_ip":');
const F_CLIENT_PORT = frag(',"client_port":');
/** `,"http_version":"HTTP/1.<minor>","ssl_fc":<tls>` for minor 0 and 1, without and with TLS. */
const F_VERSION_TLS = [frag(',"http_version":"HTTP/1.0","ssl_fc":false'), frag(',"http_version":"HTTP/1.0","ssl_fc":true'), frag(',"http_version":"HTTP/1.1","ssl_fc":false'), frag(',"http_version":"HTTP/1.1","ssl_fc":true')];
const F_VERSION = frag(',"http_version":"HTTP/1.');
const F_SSL_FC_FALSE = frag('","ssl_fc":false');
const F_SSL_FC_TRUE = frag('","ssl_fc":true');
const F_STATUS = frag(',"status":');
const F_BYTES_READ = frag(',"bytes_read":');
const F_BYTES_UPLOADED = frag(',"bytes_uploaded":');
const F_TR = frag(',"TR":');
const F_TW_TC = frag(',"Tw":0,"Tc":');
const F_TR2 = frag(',"Tr":');
const F_TA = frag(',"Ta":');
const F_RETRIES = frag(',"retries":');
const F_REDISPATCHED_FALSE = frag(',"redispatched":false');
const F_REDISPATCHED_TRUE = frag(',"redispatched":true');
const F_TERM = frag(',"termination_state":');
const F_END = frag(`${MSG}}\n`);

/** Bytes every fragment may write together (each rounded up to whole words), plus 15 numbers of 20 bytes. */
const FIXED_MAX =
  [F_CLIENT_IP, F_CLIENT_PORT, F_VERSION, F_SSL_FC_FALSE, F_STATUS, F_BYTES_READ, F_BYTES_UPLOADED, F_TR, F_TW_TC, F_TR2, F_TA, F_RETRIES, F_REDISPATCHED_FALSE, F_TERM, F_END]
    .reduce((n, f) => n + f.words.length * 4, 0) +
  [',"frontend":', ',"backend":', ',"server":', ',"method":,"uri":', ',"ssl_fc_sni":', ',"decided_by":', ',"stick":', ',"rule":', ',"server_error":'].reduce((n, k) => n + k.length, 0) +
  15 * 20;

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

/** Writes `f` at `o` (and up to 3 bytes of padding after it, overwritten by what follows); returns its end. */
function putFrag(dv: DataView<ArrayBufferLike>, o: number, f: Frag): number {
  const w = f.words;
  for (let i = 0; i < w.length; i++) dv.setUint32(o + 4 * i, w[i]!, true);
  return o + f.len;
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

/** A termination-state character putTerm may copy: printable ASCII but `"` and `\`. */
function plainChar(s: string): number {
  if (s.length !== 1) return -1;
  const c = s.charCodeAt(0);
  return c < 32 || c === 34 || c === 92 || c > 126 ? -1 : c;
}

let lastLogger: Logger | null = null;
let lastTarget: RawInfoTarget | null = null;

/** Records the exchange `conn` is ending: metrics when enabled, one `request` line at info. */
export function logExchange(conn: Exchange): void {
  const ctx = conn.ctx;
  const now = loopNow();
  if (metrics.enabled) {
    const c = ctx.cookie;
    metrics.http(conn.backend?.name ?? '<NOSRV>', ctx.server, ctx.status, now - ctx.tStart, ctx.term0 !== '-', c.reqFlag, c.resFlag, ctx.decidedBy, conn.stickState.result);
  }
  const logger = conn.fe.logger;
  if (!logger.isLevelEnabled('info')) return;
  const tHead = ctx.tHead || now;
  const backend = conn.backend?.name ?? '<NOSRV>';
  const server = ctx.server?.name ?? '<NOSRV>';
  const Tc = ctx.tConnected ? ctx.tConnected - ctx.tConnStart : -1;
  const Tr = ctx.tResHead && ctx.tConnected ? ctx.tResHead - ctx.tConnected : -1;
  const stick = conn.stickState.result;
  if (logger !== lastLogger) {
    lastTarget = rawInfoTarget(logger, KEYS);
    lastLogger = logger;
  }
  const target = lastTarget;
  if (target) {
    const strChars =
      conn.clientIp.length + conn.fe.name.length + backend.length + server.length + ctx.method.length + ctx.target.length + (conn.sni?.length ?? 0) +
      ctx.decidedBy.length + stick.length + ctx.rule.length + ctx.connectError.length + 4;
    const max = target.prefixMax() + FIXED_MAX + 6 * strChars + 2 * 12;
    if (max <= LOG_CHUNK_BYTES / 3) {
      const sink = target.sink;
      const buf = sink.begin(max);
      if (buf === null) return; // dropped and counted: stdout is too far behind
      const dv = viewOf(buf);
      let o = target.prefix(buf, sink.pos);
      o = putStr(buf, putFrag(dv, o, F_CLIENT_IP), conn.clientIp);
      o = putNum(buf, dv, putFrag(dv, o, F_CLIENT_PORT), conn.clientPort);
      o = putSeg(buf, o, S_FRONTEND.get(conn.fe.name));
      o = putSeg(buf, o, S_BACKEND.get(backend));
      o = putSeg(buf, o, S_SERVER.get(server));
      o = putStr(buf, putSeg(buf, o, S_METHOD.get(ctx.method)), ctx.target);
      const minor = ctx.versionMinor;
      if (minor === 0 || minor === 1) o = putFrag(dv, o, F_VERSION_TLS[minor * 2 + (conn.tls ? 1 : 0)]!);
      else o = putFrag(dv, putNum(buf, dv, putFrag(dv, o, F_VERSION), minor), conn.tls ? F_SSL_FC_TRUE : F_SSL_FC_FALSE);
      if (conn.sni !== undefined) o = putSeg(buf, o, S_SNI.get(conn.sni));
      o = putNum(buf, dv, putFrag(dv, o, F_STATUS), ctx.status);
      o = putNum(buf, dv, putFrag(dv, o, F_BYTES_READ), ctx.bytesOut);
      o = putNum(buf, dv, putFrag(dv, o, F_BYTES_UPLOADED), ctx.bytesIn);
      o = putNum(buf, dv, putFrag(dv, o, F_TR), tHead - ctx.tStart);
      o = putNum(buf, dv, putFrag(dv, o, F_TW_TC), Tc);
      o = putNum(buf, dv, putFrag(dv, o, F_TR2), Tr);
      o = putNum(buf, dv, putFrag(dv, o, F_TA), now - ctx.tStart);
      o = putNum(buf, dv, putFrag(dv, o, F_RETRIES), ctx.retries);
      o = putFrag(dv, o, ctx.redispatched ? F_REDISPATCHED_TRUE : F_REDISPATCHED_FALSE);
      o = putSeg(buf, o, S_DECIDED_BY.get(ctx.decidedBy));
      if (stick) o = putSeg(buf, o, S_STICK.get(stick));
      if (ctx.rule) o = putSeg(buf, o, S_RULE.get(ctx.rule));
      if (ctx.connectError) o = putSeg(buf, o, S_SERVER_ERROR.get(ctx.connectError));
      o = putFrag(dv, o, F_TERM);
      const t0 = plainChar(ctx.term0);
      const t1 = plainChar(ctx.term1);
      const t2 = plainChar(ctx.cookie.reqFlag);
      const t3 = plainChar(ctx.cookie.resFlag);
      if ((t0 | t1 | t2 | t3) >= 0) {
        buf[o] = 34;
        buf[o + 1] = t0;
        buf[o + 2] = t1;
        buf[o + 3] = t2;
        buf[o + 4] = t3;
        buf[o + 5] = 34;
        o += 6;
      } else o = putStr(buf, o, ctx.terminationState());
      sink.commit(putFrag(dv, o, F_END));
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
