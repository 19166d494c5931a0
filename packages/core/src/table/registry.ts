/**
 * The set of stick tables a config declares (peers-section tables, backend and frontend
 * `stick-table`s), keyed by id (`peers/table`, or the backend's or frontend's name). On reload the existing tables are kept when
 * their schema is unchanged, and copied into a new table when it changed, so a reload never loses
 * entries.
 *
 * A table whose config stores counters (`data`) gets a CounterTable in `table.counters`. Its mode
 * is `local` for a table without peers (nothing replicates it) and `cfg.counters ?? 'cluster'` for
 * a replicated one (a `peers` section table, or a backend table naming `peers`).
 */
import type { StickTableConfig, StickmeshConfig } from '../config/model.js';
import { CounterTable, type CounterTableHandle } from '../counters/counter-table.js';
import type { TimerWheel } from '../util/timer-wheel.js';
import { StickmeshError } from '../errors.js';
import { StickTable, type StickTableHandle } from './stick-table.js';
import type { TableUpdate } from './types.js';

export function tableConfigs(cfg: StickmeshConfig): StickTableConfig[] {
  const out: StickTableConfig[] = [];
  for (const p of cfg.peers) out.push(...p.tables);
  for (const b of cfg.backends) if (b.stickTable) out.push(b.stickTable);
  // A frontend's own table (HAProxy allows one; the usual home of rate-limit counters).
  for (const f of cfg.frontends) if (f.stickTable) out.push(f.stickTable);
  return out;
}

/** Counters mode of a table: `local` without peers, else its `counters` option (default cluster). */
export function countersMode(tc: StickTableConfig): 'cluster' | 'local' {
  return tc.peers === undefined ? 'local' : (tc.counters ?? 'cluster');
}

function dataSchema(tc: StickTableConfig): string {
  return (tc.data ?? []).map((d) => `${d.kind}:${d.idx}:${d.period}`).join(',');
}

/** Whether a CounterTable built for `a` serves `b` unchanged (same keys, bounds, stored types, mode). */
function sameCounters(a: StickTableConfig, b: StickTableConfig): boolean {
  return a.type === b.type && a.keyLen === b.keyLen && a.size === b.size && a.expire === b.expire &&
    dataSchema(a) === dataSchema(b) && countersMode(a) === countersMode(b);
}

function sameSchema(a: StickTableConfig, b: StickTableConfig): boolean {
  return sameCounters(a, b) && a.srvkey === b.srvkey && a.store.join(',') === b.store.join(',');
}

export interface BuildTablesOptions {
  /** Wall clock for counters (tests). */
  now?: () => number;
  /**
   * Build new stick tables, and the counters of those that store any, in SharedArrayBuffers
   * (nbthread > 1), for worker threads to attach with `attachTables`. Tables kept from `existing` keep whatever backend they have.
   */
  shared?: boolean;
}

export function buildTables(
  cfg: StickmeshConfig,
  node: string,
  existing?: ReadonlyMap<string, StickTable>,
  opts: BuildTablesOptions = {},
): Map<string, StickTable> {
  const out = new Map<string, StickTable>();
  for (const tc of tableConfigs(cfg)) {
    const old = existing?.get(tc.id);
    if (old && sameSchema(old.cfg, tc)) {
      out.set(tc.id, old);
      continue;
    }
    const t = new StickTable(tc, { node, clock: old?.clock, ...(opts.shared ? { shared: true } : {}) });
    if (old && old.cfg.type === tc.type) {
      const buf: TableUpdate[] = [];
      let cursor = 0;
      while (cursor !== -1) {
        buf.length = 0;
        cursor = old.exportBatch(cursor, 4096, buf);
        for (const u of buf) t.applyRemote(u);
      }
    }
    if (tc.data !== undefined && tc.data.length > 0) {
      // Counters survive a reload only when nothing they depend on changed; a changed store line,
      // size, key type, expire or mode starts them afresh (at 0; peers send their shares again on
      // the schema they now share), as converting shares between layouts is not worth its risk.
      if (old?.counters && sameCounters(old.cfg, tc)) {
        t.counters = old.counters;
      } else {
        t.counters = new CounterTable(tc, {
          node,
          mode: countersMode(tc),
          ...(opts.now ? { now: opts.now } : {}),
          ...(opts.shared ? { shared: true } : {}),
        });
      }
    }
    out.set(tc.id, t);
  }
  return out;
}

