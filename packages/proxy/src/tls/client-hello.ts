/**
 * A small reader of the first TLS flight: the ClientHello a listener looks at before the TLS
 * handshake starts, for the three things it chooses by (tls/accept.ts): the server name (SNI),
 * the ALPN list, and the 16-byte name of the key that made the session ticket the client offers
 * (TLS 1.3: the first `pre_shared_key` identity; TLS 1.2: the `session_ticket` extension).
 *
 * It never throws and never reads past what it was given: every length is checked against the
 * bytes there are. The ClientHello may span several handshake records; at most MAX_HELLO_BYTES
 * of records are read (a larger hello is refused). Anything that is not a well-formed
 * ClientHello is refused with a reason; OpenSSL checks the rest during the handshake.
 */

/** Most record bytes read for a ClientHello: one full record (16 KiB) and its header. */
export const MAX_HELLO_BYTES = 16384 + 5;

/** Longest server name kept (DNS names are at most 253 characters). */
const MAX_SNI = 255;
/** Most ALPN protocols kept. */
const MAX_ALPN = 16;

export interface ClientHelloInfo {
  /** Lower-case server name, when the client sent one. */
  sni: string | undefined;
  /** ALPN protocols offered, in the client's order. */
  alpn: string[] | undefined;
  /** First 16 bytes of the offered ticket (the issuing key's name), when there is one. */
  ticketName: Buffer | undefined;
}

export const enum HelloStatus {
  /** More bytes are needed. */
  Incomplete = 0,
  Ok = 1,
  Bad = 2,
}

export type HelloRefusal = 'http-on-tls' | 'not-tls' | 'bad-hello' | 'hello-too-large';

export type HelloResult =
  | { status: HelloStatus.Incomplete }
  | { status: HelloStatus.Ok; info: ClientHelloInfo }
  | { status: HelloStatus.Bad; reason: HelloRefusal };

const INCOMPLETE: HelloResult = { status: HelloStatus.Incomplete };
const bad = (reason: HelloRefusal): HelloResult => ({ status: HelloStatus.Bad, reason });

/** `buf` starts like an HTTP/1 request line: an upper-case method then a space. */
function looksLikeHttp(buf: Uint8Array): boolean {
  let i = 0;
  while (i < buf.length && i < 16 && buf[i]! >= 0x41 && buf[i]! <= 0x5a) i++;
  return i >= 3 && (i === buf.length || buf[i] === 0x20);
}

/**
 * Reads the ClientHello from the first bytes a client sent (`buf[0, len)`). Incomplete while the
 * hello's records have not all arrived (the caller reads more, up to MAX_HELLO_BYTES).
 */
