/**
 * The access log line and the HTTP metrics of one exchange, written when it ends (endExchange in
 * client-conn.ts), HAProxy's `option httplog` fields under their HAProxy names. Reads the
 * connection; allocates only when the log level takes the line.
 *
 * The line is exactly what pino's `logger.info(fields, 'request')` would write: same keys, same
 * order, undefined fields left out. A node's logger (a LogSink behind it) gets it encoded straight
 * into the sink's buffer (`encodeLine`: constant key fragments as bytes, integers as digits, ASCII
 * strings byte by byte, no string built); any other logger gets it as JSON text framed by
 * `writeRawInfo`; a logger whose options would change pino's output (serializers, mixins,
 * redaction...) gets the object through `logger.info`.
 */
import { loopNow } from '@stickmesh/core';
import type { Exchange } from './exchange.js';
import { metrics } from '../metrics.js';
import { rawInfoTarget, writeRawInfo, LOG_CHUNK_BYTES } from '../log.js';

const KEYS = [
  'client_ip', 'client_port', 'frontend', 'backend', 'server', 'method', 'uri', 'http_version', 'ssl_fc', 'ssl_fc_sni', 'status', 'bytes_read', 'bytes_uploaded',
  'TR', 'Tw', 'Tc', 'Tr', 'Ta', 'retries', 'redispatched', 'decided_by', 'stick', 'rule', 'server_error', 'termination_state',
] as const;
const MSG = ',"msg":"request"';

/** A string as a JSON string, as pino writes one (escapes only when a character needs it). */
function q(s: string): string {
  if (s.length > 100) return JSON.stringify(s);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 32 || c === 34 || c === 92) return JSON.stringify(s);
  }
  return `"${s}"`;
}

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const K_CLIENT_IP = b(',"client_ip":');
const K_CLIENT_PORT = b(',"client_port":');
const K_FRONTEND = b(',"frontend":');
const K_BACKEND = b(',"backend":');
const K_SERVER = b(',"server":');
const K_METHOD = b(',"method":');
const K_URI = b(',"uri":');
const K_VERSION = b(',"http_version":"HTTP/1.');
const K_SSL_FC = b('","ssl_fc":');
const K_SNI = b(',"ssl_fc_sni":');
const K_STATUS = b(',"status":');
const K_BYTES_READ = b(',"bytes_read":');
const K_BYTES_UPLOADED = b(',"bytes_uploaded":');
const K_TR = b(',"TR":');
const K_TW_TC = b(',"Tw":0,"Tc":');
const K_TR2 = b(',"Tr":');
const K_TA = b(',"Ta":');
const K_RETRIES = b(',"retries":');
const K_REDISPATCHED = b(',"redispatched":');
const K_DECIDED_BY = b(',"decided_by":');
const K_STICK = b(',"stick":');
const K_RULE = b(',"rule":');
const K_SERVER_ERROR = b(',"server_error":');
const K_TERM = b(',"termination_state":');
const K_END = b(`${MSG}}\n`);
const TRUE = b('true');
const FALSE = b('false');
/** Bytes of every constant fragment together, plus room for the 15 numbers (20 bytes each). */
const FIXED_MAX =
  [K_CLIENT_IP, K_CLIENT_PORT, K_FRONTEND, K_BACKEND, K_SERVER, K_METHOD, K_URI, K_VERSION, K_SSL_FC, K_SNI, K_STATUS, K_BYTES_READ, K_BYTES_UPLOADED, K_TR, K_TW_TC, K_TR2, K_TA, K_RETRIES, K_REDISPATCHED, K_DECIDED_BY, K_STICK, K_RULE, K_SERVER_ERROR, K_TERM, K_END, FALSE]
    .reduce((n, k) => n + k.length, 0) + 15 * 20;

function put(buf: Buffer, o: number, k: Buffer): number {
  for (let i = 0; i < k.length; i++) buf[o + i] = k[i]!;
  return o + k.length;
}

/** A finite number as pino writes it (`String(n)`); integers without a string. */
function putNum(buf: Buffer, o: number, n: number): number {
  // Small integers (every field but a huge byte count) in int32 arithmetic.
  if (!(n > -0x80000000 && n < 0x80000000 && (n | 0) === n)) return o + buf.write(Number.isFinite(n) ? String(n) : 'null', o, 'latin1');
  if (n < 0) {
    buf[o++] = 45;
    n = -n;
  }
  let digits = 1;
  for (let t = n; t >= 10; t = (t / 10) | 0) digits++;
  for (let i = digits - 1; i >= 0; i--) {
    const q10 = (n / 10) | 0;
    buf[o + i] = 48 + n - q10 * 10;
    n = q10;
  }
  return o + digits;
}

