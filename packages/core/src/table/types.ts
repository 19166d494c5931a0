/**
 * Stick table contract shared by the table (core), the peers mesh (peers) and the proxy.
 *
 * Keys travel and are looked up as canonical text: `ip` = IPv4 dotted quad or IPv6 in RFC 5952 form
 * (an IPv4-mapped IPv6 address is stored as its IPv4 form), `ipv6` = RFC 5952 text, `integer` =
 * decimal, `string` = the text itself (truncated to `len` bytes of UTF-8, as HAProxy truncates).
 *
 * Every entry carries a version, a hybrid logical clock stamp: wall milliseconds, a counter, and the
 * writing node's name as tie-break. The newest version wins on every node whatever order updates
 * arrive in, so all nodes converge to the same value.
 */

export interface Version {
  /** Wall clock milliseconds (HLC physical part). */
  wall: number;
  /** HLC logical counter, 0..65535. */
  counter: number;
  /** Writing node's name (tie-break: larger name wins). */
  node: string;
}

/** Total order of versions: wall, then counter, then node name. */
export function compareVersions(a: Version, b: Version): number {
  if (a.wall !== b.wall) return a.wall < b.wall ? -1 : 1;
  if (a.counter !== b.counter) return a.counter < b.counter ? -1 : 1;
  return a.node < b.node ? -1 : a.node > b.node ? 1 : 0;
}

/** The unit of replication and of snapshots. */
export interface TableUpdate {
  /** Canonical key text. */
  key: string;
  /** Server name (`srvkey name`) or `address:port` (`srvkey addr`). */
  server: string;
  /** Remaining lifetime in ms when the update was produced (0 = never expires). */
  ttl: number;
  wall: number;
  counter: number;
  node: string;
  /**
   * Always 0, ignored on receipt. Kept so the peers wire format and snapshot files stay readable
   * by and from older nodes: counters now travel as per-node shares of the table's CounterTable
   * (counters/types.ts), not as a value inside the stick entry.
   */
  connCnt: number;
  httpReqCnt: number;
}

/** Read-only view of one entry (admin, explain, tests). */
export interface EntryView {
  key: string;
  server: string;
  /** Absolute expiry (ms since epoch), 0 = never. */
  expiresAt: number;
  version: Version;
  /** Always 0 (see TableUpdate.connCnt); the counters are in the table's CounterTable. */
  connCnt: number;
  httpReqCnt: number;
}

export type SetResult = 'created' | 'updated' | 'refreshed' | 'unchanged';
