/**
 * Body framing and forwarding, both ways: how each head frames its body (`frameRequestBody`,
 * `frameResponseBody`: Content-Length, chunked, until close), then request body bytes to the
 * server and response body bytes to the client. Plain
 * functions of the connection; a write takes a view of the bytes, or a copy only when they lie
 * in the shared read buffer (`keep`).
 */
import { BodyMode, type Exchange } from './exchange.js';
import type { UpstreamConn } from './upstream.js';
import { writeResponseHead } from './response-edit.js';
import { isSharedRead } from '../listen/read-buffer.js';

/** Largest first body piece copied together with the response head into one buffer. */
export const COALESCE_MAX = 16384;

/**
 * `buf[start, end)` for keeping past the read callback or for a write that may be queued: a copy
 * when it lies in the shared read buffer (read-buffer.ts), a view otherwise.
 */
export function keep(buf: Buffer, start: number, end: number): Buffer {
  return isSharedRead(buf) ? Buffer.copyBytesFrom(buf, start, end - start) : buf.subarray(start, end);
}

/**
 * The request body's framing, from the head the shared parser holds: chunked (Transfer-Encoding
 * wins; head.ts refused any other coding), a Content-Length, or none (the request is complete).
 */
export function frameRequestBody(conn: Exchange): void {
  const req = conn.req;
  if (req.chunked) {
    conn.reqBodyMode = BodyMode.Chunked;
    conn.reqChunks.reset();
  } else if (req.contentLength > 0) {
    conn.reqBodyMode = BodyMode.Length;
    conn.reqBodyLeft = req.contentLength;
  } else {
    conn.reqBodyMode = BodyMode.None;
    conn.reqDone = true;
  }
}

/**
 * The response body's framing (RFC 9112 §6.3), for a final response other than 101: none for
 * HEAD, 204 and 304; chunked; another Transfer-Encoding, or neither header, until the server
 * closes; else its Content-Length.
 */
export function frameResponseBody(conn: Exchange): void {
  const res = conn.res;
  if (conn.reqIsHead || res.status === 204 || res.status === 304) {
    conn.resBodyMode = BodyMode.None;
  } else if (res.chunked) {
    conn.resBodyMode = BodyMode.Chunked;
    conn.resChunks.reset();
  } else if (res.hasTransferEncoding) {
    conn.resBodyMode = BodyMode.UntilClose;
  } else if (res.contentLength >= 0) {
    conn.resBodyMode = res.contentLength === 0 ? BodyMode.None : BodyMode.Length;
    conn.resBodyLeft = res.contentLength;
  } else {
    conn.resBodyMode = BodyMode.UntilClose;
  }
}

/** Forwards request body bytes; returns bytes consumed, or -1 after failing the exchange. */
export function forwardRequestBody(conn: Exchange, data: Buffer, start: number, end: number): number {
  const up = conn.up;
  if (!up) return 0;
  let n: number;
  if (conn.reqBodyMode === BodyMode.Length) {
    n = Math.min(conn.reqBodyLeft, end - start);
    conn.reqBodyLeft -= n;
    if (conn.reqBodyLeft === 0) conn.reqDone = true;
  } else if (conn.reqBodyMode === BodyMode.Chunked) {
    n = conn.reqChunks.scan(data, start, end);
    if (n < 0) {
      conn.fe.logger.debug({ client_ip: conn.clientIp, error: conn.reqChunks.error }, 'bad chunked request body');
      conn.fail(400, 'P', 'D');
      return -1;
    }
    if (conn.reqChunks.done) conn.reqDone = true;
  } else {
    return 0;
  }
  if (n > 0) {
    const ok = up.socket.write(start === 0 && n === data.length ? data : data.subarray(start, start + n));
    if (!ok) conn.pauseClientFor('upstream');
  }
  return n;
}

/** Forwards response body bytes `data[start, end)`; bytes beyond the body end the connection's reuse. */
export function forwardResponseBody(conn: Exchange, up: UpstreamConn, data: Buffer, start: number, end: number): void {
  let n = end - start;
  if (conn.resBodyMode === BodyMode.Length) {
    n = Math.min(n, conn.resBodyLeft);
    conn.resBodyLeft -= n;
  } else if (conn.resBodyMode === BodyMode.Chunked) {
    n = conn.resChunks.scan(data, start, end);
    if (n < 0) {
      conn.fe.logger.debug({ server: conn.ctx.server?.name, error: conn.resChunks.error }, 'bad chunked response body');
      conn.ctx.term0 = 'S';
      conn.ctx.term1 = 'D';
      up.destroy();
      conn.destroy();
      return;
    }
  } else if (conn.resBodyMode === BodyMode.None) {
    n = 0;
  }
  let corked = false;
  if (conn.headSrc !== null) {
    if (n > 0 && n <= COALESCE_MAX) {
      // One buffer for head and body: one write, no writev bookkeeping for two chunks.
      conn.ctx.bytesOut += n;
      if (!writeResponseHead(conn, data, start, n)) up.socket.pause();
      n = -n; // written
    } else {
      // A large first body piece is not copied: head and body leave in one writev.
      if (n > 0) {
        corked = true;
        conn.socket.cork();
      }
      writeResponseHead(conn, null, 0, 0);
    }
  }
  if (n > 0) {
    conn.ctx.bytesOut += n;
    if (!conn.socket.write(keep(data, start, start + n))) up.socket.pause();
  } else if (n < 0) n = -n;
  if (corked) conn.socket.uncork();
  const complete =
    (conn.resBodyMode === BodyMode.Length && conn.resBodyLeft === 0) ||
    (conn.resBodyMode === BodyMode.Chunked && conn.resChunks.done);
  if (n < end - start) {
    // Extra bytes after the response: the connection cannot be reused.
    conn.keepUpstream = false;
  }
  if (complete) conn.responseComplete(up);
}
