/**
 * The access log line and the HTTP metrics of one exchange, written when it ends (endExchange in
 * client-conn.ts), HAProxy's `option httplog` fields under their HAProxy names. Reads the
 * connection; allocates only when the log level takes the line.
 */
import { loopNow } from '@stickmesh/core';
import type { Exchange } from './exchange.js';
import { metrics } from '../metrics.js';

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
  logger.info(
    {
      client_ip: conn.clientIp,
      client_port: conn.clientPort,
      frontend: conn.fe.name,
      backend: conn.backend?.name ?? '<NOSRV>',
      server: ctx.server?.name ?? '<NOSRV>',
      method: ctx.method,
      uri: ctx.target,
      http_version: `HTTP/1.${ctx.versionMinor}`,
      ssl_fc: conn.tls,
      ssl_fc_sni: conn.sni,
      status: ctx.status,
      bytes_read: ctx.bytesOut,
      bytes_uploaded: ctx.bytesIn,
      TR: tHead - ctx.tStart,
      Tw: 0,
      Tc: ctx.tConnected ? ctx.tConnected - ctx.tConnStart : -1,
      Tr: ctx.tResHead && ctx.tConnected ? ctx.tResHead - ctx.tConnected : -1,
      Ta: now - ctx.tStart,
      retries: ctx.retries,
      redispatched: ctx.redispatched,
      decided_by: ctx.decidedBy,
      stick: conn.stickState.result || undefined,
      rule: ctx.rule || undefined,
      server_error: ctx.connectError || undefined,
      termination_state: ctx.terminationState(),
    },
    'request',
  );
}
