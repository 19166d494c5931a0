/**
 * IP literal parsing shared by stick-table keys and dynamic cookies: strict RFC 4291 / dotted-quad
 * text into network-order bytes, written into a caller's buffer so the table's hot path allocates
 * nothing.
 */

/** Scratch for IPv6 groups; parsing is synchronous so one module-level array is safe. */
const groups = new Uint16Array(8);

/** Parses a dotted quad in s[start, end) (no leading zeros, each part <= 255) into buf[off..off+4). */
export function parseIPv4(s: string, start: number, end: number, buf: Uint8Array, off: number): boolean {
  let part = 0;
  let i = start;
  while (part < 4) {
    let v = 0;
    let digits = 0;
    const first = i;
    while (i < end) {
      const c = s.charCodeAt(i);
      if (c < 48 || c > 57) break;
      v = v * 10 + (c - 48);
      digits++;
      i++;
      if (digits > 3) return false;
    }
    if (digits === 0 || v > 255 || (digits > 1 && s.charCodeAt(first) === 48)) return false;
    buf[off + part] = v;
    part++;
    if (part < 4) {
      if (i >= end || s.charCodeAt(i) !== 46) return false;
      i++;
    }
  }
  return i === end;
}

function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** Parses RFC 4291 IPv6 text (with optional trailing dotted quad, no zone) into buf[off..off+16). */
export function parseIPv6(s: string, buf: Uint8Array, off: number): boolean {
  const len = s.length;
  if (len < 2) return false;
  let i = 0;
  let n = 0;
  let dc = -1;
  if (s.charCodeAt(0) === 58) {
    if (s.charCodeAt(1) !== 58) return false;
    dc = 0;
    i = 2;
  }
  while (i < len) {
    if (n >= 8) return false;
    let v = 0;
    let digits = 0;
    let j = i;
    while (j < len) {
      const h = hexVal(s.charCodeAt(j));
      if (h < 0) break;
      v = (v << 4) | h;
      digits++;
      j++;
      if (digits > 4) break;
    }
    if (j < len && s.charCodeAt(j) === 46) {
      if (n > 6) return false;
      if (!parseIPv4(s, i, len, buf, off)) return false;
      groups[n++] = (buf[off]! << 8) | buf[off + 1]!;
      groups[n++] = (buf[off + 2]! << 8) | buf[off + 3]!;
      i = len;
      break;
    }
    if (digits === 0 || digits > 4) return false;
    groups[n++] = v;
    i = j;
    if (i === len) break;
    if (s.charCodeAt(i) !== 58) return false;
    i++;
    if (i === len) return false;
    if (s.charCodeAt(i) === 58) {
      if (dc >= 0) return false;
      dc = n;
      i++;
    }
  }
  if (dc < 0 ? n !== 8 : n > 7) return false;
  const zeros = 8 - n;
  let o = 0;
  for (let k = 0; k < 8; k++) {
    let g: number;
    if (dc < 0 || k < dc) g = groups[k]!;
    else if (k < dc + zeros) g = 0;
    else g = groups[k - zeros]!;
    buf[off + o++] = g >>> 8;
    buf[off + o++] = g & 255;
  }
  return true;
}

/**
 * The bytes of an IP literal in its own family: 4 for a dotted quad, 16 for IPv6 (an IPv4-mapped
 * address stays 16 bytes; a `%zone` suffix is dropped, it only selects an interface). Undefined
 * when the text is not an IP literal.
 */
export function parseIpLiteral(s: string): Uint8Array | undefined {
  if (s.indexOf(':') < 0) {
    const b = new Uint8Array(4);
    return parseIPv4(s, 0, s.length, b, 0) ? b : undefined;
  }
  const pct = s.indexOf('%');
  const b = new Uint8Array(16);
  return parseIPv6(pct >= 0 ? s.slice(0, pct) : s, b, 0) ? b : undefined;
}
