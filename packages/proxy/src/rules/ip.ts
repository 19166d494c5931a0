/**
 * IP address parsing and formatting for sample fetches, `ipmask` and `-m ip` matching.
 *
 * Run-time parsing (`parseIp`) writes into the module-level `IP` scratch instead of returning an
 * object, so matching a client address allocates nothing; callers read `IP` right after the call
 * and before any other parse (the rule engine runs synchronously, one sample at a time).
 * Pattern parsing (`parseIpPattern`) runs at config load and may allocate.
 */

/** Result of the last `parseIp`: `v4` as an unsigned 32-bit integer, or `g` the eight IPv6 groups. */
export const IP = { v4: 0, g: new Uint16Array(8) };

const TMP = new Uint16Array(8);

function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** Strict dotted quad `a.b.c.d` (each 0..255) between `start` and `end`; sets `IP.v4`. */
function parseV4(s: string, start: number, end: number): boolean {
  let parts = 0;
  let v = 0;
  let acc = 0;
  let digits = 0;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      acc = acc * 10 + (c - 48);
      if (++digits > 3 || acc > 255) return false;
    } else if (c === 46) {
      if (digits === 0 || parts === 3) return false;
      v = v * 256 + acc;
      parts++;
      acc = 0;
      digits = 0;
    } else {
      return false;
    }
  }
  if (digits === 0 || parts !== 3) return false;
  IP.v4 = (v * 256 + acc) >>> 0;
  return true;
}

/** IPv6 text (with `::`, an embedded IPv4 tail) between `start` and `end`; sets `IP.g`. */
function parseV6(s: string, start: number, end: number): boolean {
  const g = IP.g;
  let n = 0;
  let dbl = -1;
  let i = start;
  if (end - start >= 2 && s.charCodeAt(start) === 58) {
    if (s.charCodeAt(start + 1) !== 58) return false;
    dbl = 0;
    i = start + 2;
  }
  while (i < end) {
    let j = i;
    let v = 0;
    while (j < end) {
      const h = hexVal(s.charCodeAt(j));
      if (h < 0) break;
      v = v * 16 + h;
      j++;
    }
    const digits = j - i;
    if (j < end && s.charCodeAt(j) === 46) {
      if (n > 6 || !parseV4(s, i, end)) return false;
      TMP[n++] = IP.v4 >>> 16;
      TMP[n++] = IP.v4 & 0xffff;
      i = end;
      break;
    }
    if (digits === 0 || digits > 4 || n >= 8) return false;
    TMP[n++] = v;
    if (j === end) {
      i = j;
      break;
    }
    if (s.charCodeAt(j) !== 58) return false;
    j++;
    if (j < end && s.charCodeAt(j) === 58) {
      if (dbl >= 0) return false;
      dbl = n;
      j++;
    } else if (j === end) {
      return false;
    }
    i = j;
  }
  if (dbl < 0) {
    if (n !== 8) return false;
    for (let k = 0; k < 8; k++) g[k] = TMP[k]!;
    return true;
  }
  if (n > 7) return false;
  const tail = n - dbl;
  for (let k = 0; k < dbl; k++) g[k] = TMP[k]!;
  for (let k = dbl; k < 8 - tail; k++) g[k] = 0;
  for (let k = 0; k < tail; k++) g[8 - tail + k] = TMP[dbl + k]!;
  return true;
}

/**
 * Parses the address text `s.slice(a, b)` (an optional IPv6 `%zone` is ignored): returns 4 (IPv4,
 * in `IP.v4`), 6 (IPv6, in `IP.g`) or 0 when it is not an address. No allocation.
 */
export function parseIp(s: string, a = 0, b = s.length): 0 | 4 | 6 {
  if (b <= a || b - a > 64) return 0;
  if (parseV4(s, a, b)) return 4;
  let colon = false;
  let end = b;
  for (let i = a; i < b; i++) {
    const c = s.charCodeAt(i);
    if (c === 58) colon = true;
    else if (c === 37) {
      end = i;
      break;
    }
  }
  return colon && parseV6(s, a, end) ? 6 : 0;
}

/**
 * When the last parse was IPv6 and the address carries an IPv4 one as HAProxy recognises it for
 * matching IPv4 patterns (`::ffff:a.b.c.d`, `::a.b.c.d`, `2002:a.b.c.d::` 6to4), puts it in `IP.v4`.
 */
export function v6EmbeddedV4(): boolean {
  const g = IP.g;
  if (g[0] === 0x2002) {
    if (g[3] !== 0 || g[4] !== 0 || g[5] !== 0 || g[6] !== 0 || g[7] !== 0) return false;
    IP.v4 = ((g[1]! << 16) | g[2]!) >>> 0;
    return true;
  }
  if (g[0] !== 0 || g[1] !== 0 || g[2] !== 0 || g[3] !== 0 || g[4] !== 0) return false;
  if (g[5] !== 0 && g[5] !== 0xffff) return false;
  IP.v4 = ((g[6]! << 16) | g[7]!) >>> 0;
  return true;
}

