/**
 * One view of the servers per node (`nbthread` > 1).
 *
 * The main thread runs health checks, DNS discovery and the servers' admin state on its own
 * backends; worker threads build the same backends from the same config and run none of that.
 * `ServerViewPublisher` (main) sends each backend's server state to every worker as `sm:view`
 * whenever its candidate set is rebuilt (`RuntimeBackend.onRebuilt`: health, admin state, weight,
 * address), coalesced per event-loop turn and always the whole backend, and a full view (every
 * backend, with the shared connection counts' handle) to a worker that joins or reloads.
 * `ServerViewSubscriber` (worker) applies a view with the methods main uses, then rebuilds the
 * backend once, so its balancer sees what main's sees.
 *
 * Connection counts are not sent: each server's count is an Int32 in a SharedArrayBuffer (one
 * array per backend, `conns:<backend>`, allocated by the publisher in an `Arena`), which every
 * thread changes with Atomics (`RuntimeServer.connOpened/connClosed`) and leastconn reads.
 *
 * Servers are matched by backend name, then by index when the name there agrees, else by name,
 * so a view still applies while main and a worker briefly run different configs (reload).
 *
 * Bounds: the publisher's dirty set and the subscriber's last views hold at most one entry per
 * backend of the current config (a full view replaces the subscriber's whole map); the set of
 * ports is the set of worker threads.
 */
import { Arena, type ArenaHandle } from '@stickmesh/core';
import type { RuntimeBackend } from '../runtime/backend.js';
import type { AdminState, RuntimeServer } from '../runtime/server.js';
import type { ThreadMessage, ThreadPort } from './port.js';

export const VIEW_KIND = 'sm:view';

const ADMIN: readonly AdminState[] = ['ready', 'drain', 'maint'];

/** One backend's servers, column by column (index i = server i of the sending thread's backend). */
export interface BackendView {
  readonly name: string;
  readonly names: string[];
  /** Health as checks see it: 1 up, 0 down. */
  readonly up: Uint8Array;
  /** `lastCheckStatus`: the reason of the last UP/DOWN transition. */
  readonly status: string[];
  /** Index in ADMIN (ready, drain, maint). */
  readonly admin: Uint8Array;
  /** Effective weight, base weight, and the run-time weight (-1: none). */
  readonly weight: Float64Array;
  readonly baseWeight: Float64Array;
  readonly adminWeight: Float64Array;
  /** Address ('' for a discovered slot without one) and port. */
  readonly address: string[];
  readonly port: Uint32Array;
}

export interface ViewMessage extends ThreadMessage {
  readonly t: typeof VIEW_KIND;
  /** A full view replaces every backend the receiver knew; otherwise only the listed ones change. */
  readonly full: boolean;
  /** The publisher's generation (a new one per `setBackends`, i.e. per start and reload of main). */
  readonly gen: number;
  readonly backends: BackendView[];
  /** The shared connection counts (full views of a shared publisher only). */
  readonly conns?: ArenaHandle;
}

export function connsName(backend: string): string {
  return `conns:${backend}`;
}

/** The state of every server of `b`, as a view. */
export function backendView(b: RuntimeBackend): BackendView {
  const n = b.servers.length;
  const v: BackendView = {
    name: b.name,
    names: new Array<string>(n),
    up: new Uint8Array(n),
    status: new Array<string>(n),
    admin: new Uint8Array(n),
    weight: new Float64Array(n),
    baseWeight: new Float64Array(n),
    adminWeight: new Float64Array(n),
    address: new Array<string>(n),
    port: new Uint32Array(n),
  };
  for (let i = 0; i < n; i++) {
    const s = b.servers[i]!;
    v.names[i] = s.name;
    v.up[i] = s.checkUp ? 1 : 0;
    v.status[i] = s.lastCheckStatus;
    v.admin[i] = ADMIN.indexOf(s.admin);
    v.weight[i] = s.weight;
    v.baseWeight[i] = s.baseWeight;
    v.adminWeight[i] = s.adminWeight ?? -1;
    v.address[i] = s.address;
    v.port[i] = s.port;
  }
  return v;
}

/**
 * Main thread: publishes its backends' server state to the worker threads.
 * With `shared`, it also puts every server's connection count in shared memory.
 */
export class ServerViewPublisher {
  private readonly shared: boolean;
  private readonly ports = new Set<ThreadPort>();
  private backends: ReadonlyMap<string, RuntimeBackend> = new Map();
  private arena: Arena | undefined;
  private gen = 0;
  private readonly dirty = new Set<RuntimeBackend>();
  private flushPending = false;
  /** Views sent (full and partial), for stats and tests. */
  sent = 0;

  constructor(opts: { shared: boolean } = { shared: true }) {
    this.shared = opts.shared;
  }

  /**
   * Follows `backends` from now on (at start, and after each reload with the new ones): listens
   * to their rebuilds, puts their connection counts in a new shared arena, and sends every port a
   * full view.
   */
  setBackends(backends: ReadonlyMap<string, RuntimeBackend>): void {
    for (const b of this.backends.values()) if (b.onRebuilt === this.onRebuilt) b.onRebuilt = undefined;
    this.backends = backends;
    this.gen++;
    this.dirty.clear();
    if (this.shared) {
      const arena = new Arena(true);
      for (const b of backends.values()) {
        const cells = arena.i32(connsName(b.name), b.servers.length);
        b.servers.forEach((s, i) => s.bindConns(cells, i));
      }
      this.arena = arena;
    }
    for (const b of backends.values()) b.onRebuilt = this.onRebuilt;
    const full = this.fullView();
    for (const p of this.ports) this.send(p, full);
  }

