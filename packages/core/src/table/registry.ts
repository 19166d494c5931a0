/**
 * The set of stick tables a config declares (peers-section tables and backend `stick-table`s),
 * keyed by id (`peers/table` or the backend name). On reload the existing tables are kept when
 * their schema is unchanged, and copied into a new table when it changed, so a reload never loses
 * entries.
 */
import type { StickTableConfig, StickmeshConfig } from '../config/model.js';
import { StickTable } from './stick-table.js';
import type { TableUpdate } from './types.js';

export function tableConfigs(cfg: StickmeshConfig): StickTableConfig[] {
  const out: StickTableConfig[] = [];
  for (const p of cfg.peers) out.push(...p.tables);
  for (const b of cfg.backends) if (b.stickTable) out.push(b.stickTable);
  return out;
}

function sameSchema(a: StickTableConfig, b: StickTableConfig): boolean {
  return a.type === b.type && a.keyLen === b.keyLen && a.size === b.size && a.srvkey === b.srvkey &&
    a.expire === b.expire && a.store.join(',') === b.store.join(',');
}

export function buildTables(cfg: StickmeshConfig, node: string, existing?: ReadonlyMap<string, StickTable>): Map<string, StickTable> {
  const out = new Map<string, StickTable>();
  for (const tc of tableConfigs(cfg)) {
    const old = existing?.get(tc.id);
    if (old && sameSchema(old.cfg, tc)) {
      out.set(tc.id, old);
      continue;
    }
    const t = new StickTable(tc, { node, clock: old?.clock });
    if (old && old.cfg.type === tc.type) {
      const buf: TableUpdate[] = [];
      let cursor = 0;
      while (cursor !== -1) {
        buf.length = 0;
        cursor = old.exportBatch(cursor, 4096, buf);
        for (const u of buf) t.applyRemote(u);
      }
    }
    out.set(tc.id, t);
  }
  return out;
}