export function parseClientHello(buf: Uint8Array, len = buf.length): HelloResult {
  if (len === 0) return INCOMPLETE;
  const b0 = buf[0]!;
  if (b0 !== 22) {
    if (b0 >= 0x41 && b0 <= 0x5a) {
      if (len < 4) return INCOMPLETE;
      return bad(looksLikeHttp(buf.subarray(0, len)) ? 'http-on-tls' : 'not-tls');
    }
    return bad('not-tls');
  }
  // Reassemble the handshake message from consecutive handshake records.
  let at = 0;
  let body: Uint8Array | null = null;
  let msgLen = -1;
  const parts: Uint8Array[] = [];
  let have = 0;
  while (at + 5 <= len) {
    if (buf[at] !== 22) return bad('bad-hello');
    if (buf[at + 1] !== 3) return bad('not-tls');
    const rlen = (buf[at + 3]! << 8) | buf[at + 4]!;
    if (rlen === 0 || rlen > 16384) return bad('bad-hello');
    if (at + 5 + rlen > len) {
      if (at + 5 + rlen > MAX_HELLO_BYTES) return bad('hello-too-large');
      return INCOMPLETE;
    }
    parts.push(buf.subarray(at + 5, at + 5 + rlen));
    have += rlen;
    at += 5 + rlen;
    if (msgLen < 0 && have >= 4) {
      const first = parts.length === 1 ? parts[0]! : concat(parts, have);
      if (first[0] !== 1) return bad('bad-hello');
      msgLen = (first[1]! << 16) | (first[2]! << 8) | first[3]!;
      if (4 + msgLen > MAX_HELLO_BYTES) return bad('hello-too-large');
    }
    if (msgLen >= 0 && have >= 4 + msgLen) {
      body = (parts.length === 1 ? parts[0]! : concat(parts, have)).subarray(4, 4 + msgLen);
      break;
    }
  }
  if (body === null) return at + 5 > MAX_HELLO_BYTES ? bad('hello-too-large') : INCOMPLETE;
  const info = readHelloBody(body);
  return info === null ? bad('bad-hello') : { status: HelloStatus.Ok, info };
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** The ClientHello body (after the 4-byte handshake header); null when malformed. */
function readHelloBody(h: Uint8Array): ClientHelloInfo | null {
  const n = h.length;
  let p = 2 + 32; // legacy_version, random
  if (p + 1 > n) return null;
  p += 1 + h[p]!; // legacy_session_id
  if (p + 2 > n) return null;
  const cs = (h[p]! << 8) | h[p + 1]!;
  if (cs === 0 || (cs & 1) !== 0) return null;
  p += 2 + cs;
  if (p + 1 > n) return null;
  p += 1 + h[p]!; // compression methods
  if (p > n) return null;
  const info: ClientHelloInfo = { sni: undefined, alpn: undefined, ticketName: undefined };
  if (p === n) return info; // no extensions (old clients)
  if (p + 2 > n) return null;
  const extEnd = p + 2 + ((h[p]! << 8) | h[p + 1]!);
  if (extEnd > n) return null;
  p += 2;
  while (p < extEnd) {
    if (p + 4 > extEnd) return null;
    const type = (h[p]! << 8) | h[p + 1]!;
    const elen = (h[p + 2]! << 8) | h[p + 3]!;
    const d = p + 4;
    const e = d + elen;
    if (e > extEnd) return null;
    if (type === 0) {
      if (!readSni(h, d, e, info)) return null;
    } else if (type === 16) {
      if (!readAlpn(h, d, e, info)) return null;
    } else if (type === 35) {
      if (elen >= 16 && info.ticketName === undefined) info.ticketName = Buffer.from(h.subarray(d, d + 16));
    } else if (type === 41) {
      // pre_shared_key: identities<7..2^16-1>, each identity<1..2^16-1> + obfuscated_ticket_age(4).
      if (d + 4 > e) return null;
      const idsEnd = d + 2 + ((h[d]! << 8) | h[d + 1]!);
      if (idsEnd > e || d + 4 > idsEnd) return null;
      const ilen = (h[d + 2]! << 8) | h[d + 3]!;
      if (d + 4 + ilen + 4 > idsEnd) return null;
      // A TLS 1.3 ticket wins over a TLS 1.2 one: this is the one OpenSSL will try.
      if (ilen >= 16) info.ticketName = Buffer.from(h.subarray(d + 4, d + 20));
    }
    p = e;
  }
  return info;
}

function readSni(h: Uint8Array, d: number, e: number, info: ClientHelloInfo): boolean {
  if (d === e) return true; // an empty server_name (servers send it back so)
  if (d + 2 > e) return false;
  const listEnd = d + 2 + ((h[d]! << 8) | h[d + 1]!);
  if (listEnd > e) return false;
  let p = d + 2;
  while (p + 3 <= listEnd) {
    const kind = h[p]!;
    const l = (h[p + 1]! << 8) | h[p + 2]!;
    if (p + 3 + l > listEnd) return false;
    if (kind === 0 && info.sni === undefined && l > 0 && l <= MAX_SNI) {
      let s = '';
      for (let i = p + 3; i < p + 3 + l; i++) {
        const c = h[i]!;
        if (c <= 0x20 || c >= 0x7f) return false; // host names are printable ASCII
        s += String.fromCharCode(c >= 0x41 && c <= 0x5a ? c + 32 : c);
      }
      info.sni = s;
    }
    p += 3 + l;
  }
  return p === listEnd;
}

function readAlpn(h: Uint8Array, d: number, e: number, info: ClientHelloInfo): boolean {
  if (d + 2 > e) return false;
  const listEnd = d + 2 + ((h[d]! << 8) | h[d + 1]!);
  if (listEnd > e) return false;
  const out: string[] = [];
  let p = d + 2;
  while (p < listEnd) {
    const l = h[p]!;
    if (l === 0 || p + 1 + l > listEnd) return false;
    if (out.length < MAX_ALPN) out.push(Buffer.from(h.subarray(p + 1, p + 1 + l)).toString('latin1'));
    p += 1 + l;
  }
  info.alpn = out;
  return true;
}