  /** Adds a worker's port and sends it a full view (a worker that started or reloaded). */
  addPort(port: ThreadPort): void {
    this.ports.add(port);
    this.send(port, this.fullView());
  }

  /** Sends `port` a full view again (after the worker reloaded its config). */
  resend(port: ThreadPort): void {
    this.send(port, this.fullView());
  }

  removePort(port: ThreadPort): void {
    this.ports.delete(port);
  }

  /** Every backend's view, with the shared counts' handle (also for a new worker's `workerData`). */
  fullView(): ViewMessage {
    const backends: BackendView[] = [];
    for (const b of this.backends.values()) backends.push(backendView(b));
    return { t: VIEW_KIND, full: true, gen: this.gen, backends, ...(this.arena ? { conns: this.arena.handle() } : {}) };
  }

  private readonly onRebuilt = (b: RuntimeBackend): void => {
    this.dirty.add(b);
    if (this.flushPending) return;
    this.flushPending = true;
    setImmediate(this.flush);
  };

  /** Sends the backends rebuilt during the last turn, each whole, in one message. */
  private readonly flush = (): void => {
    this.flushPending = false;
    if (this.dirty.size === 0) return;
    const backends: BackendView[] = [];
    for (const b of this.dirty) backends.push(backendView(b));
    this.dirty.clear();
    const msg: ViewMessage = { t: VIEW_KIND, full: false, gen: this.gen, backends };
    for (const p of this.ports) this.send(p, msg);
  };

  private send(port: ThreadPort, msg: ViewMessage): void {
    this.sent++;
    port.post(msg);
  }
}

/**
 * Worker thread: applies the views main sends to this thread's backends. Keeps the last view of
 * each backend, so backends rebuilt by a reload here take the current state before they serve.
 */
export class ServerViewSubscriber {
  private backends: ReadonlyMap<string, RuntimeBackend> = new Map();
  private readonly last = new Map<string, BackendView>();
  private conns: ArenaHandle | undefined;
  /** Views applied, for stats and tests. */
  applied = 0;

  /** Registers for `sm:view` on `port`. */
  constructor(port?: ThreadPort) {
    port?.on(VIEW_KIND, (m) => this.apply(m as ViewMessage));
  }

  /** Follows `backends` (at start and after each reload here) and gives them the last state received. */
  setBackends(backends: ReadonlyMap<string, RuntimeBackend>): void {
    this.backends = backends;
    for (const v of this.last.values()) this.applyBackend(v);
    this.bindAll();
  }

  /** Applies one `sm:view` message. */
  apply(msg: ViewMessage): void {
    this.applied++;
    if (msg.full) {
      this.last.clear();
      if (msg.conns !== undefined) this.conns = msg.conns;
    }
    for (const v of msg.backends) {
      this.last.set(v.name, v);
      this.applyBackend(v);
    }
    if (msg.full) this.bindAll();
  }

  /** Points every server's connection count at the shared cell of its backend, where the layout agrees. */
  private bindAll(): void {
    const handle = this.conns;
    if (!handle) return;
    const arena = new Arena(true, handle);
    for (const b of this.backends.values()) {
      let cells: Int32Array;
      try {
        cells = arena.i32(connsName(b.name), b.servers.length);
      } catch {
        // Main's config has a different server list for this backend (a reload in progress): keep
        // counting here until the next full view.
        continue;
      }
      b.servers.forEach((s, i) => s.bindConns(cells, i));
    }
  }

  private applyBackend(v: BackendView): void {
    const b = this.backends.get(v.name);
    if (!b) return;
    let changed = false;
    let moved = false;
    const n = v.names.length;
    for (let i = 0; i < n; i++) {
      const name = v.names[i]!;
      const at = b.servers[i];
      const s: RuntimeServer | undefined = at !== undefined && at.name === name ? at : b.serverByName(name);
      if (!s) continue;
      const address = v.address[i]!;
      const port = v.port[i]!;
      const aw = v.adminWeight[i]!;
      const adminWeight = aw < 0 ? undefined : aw;
      const baseWeight = v.baseWeight[i]!;
      if (s.address !== address || s.port !== port) {
        s.adminWeight = adminWeight;
        s.setTarget(address === '' ? undefined : { address, port, weight: baseWeight });
        b.refreshCookie(s);
        s.dropIdle();
        moved = true;
        changed = true;
      }
      const up = v.up[i] === 1;
      if (s.checkUp !== up) {
        if (!up) s.dropIdle();
        s.checkUp = up;
        changed = true;
      }
      s.lastCheckStatus = v.status[i]!;
      const admin = ADMIN[v.admin[i]!] ?? 'ready';
      if (s.admin !== admin) {
        if (admin === 'maint') s.dropIdle();
        s.admin = admin;
        changed = true;
      }
      const weight = v.weight[i]!;
      if (s.weight !== weight || s.baseWeight !== baseWeight || s.adminWeight !== adminWeight) {
        s.baseWeight = baseWeight;
        s.adminWeight = adminWeight;
        s.weight = weight;
        changed = true;
      }
    }
    if (moved) b.addressesChanged();
    else if (changed) b.rebuild();
  }
}
