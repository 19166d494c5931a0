/**
 * HAProxy dynamic cookies (`cookie NAME ... dynamic` + `dynamic-cookie-key KEY`).
 *
 * HAProxy (srv_set_dyncookie in src/server.c) gives every server without an explicit `cookie`
 * the value XXH64(buf, seed 0) printed with "%016llx", where buf is
 *   - the key's bytes (strlen, no terminator),
 *   - the server address in network order: 4 bytes (sin_addr) for IPv4, 16 (sin6_addr) for IPv6,
 *   - htonl(svc_port) copied as 4 bytes, i.e. the port as a 32-bit big-endian integer.
 * Reproducing it exactly lets a cluster node and a real HAProxy fronting the same servers agree
 * on cookie values, so clients keep their persistence across either.
 */
import { xxh64 } from './xxh64.js';

const encoder = new TextEncoder();

function parseIPv4(s: string): Uint8Array | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i] as string;
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

function parseGroups(s: string): number[] | undefined {
  if (s === '') return [];
  const groups: number[] = [];
  const parts = s.split(':');
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i] as string;
    if (i === parts.length - 1 && p.includes('.')) {
      const v4 = parseIPv4(p);
      if (!v4) return undefined;
      groups.push(((v4[0] as number) << 8) | (v4[1] as number), ((v4[2] as number) << 8) | (v4[3] as number));
    } else {
      if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return undefined;
      groups.push(parseInt(p, 16));
    }
  }
  return groups;
}

function parseIPv6(s: string): Uint8Array | undefined {
  // The zone index only selects an interface; HAProxy hashes sin6_addr, which excludes it.
  const pct = s.indexOf('%');
  if (pct >= 0) s = s.slice(0, pct);
  const dbl = s.indexOf('::');
  let groups: number[];
  if (dbl >= 0) {
    if (s.indexOf('::', dbl + 1) >= 0) return undefined;
    const head = parseGroups(s.slice(0, dbl));
    const tail = parseGroups(s.slice(dbl + 2));
    if (!head || !tail || head.length + tail.length > 7) return undefined;
    groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  } else {
    const all = parseGroups(s);
    if (!all || all.length !== 8) return undefined;
    groups = all;
  }
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

/**
 * Returns the address bytes HAProxy hashes: 4 for a dotted IPv4 address, 16 for anything else
 * that parses as IPv6 (including `::ffff:a.b.c.d`, which HAProxy keeps as AF_INET6).
 * Brackets around an IPv6 literal are accepted. Throws on anything that is not an IP literal.
 */
export function addressBytes(address: string): Uint8Array {
  let a = address.trim();
  if (a.startsWith('[') && a.endsWith(']')) a = a.slice(1, -1);
  const bytes = a.includes(':') ? parseIPv6(a) : parseIPv4(a);
  if (!bytes) throw new Error(`not an IP address literal: '${address}'`);
  return bytes;
}

/** Returns the exact buffer HAProxy feeds to XXH64 for this key, server address and port. */
export function dynamicCookieInput(key: string, address: string, port: number): Uint8Array {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid port: ${port}`);
  const k = encoder.encode(key);
  const addr = addressBytes(address);
  const buf = new Uint8Array(k.length + addr.length + 4);
  buf.set(k, 0);
  buf.set(addr, k.length);
  new DataView(buf.buffer).setUint32(k.length + addr.length, port, false);
  return buf;
}

/** Returns the cookie value HAProxy assigns to a server at `address`:`port` under `key`: 16 lowercase hex digits. */
export function dynamicCookieValue(key: string, address: string, port: number): string {
  return xxh64(dynamicCookieInput(key, address, port), 0n).toString(16).padStart(16, '0');
}
