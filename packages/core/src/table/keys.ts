/**
 * Stick table keys: canonical text (what travels between peers and what admin output shows) and the
 * fixed-width binary form stored in a table's key slab.
 *
 * Binary layout per type (width is always a multiple of 4 so keys compare and hash as 32-bit words):
 * - `ip`, `ipv6`: 16 bytes, network order; IPv4 stored as IPv4-mapped IPv6 (::ffff:a.b.c.d), so
 *   `1.2.3.4` and `::ffff:1.2.3.4` are the same key.
 * - `integer`: 8 bytes, two's complement int64 as two little-endian 32-bit words (low, high).
 * - `string`: 2-byte little-endian length, then up to `keyLen` bytes of UTF-8, zero padded.
 * Encoding is canonical: two texts encode to the same bytes iff they are the same key.
 */
import type { StickKeyType } from '../config/model.js';
import { fmix32, mixWord } from '../util/murmur.js';
import { parseIPv4, parseIPv6 } from '../util/ip.js';

/** Bytes per key in the slab for a table of this type. */
export function keyWidth(type: StickKeyType, keyLen: number): number {
  switch (type) {
    case 'ip':
    case 'ipv6':
      return 16;
    case 'integer':
      return 8;
    case 'string':
      return (Math.max(0, keyLen) + 2 + 3) & ~3;
  }
}

function isMapped(buf: Uint8Array, off: number): boolean {
  for (let k = 0; k < 10; k++) if (buf[off + k] !== 0) return false;
  return buf[off + 10] === 255 && buf[off + 11] === 255;
}

function formatIPv4(buf: Uint8Array, off: number): string {
  return `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`;
}

/** RFC 5952 text of 16 address bytes: lowercase, no leading zeros, longest (first on tie) run of >= 2 zero groups as '::'. */
function formatIPv6(buf: Uint8Array, off: number): string {
  if (isMapped(buf, off)) return '::ffff:' + formatIPv4(buf, off + 12);
  let bestStart = -1;
  let bestLen = 0;
  let runStart = -1;
  for (let k = 0; k <= 8; k++) {
    const zero = k < 8 && buf[off + 2 * k] === 0 && buf[off + 2 * k + 1] === 0;
    if (zero) {
      if (runStart < 0) runStart = k;
    } else if (runStart >= 0) {
      const l = k - runStart;
      if (l > bestLen) {
        bestLen = l;
        bestStart = runStart;
      }
      runStart = -1;
    }
  }
  if (bestLen < 2) bestStart = -1;
  let out = '';
  for (let k = 0; k < 8; k++) {
    if (k === bestStart) {
      out += '::';
      k += bestLen - 1;
      continue;
    }
    if (out.length > 0 && !out.endsWith(':')) out += ':';
    out += ((buf[off + 2 * k]! << 8) | buf[off + 2 * k + 1]!).toString(16);
  }
  return out;
}

const TWO32 = 4294967296;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** Writes a 64-bit two's complement value given as sign + magnitude (magnitude < 2^53) as (lo, hi) LE words. */
function writeInt64Small(neg: boolean, mag: number, buf: Uint8Array, off: number): void {
  let lo = mag % TWO32 >>> 0;
  let hi = Math.floor(mag / TWO32) >>> 0;
  if (neg && mag !== 0) {
    lo = (~lo + 1) >>> 0;
    hi = (~hi + (lo === 0 ? 1 : 0)) >>> 0;
  }
  writeU32(buf, off, lo);
  writeU32(buf, off + 4, hi);
}

function writeU32(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v & 255;
  buf[off + 1] = (v >>> 8) & 255;
  buf[off + 2] = (v >>> 16) & 255;
  buf[off + 3] = v >>> 24;
}

function readU32(buf: Uint8Array, off: number): number {
  return (buf[off]! | (buf[off + 1]! << 8) | (buf[off + 2]! << 16) | (buf[off + 3]! << 24)) >>> 0;
}

/** Parses `[+-]?[0-9]+` within int64 into buf[off..off+8). */
function parseInteger(s: string, buf: Uint8Array, off: number): boolean {
  const len = s.length;
  let i = 0;
  let neg = false;
  const c0 = s.charCodeAt(0);
  if (c0 === 45 || c0 === 43) {
    neg = c0 === 45;
    i = 1;
  }
  if (i >= len) return false;
  let mag = 0;
  for (let j = i; j < len; j++) {
    const c = s.charCodeAt(j);
    if (c < 48 || c > 57) return false;
    mag = mag * 10 + (c - 48);
  }
  if (len - i <= 15) {
    writeInt64Small(neg, mag, buf, off);
    return true;
  }
  const big = BigInt(s);
  if (big < INT64_MIN || big > INT64_MAX) return false;
  const u = BigInt.asUintN(64, big);
  writeU32(buf, off, Number(u & 0xffffffffn));
  writeU32(buf, off + 4, Number(u >> 32n));
  return true;
}

