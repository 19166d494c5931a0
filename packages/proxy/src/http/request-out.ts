/**
 * The request head sent to the server, rendered once when the request starts (from the shared
 * request parser, while it still holds this request's head) and kept in `reqHead`, so a retry
 * or redispatch sends the same text. Plain functions of the connection: at most one string per
 * request, none when the head goes as received (the parser's `wire` string is sent).
 *
 * X-Forwarded-Proto: with `option forwardfor`, a request that came over TLS (an `ssl` bind) is
 * sent with `X-Forwarded-Proto: https`, the client's own copies removed, unless an http-request
 * rule set the header itself (HAProxy adds nothing by itself; its users write
 * `http-request set-header X-Forwarded-Proto https if { ssl_fc }`, which keeps working and wins).
 * Plain HTTP requests get nothing added, as with HAProxy.
 */
import type net from 'node:net';
import type { Exchange } from './exchange.js';

/** The head for the server: copied from the client's bytes, or rebuilt when a cookie rule or a header action edited a header. */
export function requestHeadOut(conn: Exchange): string {
  return conn.reqEdited ? rebuiltRequestHead(conn) : copiedRequestHead(conn);
}

/**
 * The request head for the server: the client's head with hop-by-hop lines cut (unchanged
 * lines keep their bytes, as slices of the parsed text) and our headers appended. When a cookie
 * rule changed a header value, rebuiltRequestHead makes it from the names and values instead.
 */
function copiedRequestHead(conn: Exchange): string {
  const req = conn.req;
  // The head as received, final CRLF included; the text is its first `textLength` characters.
  const wire = req.wire;
  const textLength = req.textLength;
  const upgrade = conn.reqUpgrade;
  const ff = conn.route!.forwardFor;
  let hasXff = false;
  let head = '';
  let cur = 0;
  const fixTe = req.teCanonical ? -1 : req.teAt;
  const xfp = ff !== undefined && conn.tls;
  for (let i = 0; i < req.count; i++) {
    if (dropsRequestHeader(conn, i, upgrade) || i === fixTe || (xfp && req.nameAt(i, XFP))) {
      const from = req.lineStart(i);
      if (from > cur) head += wire.slice(cur, from);
      if (i === fixTe) head += 'transfer-encoding: chunked\r\n';
      cur = req.lineEnd(i);
      continue;
    }
    if (ff && req.nameAt(i, ff.lower)) hasXff = true;
  }
  const added = addedLines(conn, hasXff, upgrade, xfp);
  // Nothing cut and nothing added (the common case): the head goes as received, no new string.
  if (cur === 0) return added.length === 0 ? wire : wire.slice(0, textLength) + added + '\r\n';
  if (cur < textLength) head += wire.slice(cur, textLength);
  return head + added + '\r\n';
}

const XFP = 'x-forwarded-proto';

function rebuiltRequestHead(conn: Exchange): string {
  const req = conn.req;
  const upgrade = conn.reqUpgrade;
  let head = `${req.method} ${req.target} HTTP/1.${req.versionMinor}\r\n`;
  let hasXff = false;
  const ff = conn.route!.forwardFor;
  let xfp = ff !== undefined && conn.tls;
  for (let i = 0; i < req.count; i++) {
    const n = req.names[i]!;
    if (n.length === 0 || dropsRequestHeader(conn, i, upgrade)) continue; // '': removed by a cookie rule
    if (xfp && req.nameAt(i, XFP)) continue;
    if (ff && req.nameAt(i, ff.lower)) hasXff = true;
    if (i === req.teAt) head += 'transfer-encoding: chunked\r\n'; // the only coding a request may carry
    else head += `${n}: ${req.values[i]!}\r\n`;
  }
  const rs = conn.rs;
  if (rs !== null) {
    // Headers rules added (set-header, add-header), after the received ones, as HAProxy appends them.
    for (let i = 0; i < rs.reqAddCount; i++) {
      const n = rs.reqAddNames[i]!;
      if (ff && n.length === ff.lower.length && n.toLowerCase() === ff.lower) hasXff = true;
      if (xfp && n.length === XFP.length && n.toLowerCase() === XFP) xfp = false; // a rule set it: theirs wins
      head += `${n}: ${rs.reqAddValues[i]!}\r\n`;
    }
  }
  return head + addedLines(conn, hasXff, upgrade, xfp) + '\r\n';
}

/** Request header `i` is not forwarded: hop-by-hop, or an Upgrade header without an upgrade. */
function dropsRequestHeader(conn: Exchange, i: number, upgrade: boolean): boolean {
  return conn.req.isHopByHop(i) || (!upgrade && conn.req.nameAt(i, 'upgrade'));
}

/**
 * The lines the proxy adds to a request head after the received ones (X-Forwarded-For,
 * X-Forwarded-Proto, connection), '' when none: the caller ends the head with the empty line.
 */
function addedLines(conn: Exchange, hasXff: boolean, upgrade: boolean, xfp: boolean): string {
  let lines = '';
  const ff = conn.route!.forwardFor;
  if (ff && !(ff.ifNone && hasXff) && !(ff.except && clientIpBlocked(conn, ff.except))) {
    lines += `${ff.header}: ${conn.clientIp}\r\n`;
  }
  if (xfp) lines += 'x-forwarded-proto: https\r\n';
  if (upgrade) lines += 'connection: upgrade\r\n';
  else if (conn.req.versionMinor === 0) lines += 'connection: keep-alive\r\n';
  return lines;
}

function clientIpBlocked(conn: Exchange, list: net.BlockList): boolean {
  return list.check(conn.clientIp, conn.clientIp.includes(':') ? 'ipv6' : 'ipv4');
}
