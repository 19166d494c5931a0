/**
 * The access log line and the HTTP metrics of one exchange, written when it ends (endExchange in
 * client-conn.ts), HAProxy's `option httplog` fields under their HAProxy names. Reads the
 * connection; allocates only when the log level takes the line.
 *
 * The line's fields are built as JSON text here (constant key fragments, values quoted only when
 * they are strings) and framed by `writeRawInfo`, which writes exactly what pino's
 * `logger.info(fields, 'request')` would: same keys, same order, undefined fields left out. A
 * logger whose options would change that output (serializers, mixins, redaction...) gets the
 * object through `logger.info` instead.
 */
import { loopNow } from '@stickmesh/core';
import type { Exchange } from './exchange.js';
import { metrics } from '../metrics.js';
import { writeRawInfo } from '../log.js';

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