/** `s` as a JSON string (as `q` writes it); bytes at most 6 per UTF-16 unit plus 2. */
function putStr(buf: Buffer, o: number, s: string): number {
  const start = o;
  buf[o++] = 34;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 32 || c === 34 || c === 92 || c > 126) return start + buf.write(q(s), start, 'utf8');
    buf[o++] = c;
  }
  buf[o++] = 34;
  return o;
}

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
  const target = rawInfoTarget(logger, KEYS);
  if (target) {
    const term = ctx.terminationState();
    const strChars =
      conn.clientIp.length + conn.fe.name.length + backend.length + server.length + ctx.method.length + ctx.target.length + (conn.sni?.length ?? 0) +
      ctx.decidedBy.length + stick.length + ctx.rule.length + ctx.connectError.length + term.length;
    const max = target.prefixMax() + FIXED_MAX + 6 * strChars + 2 * 12;
    if (max <= LOG_CHUNK_BYTES / 3) {
      const buf = target.sink.begin(max);
      if (buf === null) return; // dropped and counted: stdout is too far behind
      let o = target.prefix(buf, target.sink.pos);
      o = putStr(buf, put(buf, o, K_CLIENT_IP), conn.clientIp);
      o = putNum(buf, put(buf, o, K_CLIENT_PORT), conn.clientPort);
      o = putStr(buf, put(buf, o, K_FRONTEND), conn.fe.name);
      o = putStr(buf, put(buf, o, K_BACKEND), backend);
      o = putStr(buf, put(buf, o, K_SERVER), server);
      o = putStr(buf, put(buf, o, K_METHOD), ctx.method);
      o = putStr(buf, put(buf, o, K_URI), ctx.target);
      o = putNum(buf, put(buf, o, K_VERSION), ctx.versionMinor);
      o = put(buf, put(buf, o, K_SSL_FC), conn.tls ? TRUE : FALSE);
      if (conn.sni !== undefined) o = putStr(buf, put(buf, o, K_SNI), conn.sni);
      o = putNum(buf, put(buf, o, K_STATUS), ctx.status);
      o = putNum(buf, put(buf, o, K_BYTES_READ), ctx.bytesOut);
      o = putNum(buf, put(buf, o, K_BYTES_UPLOADED), ctx.bytesIn);
      o = putNum(buf, put(buf, o, K_TR), tHead - ctx.tStart);
      o = putNum(buf, put(buf, o, K_TW_TC), Tc);
      o = putNum(buf, put(buf, o, K_TR2), Tr);
      o = putNum(buf, put(buf, o, K_TA), now - ctx.tStart);
      o = putNum(buf, put(buf, o, K_RETRIES), ctx.retries);
      o = put(buf, put(buf, o, K_REDISPATCHED), ctx.redispatched ? TRUE : FALSE);
      o = putStr(buf, put(buf, o, K_DECIDED_BY), ctx.decidedBy);
      if (stick) o = putStr(buf, put(buf, o, K_STICK), stick);
      if (ctx.rule) o = putStr(buf, put(buf, o, K_RULE), ctx.rule);
      if (ctx.connectError) o = putStr(buf, put(buf, o, K_SERVER_ERROR), ctx.connectError);
      o = putStr(buf, put(buf, o, K_TERM), term);
      target.sink.commit(put(buf, o, K_END));
      return;
    }
  }
  const fields =
    `,"client_ip":${q(conn.clientIp)},"client_port":${conn.clientPort},"frontend":${q(conn.fe.name)},"backend":${q(backend)},"server":${q(server)}` +
    `,"method":${q(ctx.method)},"uri":${q(ctx.target)},"http_version":"HTTP/1.${ctx.versionMinor}","ssl_fc":${conn.tls}` +
    (conn.sni === undefined ? '' : `,"ssl_fc_sni":${q(conn.sni)}`) +
    `,"status":${ctx.status},"bytes_read":${ctx.bytesOut},"bytes_uploaded":${ctx.bytesIn},"TR":${tHead - ctx.tStart},"Tw":0,"Tc":${Tc},"Tr":${Tr},"Ta":${now - ctx.tStart}` +
    `,"retries":${ctx.retries},"redispatched":${ctx.redispatched},"decided_by":${q(ctx.decidedBy)}` +
    (stick ? `,"stick":${q(stick)}` : '') +
    (ctx.rule ? `,"rule":${q(ctx.rule)}` : '') +
    (ctx.connectError ? `,"server_error":${q(ctx.connectError)}` : '') +
    `,"termination_state":${q(ctx.terminationState())}`;
  if (writeRawInfo(logger, fields, MSG, KEYS)) return;
  logger.info(JSON.parse(`{${fields.slice(1)}}`) as Record<string, unknown>, 'request');
}
