/**
 * The response head sent to the client, as edits of the server's head: unchanged lines are copied
 * byte for byte, hop-by-hop headers cut, cookie headers rewritten in place, persistence and
 * connection headers appended. Plain functions of the connection over module-level buffers.
 *
 * The edit plan and the output buffer are shared by every connection, like the response parser
 * (exchange.ts): a head is parsed, planned (`planResponseHead`) and written (`writeResponseHead`,
 * or dropped with `dropResponseHead` when the client is gone) within the read callback that
 * completed it. The plan's owner is recorded; a plan started while another connection's is
 * unwritten, or written by a connection that does not own it, counts as a re-entry
 * (`responseEditReentries`), which the tests require to stay 0. Counting, not throwing: a
 * socket callback that threw would take the process down.
 */
import { loopNow } from '@stickmesh/core';
import { Phase, type Exchange } from './exchange.js';
import { transferEncodingLine } from './head.js';
import { takeBuffer } from '../listen/buffer-pool.js';

/** Size of the shared response-head output buffer (head plus coalesced body). */
export const OUT_BUFFER_BYTES = 4096;

/**
 * The output buffer every connection's `writeResponseHead` fills, shared: a response head is copied in
 * and written at once, and the kernel nearly always takes all of it, so one buffer serves every
 * connection and stays in the CPU cache (a buffer per connection meant a cache miss per line
 * written at a few hundred connections). When a write leaves bytes queued, the queued write
 * keeps that buffer and the next head gets a new one.
 */
let sharedOut: Buffer | null = null;

let editCount = 0;
const editFrom: number[] = [];
const editTo: number[] = [];
/** Replacement text (latin1) or bytes. */
const editText: (string | Buffer)[] = [];

function edit(from: number, to: number, text: string | Buffer): void {
  const k = editCount++;
  editFrom[k] = from;
  editTo[k] = to;
  editText[k] = text;
}

/** The connection whose response head the plan holds; null once written or dropped. */
let planOwner: Exchange | null = null;
let reentries = 0;

/** Times the shared plan was used across connections (see the module comment); 0 unless a bug. */
export function responseEditReentries(): number {
  return reentries;
}

/**
 * Plans the edits of the response head the shared parser holds (`conn.res`), found at
 * `src[at]`; the head is written by `writeResponseHead` before the read callback returns.
 */
export function planResponseHead(conn: Exchange, src: Buffer, at: number): void {
  if (planOwner !== null) reentries++;
  planOwner = conn;
  const ctx = conn.ctx;
  const res = conn.res;
  const cookie = conn.backend?.cookie;
  const server = ctx.server!;
  editCount = 0;
  // The status line is copied when the server spoke HTTP/1.1; an HTTP/1.0 one is restated as 1.1.
  if (res.versionMinor !== 1) edit(0, res.startLineEnd, `HTTP/1.1 ${res.status} ${res.reason}\r\n`);
  // Transfer-Encoding wins over Content-Length, which is cut (RFC 9112 §6.3 rule 3); a
  // Transfer-Encoding line written oddly (`CHUNKED\t`) is restated plainly.
  const cutCl = res.hasTransferEncoding ? res.clAt : -1;
  const fixTe = res.teCanonical ? -1 : res.teAt;
  // Header lines `http-response del-header`/`set-header` removed (rules ran just before).
  const rs = conn.rs;
  const deleted = rs !== null && rs.resDelAny ? rs.resDel : null;
  for (let i = 0; i < res.count; i++) {
    if (res.isHopByHop(i) || i === cutCl || (deleted !== null && deleted[i] === 1)) {
      edit(res.lineStart(i), res.lineEnd(i), '');
    } else if (i === fixTe) {
      edit(res.lineStart(i), res.lineEnd(i), transferEncodingLine(res));
    } else if (cookie && res.nameAt(i, 'set-cookie')) {
      const nv = cookie.onResponseSetCookie(res.value(i), ctx.cookie, server);
      if (nv !== undefined) edit(res.lineStart(i), res.lineEnd(i), nv.length === 0 ? '' : `${res.name(i)}: ${nv}\r\n`);
    }
  }
  let tail = rs !== null && rs.resAddCount > 0 ? rs.resAddedLines() : '';
  if (cookie) {
    const lines = cookie.insertLines(ctx.cookie, server, conn.reqIsPost, Math.floor(loopNow() / 1000));
    if (lines !== undefined) edit(res.textLength, res.textLength, lines);
    else if (cookie.nocache && ctx.cookie.resFlag === 'R') tail += 'cache-control: private\r\n';
  }
  if (conn.phase === Phase.Tunnel) tail += `connection: upgrade\r\n`;
  else if (!conn.keepAlive) tail += 'connection: close\r\n';
  else if (ctx.versionMinor === 0) tail += 'connection: keep-alive\r\n';
  if (tail.length > 0) edit(res.textLength, res.textLength, tail);
  conn.headSrc = src;
  conn.headAt = at;
}

/** The client is gone before the planned head was written: the plan is given up. */
export function dropResponseHead(conn: Exchange): void {
  if (planOwner === conn) planOwner = null;
  conn.headSrc = null;
}

/**
 * Writes the edited response head followed by `body[bodyAt, bodyAt + bodyLen)` as one buffer: unchanged
 * ranges are copied from the server's bytes (`headSrc`), edits written as latin1, into the
 * shared output buffer (`sharedOut`); heads with bodies larger than `OUT_BUFFER_BYTES` get a
 * buffer of their own. Returns what socket.write returned.
 */
export function writeResponseHead(conn: Exchange, body: Buffer | null, bodyAt: number, bodyLen: number): boolean {
  if (planOwner !== conn) reentries++;
  planOwner = null;
  const src = conn.headSrc!;
  const at = conn.headAt;
  conn.headSrc = null;
  const textLen = conn.res.textLength; // the shared parser still holds this head (see responseHead)
  let size = textLen + 2 + bodyLen;
  for (let k = 0; k < editCount; k++) size += editText[k]!.length - (editTo[k]! - editFrom[k]!);
  let out = sharedOut;
  if (out === null || out.length < size) {
    out = size <= OUT_BUFFER_BYTES ? takeBuffer(OUT_BUFFER_BYTES) : Buffer.allocUnsafe(size);
    if (size <= OUT_BUFFER_BYTES) sharedOut = out;
  }
  let o = 0;
  let cur = 0;
  for (let k = 0; k < editCount; k++) {
    const from = editFrom[k]!;
    if (from > cur) o += src.copy(out, o, at + cur, at + from);
    const t = editText[k]!;
    if (typeof t !== 'string') o += t.copy(out, o);
    else if (t.length > 0) o += out.write(t, o, 'latin1');
    cur = editTo[k]!;
  }
  if (cur < textLen) o += src.copy(out, o, at + cur, at + textLen);
  out[o++] = 0x0d;
  out[o++] = 0x0a;
  if (body !== null) o += body.copy(out, o, bodyAt, bodyAt + bodyLen);
  const ok = conn.out.write(out.subarray(0, o));
  if (conn.out.holds && out === sharedOut) sharedOut = null;
  return ok;
}
