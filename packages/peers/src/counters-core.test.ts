/** The mesh with core's CounterTable (the real ReplicatedCounters) on three nodes in one process. */
import { afterEach, describe, expect, it } from 'vitest';
import { CounterTable, type StickTableConfig, type StoredType } from '@stickmesh/core';
import { waitFor } from '../../../test/helpers/wait.js';
import { mesh, statusOf, type Node } from '../test/harness.js';

const started: Node[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((n) => n.svc.stop()));
});

const DATA: StoredType[] = [
  { kind: 'http_req_rate', idx: 0, period: 10_000 },
  { kind: 'conn_cur', idx: 0, period: 0 },
  { kind: 'http_req_cnt', idx: 0, period: 0 },
];

function counterTable(node: string, data = DATA): CounterTable {
  const cfg: StickTableConfig = {
    id: 't1', name: 't1', type: 'ip', keyLen: 32, size: 1000, expire: 60_000, store: [], srvkey: 'name',
    loc: { file: 'test', line: 1 }, data, counters: 'cluster',
  };
  return new CounterTable(cfg, { node, mode: 'cluster' });
}

describe('mesh with core CounterTable', () => {
  it('three nodes: rates, counts and conn_cur are the sum of the shares everywhere; a dead node\'s conn_cur is dropped', async () => {
    const ct = new Map(['a', 'b', 'c'].map((n) => [n, counterTable(n)]));
    const nodes = await mesh(['a', 'b', 'c'], (n) => ({ counters: [ct.get(n)!], antiEntropyMs: 0 }));
    started.push(...nodes);
    await waitFor(() => nodes.every((n) => n.svc.status().every((p) => p.state === 'live' && p.counterTables?.includes('t1'))), 5000, 'live');
    const key = '10.1.2.3';
    const per = { a: 30, b: 40, c: 50 } as Record<string, number>;
    for (const [n, t] of ct) {
      const s = t.acquire(key);
      for (let i = 0; i < per[n]!; i++) {
        t.add(s, t.column('http_req_rate'), 1);
        t.add(s, t.column('http_req_cnt'), 1);
      }
      t.add(s, t.column('conn_cur'), 1); // one open connection per node, reference kept
    }
    const read = (t: CounterTable, kind: 'http_req_rate' | 'http_req_cnt' | 'conn_cur') => {
      const s = t.find(key);
      return s < 0 ? -1 : t.read(s, t.column(kind));
    };
    await waitFor(() => [...ct.values()].every((t) => read(t, 'http_req_cnt') === 120 && read(t, 'conn_cur') === 3), 5000, 'sums everywhere');
    for (const t of ct.values()) {
      expect(read(t, 'http_req_rate')).toBe(120);
      expect(t.shares(key)!.nodes.map((x) => x.node).sort()).toEqual(['a', 'b', 'c']);
    }
    expect(statusOf(nodes[1]!, 'a').sharesRejected).toBe(0);
    expect(statusOf(nodes[1]!, 'a').counterLagSamples).toBeGreaterThan(0);
    // a dies: its conn_cur share stops counting at b and c; its requests stay in the window.
    await nodes[0]!.svc.stop();
    await waitFor(() => read(ct.get('b')!, 'conn_cur') === 2 && read(ct.get('c')!, 'conn_cur') === 2, 5000, 'a\'s conn_cur dropped');
    expect(read(ct.get('c')!, 'http_req_cnt')).toBe(120);
    expect(read(ct.get('c')!, 'http_req_rate')).toBe(120);
  });

  it('a node whose table stores other counters exchanges no shares with the others and keeps its session', async () => {
    const other: StoredType[] = [{ kind: 'http_req_rate', idx: 0, period: 1000 }];
    const ct = new Map(['a', 'b'].map((n) => [n, counterTable(n, n === 'b' ? other : DATA)]));
    expect(ct.get('a')!.schema).not.toBe(ct.get('b')!.schema);
    const nodes = await mesh(['a', 'b'], (n) => ({ counters: [ct.get(n)!], antiEntropyMs: 0 }));
    started.push(...nodes);
    await waitFor(() => nodes.every((n) => n.svc.status().every((p) => p.state === 'live')), 5000, 'live');
    const t = ct.get('a')!;
    t.add(t.acquire('10.0.0.1'), t.column('http_req_cnt'), 5);
    await waitFor(() => t.dirty === 0, 5000, 'flushed');
    expect(ct.get('b')!.find('10.0.0.1')).toBe(-1);
    expect(statusOf(nodes[0]!, 'b').refusals['counter-schema-mismatch']).toBe(1);
    expect(statusOf(nodes[0]!, 'b').state).toBe('live');
  });
});