/** Whether the last IPv6 parse is an IPv4-mapped address (`::ffff:a.b.c.d`); sets `IP.v4` when so. */
export function v6Mapped(): boolean {
  const g = IP.g;
  if (g[0] !== 0 || g[1] !== 0 || g[2] !== 0 || g[3] !== 0 || g[4] !== 0 || g[5] !== 0xffff) return false;
  IP.v4 = ((g[6]! << 16) | g[7]!) >>> 0;
  return true;
}

/** Writes `IP.g` as the IPv4-mapped form of `v4`. */
export function v4ToMapped(v4: number): void {
  const g = IP.g;
  g[0] = g[1] = g[2] = g[3] = g[4] = 0;
  g[5] = 0xffff;
  g[6] = v4 >>> 16;
  g[7] = v4 & 0xffff;
}

export function formatV4(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/** RFC 5952 text of eight groups: lower case, the longest run (2+) of zero groups as `::`. */
export function formatV6(g: ArrayLike<number>): string {
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestAt) {
      out += '::';
      i += bestLen - 1;
      continue;
    }
    if (out.length > 0 && !out.endsWith(':')) out += ':';
    out += (g[i] ?? 0).toString(16);
  }
  return out;
}

/** A compiled address pattern: an IPv4 network (`net`, `mask`) or an IPv6 prefix (`g`, `bits`). */
export type IpPattern = { v: 4; net: number; mask: number } | { v: 6; g: Uint16Array; bits: number };

/** IPv4 netmask from a bit count 0..32 or a dotted mask; undefined when invalid. */
export function parseV4Mask(text: string): number | undefined {
  if (/^\d{1,2}$/.test(text)) {
    const bits = Number(text);
    if (bits > 32) return undefined;
    return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  }
  return parseV4(text, 0, text.length) ? IP.v4 : undefined;
}

/**
 * HAProxy's IPv4 pattern text: an address in dotted form where omitted octets are zeros before the
 * last one (`127.1` = 127.0.0.1, `10.12` = 10.0.0.12, as inet_aton), optionally `/bits` or
 * `/dotted-mask`. IPv6 patterns take `/bits` only. Host names are refused (no DNS at load).
 */
export function parseIpPattern(text: string): IpPattern | undefined {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const maskText = slash < 0 ? undefined : text.slice(slash + 1);
  if (addr.includes(':')) {
    if (!parseV6(addr, 0, addr.length)) return undefined;
    let bits = 128;
    if (maskText !== undefined) {
      if (!/^\d{1,3}$/.test(maskText)) return undefined;
      bits = Number(maskText);
      if (bits > 128) return undefined;
    }
    const g = new Uint16Array(IP.g);
    maskV6(g, bits);
    return { v: 6, g, bits };
  }
  if (!/^\d{1,10}(\.\d{1,10}){0,3}$/.test(addr)) return undefined;
  const parts = addr.split('.').map(Number);
  let v = 0;
  for (let i = 0; i < parts.length - 1; i++) {
    if (parts[i]! > 255) return undefined;
    v = v * 256 + parts[i]!;
  }
  const restBytes = 4 - (parts.length - 1);
  const last = parts[parts.length - 1]!;
  if (last >= 2 ** (8 * restBytes)) return undefined;
  v = v * 2 ** (8 * restBytes) + last;
  let mask = 0xffffffff;
  if (maskText !== undefined) {
    const m = parseV4Mask(maskText);
    if (m === undefined) return undefined;
    mask = m;
  }
  return { v: 4, net: (v & mask) >>> 0, mask };
}

/** Zeroes the bits of `g` after the first `bits`. */
export function maskV6(g: Uint16Array, bits: number): void {
  for (let i = 0; i < 8; i++) {
    const keep = bits - i * 16;
    if (keep >= 16) continue;
    g[i] = keep <= 0 ? 0 : g[i]! & ((0xffff << (16 - keep)) & 0xffff);
  }
}

/** Whether `IP.g` lies in the IPv6 prefix (`p` already masked). */
export function inV6(p: Uint16Array, bits: number): boolean {
  const g = IP.g;
  for (let i = 0; i < 8; i++) {
    const keep = bits - i * 16;
    if (keep <= 0) return true;
    if (keep >= 16) {
      if (g[i] !== p[i]) return false;
    } else {
      const m = (0xffff << (16 - keep)) & 0xffff;
      return (g[i]! & m) === p[i];
    }
  }
  return true;
}
