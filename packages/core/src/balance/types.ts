/**
 * Balancer contract shared by every algorithm. Balancers are rebuilt off the hot path whenever the
 * candidate set changes (health, weight, membership) and `pick` is the only call on the hot path.
 */

/** What a balancer needs to know about a server. The proxy's runtime server implements this. */
export interface ServerRef {
  /** Stable index inside its backend. */
  readonly id: number;
  readonly name: string;
  /**
   * Name that is the same on every node, for hashing (`consistent`); default `name`. Servers
   * discovered by DNS templates use their address, as slot numbers differ between nodes.
   */
  readonly identity?: string;
  /** Effective weight, 0..256. A weight of 0 is never picked. */
  weight: number;
  /** Connections currently open to this server; maintained by the proxy, read by leastconn/random. */
  activeConns: number;
}

export interface Balancer<S extends ServerRef = ServerRef> {
  readonly algorithm: string;
  /**
   * Replace the candidate set with `servers` (already filtered to the usable ones: up, not in
   * maintenance, primaries or, when no primary is usable, backups). Never called per request.
   */
  rebuild(servers: readonly S[]): void;
  /**
   * Choose a server. `hash` is a 32-bit unsigned hash of the client key (used by `source`; others
   * ignore it). `exclude` is avoided when another candidate exists (retry/redispatch).
   * Returns undefined only when the candidate set is empty.
   */
  pick(hash: number, exclude?: S): S | undefined;
}
