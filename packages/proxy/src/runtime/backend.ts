/**
 * Runtime backend: its servers, the balancer over the currently eligible ones, and cookie
 * persistence. The balancer's candidate set is rebuilt off the hot path whenever a server's health,
 * admin state or weight changes, and swapped whole; `pick` is the only per-request call.
 */
import {
  createBalancer,
  CookiePersistence,
  dynamicCookieValue,
  type Balancer,
  type BackendConfig,
  type StickTable,
} from '@stickmesh/core';
import { RuntimeServer } from './server.js';
import { errorPagesOf, type ErrorPages } from '../http/responses.js';
import { StickRules, stickKeyHash, type StickState } from './stick.js';

export class RuntimeBackend {
  readonly name: string;
  readonly cfg: BackendConfig;
  readonly servers: RuntimeServer[];
  readonly cookie: CookiePersistence | undefined;
  readonly balancer: Balancer<RuntimeServer>;
  /** Cookie value -> server; rebuilt with the candidate set. */
  private byCookie = new Map<string, RuntimeServer>();
  /** Name -> server (the first of a name), built once: the server list never changes. */
  private readonly byName = new Map<string, RuntimeServer>();
  /** Whether a coalesced rebuild is scheduled (see `rebuildSoon`). */
  private rebuildPending = false;
  /** Servers the balancer may currently pick (for stats and tests). */
  candidates: readonly RuntimeServer[] = [];
  /** Some servers are filled by DNS templates (candidates are then ordered by address). */
  private readonly hasDiscovered: boolean;
  /** Whether the balancer needs a hash of the client address. */
  readonly hashesSource: boolean;
  /**
   * Called after every rebuild of the candidate set (health, admin state, weight or address
   * changed): the main thread's view publisher (threads/view.ts) listens here to send the
   * backend's servers to the other threads. Undefined: nobody listens.
   */
  onRebuilt: ((b: RuntimeBackend) => void) | undefined = undefined;

  /** Stick rules bound to their tables; undefined without rules. */
  readonly stick: StickRules | undefined;
  /** The backend's `errorfile` pages, used for errors once a request is routed here. */
  readonly errorPages: ErrorPages;
  /** Rendezvous hashing over the candidates, for the agreed first pick of a stick key. */
  private readonly agree: Balancer<RuntimeServer>;

  constructor(cfg: BackendConfig, servers: RuntimeServer[], tables: ReadonlyMap<string, StickTable> = new Map()) {
    this.name = cfg.name;
    this.cfg = cfg;
    this.servers = servers;
    this.hasDiscovered = servers.some((s) => s.discovered);
    this.cookie = cfg.cookie ? new CookiePersistence(cfg.cookie, cfg.cookieKeys) : undefined;
    this.errorPages = errorPagesOf(cfg.errorFiles);
    this.balancer = createBalancer(cfg.balance, cfg.hashType) as Balancer<RuntimeServer>;
    this.hashesSource = cfg.balance === 'source';
    this.agree = createBalancer('source', 'consistent') as Balancer<RuntimeServer>;
    const stick = cfg.stickRules.length > 0 ? new StickRules(cfg, tables, servers) : undefined;
    this.stick = stick;
    for (const s of servers) {
      this.refreshCookie(s);
      if (!this.byName.has(s.name)) this.byName.set(s.name, s);
    }
    this.rebuild();
  }

  /**
   * Recomputes a server's dynamic cookie from its current address and port (HAProxy's value for
   * the same key/address/port); a slot without an address has none. Call `rebuild()` afterwards.
   */
  refreshCookie(s: RuntimeServer): void {
    const key = this.cfg.dynamicCookieKey;
    if (!this.cfg.cookie?.dynamic || key === undefined || s.cfg.cookie !== undefined) return;
    s.cookieValue = s.address === '' ? undefined : dynamicCookieValue(key, s.address, s.port);
  }

  /** Applies address changes made by discovery: cookie index, candidates and stick indexes. */
  addressesChanged(): void {
    this.rebuild();
    this.stick?.reindex(this.servers);
  }

  /**
   * Recomputes the candidate set: pickable primaries, or when none is pickable the first pickable
   * backup (HAProxy's default without `option allbackups`).
   */
  rebuild(): void {
    let cands = this.servers.filter((s) => !s.backup && s.pickable);
    if (cands.length === 0) {
      const b = this.servers.find((s) => s.backup && s.pickable);
      cands = b ? [b] : [];
    }
    // Discovered servers are ordered by address, not slot, so order-sensitive balancers (map-based
    // source hashing) give the same result on nodes that numbered the slots differently.
    if (this.hasDiscovered) cands = [...cands].sort((a, b) => (a.identity < b.identity ? -1 : a.identity > b.identity ? 1 : 0));
    this.candidates = cands;
    this.balancer.rebuild(cands);
    this.agree.rebuild(cands);
    const m = new Map<string, RuntimeServer>();
    for (const s of this.servers) if (s.cookieValue !== undefined && !m.has(s.cookieValue)) m.set(s.cookieValue, s);
    this.byCookie = m;
    this.onRebuilt?.(this);
  }

  serverByCookie(value: string): RuntimeServer | undefined {
    return this.byCookie.get(value);
  }

  /**
   * Rebuilds once at the end of this event-loop turn however many servers changed in it. A
   * rebuild costs O(servers); health checks of thousands of servers failing together (a network
   * cut) would otherwise cost O(servers²) in one burst. Until then the balancer may still pick a
   * server that just went down: its connect fails and the request is retried or redispatched,
   * as for a server that failed a moment before its check noticed.
   */
  rebuildSoon(): void {
    if (this.rebuildPending) return;
    this.rebuildPending = true;
    setImmediate(this.rebuildNow);
  }

  private readonly rebuildNow = (): void => {
    this.rebuildPending = false;
    this.rebuild();
  };

  serverByName(name: string): RuntimeServer | undefined {
    return this.byName.get(name);
  }

  pick(hash: number, exclude?: RuntimeServer): RuntimeServer | undefined {
    return this.balancer.pick(hash, exclude);
  }

  /**
   * The server stick rules choose once `stickMatch` filled `st` and `st.decides`: the matched one,
   * or for a new key the agreed first pick. Undefined only when no server can be picked.
   */
  stickChoice(st: StickState): RuntimeServer | undefined {
    return st.server ?? (st.firstKey !== undefined ? this.pickForKey(st.firstKey) : undefined);
  }

  /** First pick for a new stick key: the same on every node for the same healthy server set. */
  pickForKey(key: string, exclude?: RuntimeServer): RuntimeServer | undefined {
    return this.agree.pick(stickKeyHash(key), exclude);
  }
}
