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
import { parseIpLiteral } from '../util/ip.js';

const encoder = new TextEncoder();

/**
 * Returns the address bytes HAProxy hashes: 4 for a dotted IPv4 address, 16 for anything else
 * that parses as IPv6 (including `::ffff:a.b.c.d`, which HAProxy keeps as AF_INET6).
 * Brackets around an IPv6 literal are accepted. Throws on anything that is not an IP literal.
 */
export function addressBytes(address: string): Uint8Array {
  let a = address.trim();
  if (a.startsWith('[') && a.endsWith(']')) a = a.slice(1, -1);
  const bytes = parseIpLiteral(a);
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
