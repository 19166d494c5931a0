import { describe, expect, it } from 'vitest';
import { StickTable } from './stick-table.js';
import type { StickTableConfig } from '../config/model.js';

const cfg: StickTableConfig = { id: 'p/t', name: 't', type: 'ip', keyLen: 32, size: 100, expire: 60000, store: [], srvkey: 'name', loc: { file: 'x', line: 1 } };

// One contract, run on both backends: plain ArrayBuffers and SharedArrayBuffers (nbthread).
for (const shared of [false, true]) {
describe(`StickTable hooks (shared: ${shared})`, () => {
  describe('StickTable.onLocalWrite', () => {
    it('fires for every local write that enters the update log, never for remote writes', () => {
      const a = new StickTable(cfg, { shared, node: 'a' });
      const b = new StickTable(cfg, { shared, node: 'b' });
      let calls = 0;
      a.onLocalWrite = () => calls++;
      expect(a.setLocal('10.0.0.1', 'web1')).toBe('created');
      expect(a.setLocal('10.0.0.1', 'web2')).toBe('updated');
      expect(calls).toBe(2);
      expect(a.setLocal('10.0.0.1', 'web2')).toBe('unchanged');
      expect(calls).toBe(2);
      b.setLocal('10.0.0.9', 'web3');
      const out: Parameters<typeof a.applyRemote>[0][] = [];
      b.readUpdates(0, 10, out);
      expect(a.applyRemote(out[0]!)).toBe(true);
      expect(calls).toBe(2);
      expect(a.seq).toBe(2);
    });
  });
});
}
