/**
 * Allocation-free 32-bit hashes for load balancing. Every function returns an unsigned 32-bit
 * integer and reads its input in place (no substrings, no buffers), so it is safe on the hot path.
 */
import { fmix32 } from '../util/murmur.js';

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;


/** FNV-1a over the UTF-16 code units of `s[start..end)`, lower-casing ASCII A-Z when `fold`. */
function fnv1a(s: string, start: number, end: number, fold: boolean): number {
  let h = FNV_OFFSET;
  for (let i = start; i < end; i++) {
    let c = s.charCodeAt(i);
    if (fold && c >= 65 && c <= 90) c |= 0x20;
    h = Math.imul(h ^ c, FNV_PRIME);
  }
  return h >>> 0;
}

/** Hash of any string: FNV-1a 32 then fmix32. Equal strings give equal hashes across processes. */
export function hashString(s: string): number {
  return fmix32(fnv1a(s, 0, s.length, false));
}

/** Parses dotted-quad IPv4 in `s[start..]` to its uint32 value, or -1 when it is not exactly that. */
function parseV4(s: string, start: number): number {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = start; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return -1;
    } else if (c === 46) {
      if (digits === 0 || ++dots > 3) return -1;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || digits === 0) return -1;
  return (value * 256 + octet) >>> 0;
}

/** Parses `h1:h2` (two 1-4 digit hex groups, the hex form of a v4-mapped tail) or returns -1. */
function parseHexPair(s: string, start: number): number {
  let value = 0;
  let group = 0;
  let digits = 0;
  let colons = 0;
  for (let i = start; i < s.length; i++) {
    const c = s.charCodeAt(i) | 0x20;
    let d: number;
    if (c >= 48 && c <= 57) d = c - 48;
    else if (c >= 97 && c <= 102) d = c - 87;
    else if (c === 58 /* ':' (| 0x20 keeps it) */) {
      if (digits === 0 || ++colons > 1) return -1;
      value = group;
      group = 0;
      digits = 0;
      continue;
    } else return -1;
    group = group * 16 + d;
    if (++digits > 4) return -1;
  }
  if (colons !== 1 || digits === 0) return -1;
  return (value * 65536 + group) >>> 0;
}

/** True when `s` starts with `::ffff:` (any case), the IPv4-mapped IPv6 prefix. */
function hasV4MappedPrefix(s: string): boolean {
  if (s.length < 8 || s.charCodeAt(0) !== 58 || s.charCodeAt(1) !== 58 || s.charCodeAt(6) !== 58) return false;
  for (let i = 2; i < 6; i++) if ((s.charCodeAt(i) | 0x20) !== 102) return false;
  return true;
}

/** Domain separator so an IPv4 address and a string of the same bits do not share a hash by design. */
const V4_SEED = 0x9e3779b9;

/**
 * Hash of a client address in text form. IPv4 (`10.0.0.1`) and its IPv4-mapped IPv6 forms
 * (`::ffff:10.0.0.1`, `::ffff:a00:1`) hash identically, because dual-stack sockets report the same
 * client either way and stickiness must not depend on which listener accepted it. IPv4 is hashed as
 * its 32-bit value through fmix32, so consecutive addresses spread evenly over `hash % n`. Other
 * text (IPv6) is hashed case-insensitively; IPv6 spellings that differ in zero compression are not
 * normalised.
 */
export function hashAddress(ip: string): number {
  let v4 = parseV4(ip, 0);
  if (v4 < 0 && hasV4MappedPrefix(ip)) {
    v4 = parseV4(ip, 7);
    if (v4 < 0) v4 = parseHexPair(ip, 7);
  }
  if (v4 >= 0) return fmix32((v4 ^ V4_SEED) >>> 0);
  return fmix32(fnv1a(ip, 0, ip.length, true));
}

/**
 * Combines two uint32 into one well-avalanched uint32 (murmur3 block step on `b` over seed `a`, then
 * fmix32). Order matters: mix32(a, b) and mix32(b, a) differ. Used by rendezvous hashing, where every
 * (client, server) pair needs an independent-looking score.
 */
export function mix32(a: number, b: number): number {
  let k = Math.imul(b, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  let h = a ^ k;
  h = (h << 13) | (h >>> 19);
  h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  return fmix32(h ^ 8);
}
