/**
 * Runtime view of one backend server: configuration resolved to an address, health, admin state,
 * live connection count and the idle upstream connections kept for reuse.
 */
import { loopNow, type ServerConfig, type ServerRef, type CookieTarget } from '@stickmesh/core';
import type { UpstreamConn, UpstreamServer } from '../http/upstream.js';
import type { ServerTls } from '../tls/server-tls.js';

/** HAProxy's administrative states: `drain` serves persistent clients only, `maint` serves nobody. */
export type AdminState = 'ready' | 'drain' | 'maint';

export class RuntimeServer implements ServerRef, CookieTarget, UpstreamServer {
  readonly id: number;
  readonly name: string;
  readonly cfg: ServerConfig;
  /** Resolved IP address used to connect; '' while a DNS-discovered slot has none (never usable). */
  address: string;
  /**
   * Filled from DNS by a `server-template`: persistence (tables) names it by `address:port`, since
   * slot numbers differ between nodes; named servers are named by name.
   */
  readonly discovered: boolean;
  port: number;
  /** The weight in use: `adminWeight` when set, else `baseWeight`. */
  weight: number;
  /** The weight the config gives, or DNS for a discovered slot (SRV weight). */
  baseWeight: number;
  /** A weight set at run time through the admin API (cluster record or node override); undefined: none. */
  adminWeight: number | undefined = undefined;
  /** Connections this thread has open to the server (the whole count when the cell is not shared). */
  private localConns = 0;
  /**
   * With `nbthread` > 1, the node-wide count lives in `connCells[connAt]`, an Int32 in a
   * SharedArrayBuffer every thread adds its opens and closes to with Atomics (threads/view.ts binds
   * it); undefined: this thread's count is the whole count and nothing is shared.
   */
  private connCells: Int32Array | undefined = undefined;
  private connAt = 0;
  cookieValue: string | undefined;
  /** Health as seen by checks (true when checks are off). */
  checkUp = true;
  admin: AdminState;
  readonly backup: boolean;
  /** Idle keep-alive connections, most recently used last (bound: MAX_IDLE_PER_SERVER in http/upstream.ts). */
  readonly idle: UpstreamConn[] = [];
  /** Counters for stats and tests. */
  totalConns = 0;
  connectFailures = 0;
  lastCheckStatus = '';
  /** Why the last connect failed (refused, timeout, TLS verification ...); '' after a success. */
  lastConnectError = '';
  /**
   * Loop-clock times (ms) of this thread's last failed and last successful connect, 0 for never:
   * with `nbthread`, the main thread shows the latest of every thread's (threads/metrics.ts).
   */
  lastConnectErrorAt = 0;
  lastConnectOkAt = 0;
  /** TLS for traffic (`ssl`) and for health checks (`check-ssl`, or `ssl` without a check port); undefined: plain. */
  tls: ServerTls | undefined;
  checkTls: ServerTls | undefined;
  /** The last TLS session the server issued (one per server: the bound), offered by the next connection. */
  tlsSession: Buffer | undefined;

  /** A connect to this server succeeded. */
  connectOk(): void {
    this.lastConnectError = '';
    this.lastConnectOkAt = loopNow();
  }

  /** A connect to this server failed for `reason`. */
  connectFailed(reason: string): void {
    this.lastConnectError = reason;
    this.lastConnectErrorAt = loopNow();
  }

  constructor(id: number, cfg: ServerConfig, address: string, discovered = false, tls?: { traffic: ServerTls | undefined; checks: ServerTls | undefined }) {
    this.id = id;
    this.discovered = discovered;
    this.name = cfg.name;
    this.cfg = cfg;
    this.address = address;
    this.port = cfg.port;
    this.weight = cfg.weight;
    this.baseWeight = cfg.weight;
    this.cookieValue = cfg.cookie;
    this.admin = cfg.disabled ? 'maint' : 'ready';
    this.backup = cfg.backup;
    this.tls = tls?.traffic;
    this.checkTls = tls?.checks;
  }

  /**
   * Connections open to this server from the whole node (every thread), read by leastconn and
   * random picks, the admin API and the drain watch.
   */
  get activeConns(): number {
    const c = this.connCells;
    // A plain read: aligned Int32 reads of shared memory do not tear, and a pick needs a recent
    // value, not an ordered one (Atomics.load costs several times more per server scanned).
    return c === undefined ? this.localConns : c[this.connAt]!;
  }

  /** A connection to the server opened (or started connecting): counts it node-wide. */
  connOpened(): void {
    this.localConns++;
    const c = this.connCells;
    if (c !== undefined) Atomics.add(c, this.connAt, 1);
  }

  /** A connection counted by `connOpened` closed. */
  connClosed(): void {
    this.localConns--;
    const c = this.connCells;
    if (c !== undefined) Atomics.sub(c, this.connAt, 1);
  }

  /**
   * Moves this server's count to cell `at` of `cells` (shared by every thread of the node), or
   * back to a thread-local count with `undefined`. This thread's open connections move with it:
   * they leave the old cell and join the new one, so a close after the move still balances its open.
   */
  bindConns(cells: Int32Array | undefined, at = 0): void {
    if (cells === this.connCells && at === this.connAt) return;
    const old = this.connCells;
    if (old !== undefined) Atomics.sub(old, this.connAt, this.localConns);
    this.connCells = cells;
    this.connAt = at;
    if (cells !== undefined) Atomics.add(cells, at, this.localConns);
  }

  /** This thread's open connections to the server (its share of `activeConns`). */
  get threadConns(): number {
    return this.localConns;
  }

  /**
   * Points the server at a discovered target (address, port, weight), or empties it. The DNS
   * weight is the base weight; a weight set at run time (`adminWeight`) keeps winning over it. A
   * TLS session belongs to the machine that issued it, so a new address forgets it.
   */
  setTarget(t: { address: string; port: number; weight: number } | undefined): void {
    if ((t?.address ?? '') !== this.address) this.tlsSession = undefined;
    this.address = t?.address ?? '';
    this.port = t?.port ?? this.cfg.port;
    this.baseWeight = t?.weight ?? this.cfg.weight;
    this.weight = this.adminWeight ?? this.baseWeight;
  }

  /** May serve a client that is already bound to it (cookie or table): up and not in maintenance. */
  get usable(): boolean {
    return this.checkUp && this.admin !== 'maint' && this.address !== '';
  }

  /** May receive new clients from the balancer. */
  get pickable(): boolean {
    return this.checkUp && this.admin === 'ready' && this.weight > 0 && this.address !== '';
  }

  /** Hash identity shared by every node: the address for discovered servers, else the name. */
  get identity(): string {
    return this.discovered ? this.addrKey : this.name;
  }

  /** The key persistence stores for this server when it is named by address. */
  get addrKey(): string {
    return `${this.address}:${this.port}`;
  }

  /** Closes every idle connection (server going down, reload, shutdown). */
  dropIdle(): void {
    while (this.idle.length > 0) this.idle.pop()!.destroy();
  }
}