/**
 * Once `next` (from buildTables) is in service: sweeps the counters of `next` on `wheel` and stops
 * the sweeps of counters in `previous` that `next` no longer holds (a failed reload never calls
 * this, so the running tables keep theirs and the discarded ones are garbage).
 */
export function startCounterSweeps(next: ReadonlyMap<string, StickTable>, wheel: TimerWheel, previous?: ReadonlyMap<string, StickTable>): void {
  const live = new Set<unknown>();
  for (const t of next.values()) {
    if (t.counters instanceof CounterTable) {
      live.add(t.counters);
      if (!t.counters.sweeping) t.counters.start(wheel);
    }
  }
  for (const t of previous?.values() ?? []) if (t.counters instanceof CounterTable && !live.has(t.counters)) t.counters.stop();
}

/** A shared stick table's handle, with its shared counters' when it stores counters. */
export type TableHandle = StickTableHandle & { readonly counters?: CounterTableHandle };

/** Handles of the shared stick tables in `tables` by table id, for `attachTables` in a worker (structured-cloneable). */
export function tableHandles(tables: ReadonlyMap<string, StickTable>): Record<string, TableHandle> {
  const out: Record<string, TableHandle> = {};
  for (const [id, t] of tables) {
    if (!t.shared) throw new StickmeshError('SM_TABLE_ATTACH', `stick table '${id}' is not shared (build the tables with { shared: true })`);
    const c = t.counters;
    if (c === undefined) out[id] = t.shareHandle();
    else if (c instanceof CounterTable && c.shared) out[id] = { ...t.shareHandle(), counters: c.shareHandle() };
    else throw new StickmeshError('SM_TABLE_ATTACH', `stick table '${id}': its counters are not shared`);
  }
  return out;
}

export interface AttachTablesOptions {
  /** This thread's wall clock for expiry (tests). */
  now?: () => number;
}

/**
 * A worker thread's views of the shared stick tables the main thread built (`buildTables` with
 * `shared: true`) for the same config: one per table `cfg` declares, from `handles`
 * (`tableHandles` on the main thread). Throws SM_TABLE_ATTACH if a table has no handle or its
 * handle was built from another schema (the two threads loaded different configs).
 * A table that stores counters gets its counters attached too (`table.counters`); the main
 * thread sweeps them and drains their dirty queue, so a worker needs no startCounterSweeps.
 */
export function attachTables(
  cfg: StickmeshConfig,
  node: string,
  handles: Readonly<Record<string, TableHandle>>,
  opts: AttachTablesOptions = {},
): Map<string, StickTable> {
  const out = new Map<string, StickTable>();
  for (const tc of tableConfigs(cfg)) {
    const h = handles[tc.id];
    if (!h) throw new StickmeshError('SM_TABLE_ATTACH', `stick table '${tc.id}': no shared handle from the main thread`);
    if (h.node !== node || !sameSchema(h.cfg, tc)) {
      throw new StickmeshError('SM_TABLE_ATTACH', `stick table '${tc.id}': the main thread built it from another schema or node`);
    }
    const t = StickTable.attach(h, opts.now ? { now: opts.now } : {});
    if (tc.data !== undefined && tc.data.length > 0) {
      if (!h.counters) throw new StickmeshError('SM_TABLE_ATTACH', `stick table '${tc.id}': no shared counters from the main thread`);
      t.counters = CounterTable.attach(h.counters, opts.now ? { now: opts.now } : {});
    }
    out.set(tc.id, t);
  }
  return out;
}