function formatInteger(buf: Uint8Array, off: number): string {
  const lo = readU32(buf, off);
  const hi = readU32(buf, off + 4);
  if (hi < 0x200000) return String(hi * TWO32 + lo);
  if (hi >= 0xffe00001) {
    // Negative with magnitude < 2^53: negate in 64 bits.
    const nlo = (~lo + 1) >>> 0;
    const nhi = (~hi + (nlo === 0 ? 1 : 0)) >>> 0;
    return String(-(nhi * TWO32 + nlo));
  }
  return BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo)).toString();
}

/**
 * Converts key text to and from a table's binary key form. `encode` never allocates for ip, ipv6,
 * and integer keys of up to 15 digits; it is the hot path of every table operation.
 */
export class KeyCodec {
  readonly type: StickKeyType;
  readonly keyLen: number;
  readonly width: number;

  constructor(type: StickKeyType, keyLen: number) {
    this.type = type;
    this.keyLen = Math.max(0, Math.min(keyLen, 65535));
    this.width = keyWidth(type, this.keyLen);
  }

  /**
   * Writes the binary key of `raw` into buf[off..off+width) (all bytes, padding zeroed).
   * Returns false if `raw` is not a valid key of this type (buf content is then unspecified).
   */
  encode(raw: string, buf: Buffer, off: number): boolean {
    switch (this.type) {
      case 'ip':
      case 'ipv6': {
        if (raw.indexOf(':') >= 0) return parseIPv6(raw, buf, off);
        if (!parseIPv4(raw, 0, raw.length, buf, off + 12)) return false;
        for (let k = 0; k < 10; k++) buf[off + k] = 0;
        buf[off + 10] = 255;
        buf[off + 11] = 255;
        return true;
      }
      case 'integer':
        return raw.length > 0 && parseInteger(raw, buf, off);
      case 'string': {
        // Buffer#write never writes a partial character, so truncation keeps valid UTF-8.
        const n = raw.length === 0 ? 0 : buf.write(raw, off + 2, this.keyLen, 'utf8');
        buf[off] = n & 255;
        buf[off + 1] = n >>> 8;
        buf.fill(0, off + 2 + n, off + this.width);
        return true;
      }
    }
  }

  /** Canonical text of the binary key at buf[off..off+width). */
  decode(buf: Buffer, off: number): string {
    switch (this.type) {
      case 'ip':
        return isMapped(buf, off) ? formatIPv4(buf, off + 12) : formatIPv6(buf, off);
      case 'ipv6':
        return formatIPv6(buf, off);
      case 'integer':
        return formatInteger(buf, off);
      case 'string': {
        const n = buf[off]! | (buf[off + 1]! << 8);
        return buf.toString('utf8', off + 2, off + 2 + n);
      }
    }
  }
}

const codecs = new Map<string, { codec: KeyCodec; scratch: Buffer }>();

/**
 * Canonical text of a key for a table of `type` (and `keyLen` for strings), or undefined if `raw`
 * is not a valid key of that type. See types.ts for the canonical forms.
 */
export function canonicalKey(type: StickKeyType, keyLen: number, raw: string): string | undefined {
  const id = type === 'string' ? `s${keyLen}` : type;
  let c = codecs.get(id);
  if (!c) {
    const codec = new KeyCodec(type, keyLen);
    c = { codec, scratch: Buffer.alloc(codec.width) };
    if (codecs.size < 64) codecs.set(id, c);
  }
  if (!c.codec.encode(raw, c.scratch, 0)) return undefined;
  return c.codec.decode(c.scratch, 0);
}

/**
 * 32-bit hash (murmur3 mixing) of `words` 32-bit words starting at word index `at`.
 * Seeded per table so clients cannot aim keys at one probe chain.
 */
export function hashKeyWords(w: Uint32Array, at: number, words: number, seed: number): number {
  let h = seed | 0;
  for (let k = 0; k < words; k++) h = mixWord(h, w[at + k]!);
  return fmix32(h ^ (words << 2));
}

/** 32-bit hash of a JS string (UTF-16 code units), for names in digests. */
export function hashName(s: string, seed: number): number {
  let h = seed | 0;
  for (let k = 0; k < s.length; k++) h = mixWord(h, s.charCodeAt(k));
  return fmix32(h ^ s.length);
}
