import { describe, expect, it } from 'vitest';
import { MAX_KEY_LENGTH, Ops, type AdminNode } from './api.js';
import { ServerStates } from '../server-states.js';
import { StickTable, CounterTable, type StickTableConfig } from '@stickmesh/core';
import { AdminError, metrics, type AdminRequest, type StickmeshProxy } from '@stickmesh/proxy';

const P = 10_000;
const T0 = 170_000_000 * P;

function tableCfg(id: string, over: Partial<StickTableConfig> = {}): StickTableConfig {
  return { id, name: id, type: 'ip', keyLen: 32, size: 16, expire: 60_000, store: [], srvkey: 'name', loc: { file: 'x.cfg', line: 1 }, ...over };
}

function setup() {
  const now = () => T0 + 2500;
  const withCounters = new StickTable(tableCfg('p/rl', { peers: 'p', data: [{ kind: 'http_req_rate', idx: 0, period: P }, { kind: 'conn_cur', idx: 0, period: 0 }] }), { node: 'n1', now });
  const c = new CounterTable(withCounters.cfg, { node: 'n1', now });
  withCounters.counters = c;
  const plain = new StickTable(tableCfg('plain'), { node: 'n1', now });
  const s = c.acquire('10.0.0.1');
  c.add(s, 0, 4);
  c.add(s, 1, 1);
  c.applyShares('n2', { key: '10.0.0.1', v: [T0 / P, 6, 0, 2] });
  const node: AdminNode = {
    name: 'n1',
    tables: new Map([
      ['p/rl', withCounters],
      ['plain', plain],
    ]),
    proxy: { backends: new Map() } as unknown as StickmeshProxy,
    peers: [],
    serverStates: new ServerStates({ name: 'n1', backends: () => new Map(), livePeers: () => [], log: () => {} }),
    readiness: () => ({ ready: true, reason: 'test' }),
    uptimeMs: () => 0,
    log: () => {},
  };
  const ops = new Ops(node, () => []);
  const call = (method: string, path: string, params: Record<string, string>, query = ''): unknown => {
    const route = ops.routes().find((r) => r.method === method && r.path === path);
    if (!route) throw new Error(`no route ${method} ${path}`);
    return route.handler({ method, path, params, query: new URLSearchParams(query), body: undefined } as AdminRequest);
  };
  const status = (f: () => unknown): number => {
    try {
      f();
    } catch (err) {
      if (err instanceof AdminError) return err.status;
      throw err;
    }
    return 200;
  };
  return { ops, call, status };
}

describe('admin API: counters', () => {
  it('lists each table with its counter schema, mode and stats (null without counters)', () => {
    const { ops } = setup();
    const [rl, plain] = ops.tables(false);
    expect(rl!.counters).toMatchObject({ schema: 'http_req_rate(10000),conn_cur', mode: 'cluster', count: 1, capacity: 16, remoteApplied: 1, remoteRejected: 0, trackFailures: 0, nodes: ['n2'], dirty: 1 });
    expect(plain!.counters).toBeNull();
    // The stick table's own refusals, split: stale versions (normal in a resync) apart from invalid updates.
    expect(plain).toMatchObject({ remoteStale: 0, remoteInvalid: 0 });
    expect(plain).not.toHaveProperty('remoteRejected');
  });

  it("GET /api/tables/:table/counters?key=K: each node's share and the sum", () => {
    const { call } = setup();
    const j = call('GET', '/api/tables/:table/counters', { table: 'p/rl' }, 'key=::ffff:10.0.0.1') as Record<string, unknown>;
    expect(j).toEqual({
      table: 'p/rl',
      mode: 'cluster',
      key: '10.0.0.1',
      expiresInMs: 60_000,
      total: { 'http_req_rate(10s)': 10, conn_cur: 3 },
      nodes: [
        { node: 'n1', values: { 'http_req_rate(10s)': 4, conn_cur: 1 } },
        { node: 'n2', values: { 'http_req_rate(10s)': 6, conn_cur: 2 } },
      ],
    });
  });

  it('answers 404 for an unknown table, a table without counters or an absent key; 400 for a missing, invalid or too long key', () => {
    const { call, status } = setup();
    const path = '/api/tables/:table/counters';
    expect(status(() => call('GET', path, { table: 'nope' }, 'key=10.0.0.1'))).toBe(404);
    expect(status(() => call('GET', path, { table: 'plain' }, 'key=10.0.0.1'))).toBe(404);
    expect(status(() => call('GET', path, { table: 'p/rl' }, 'key=10.0.0.2'))).toBe(404);
    expect(status(() => call('GET', path, { table: 'p/rl' }, ''))).toBe(400);
    expect(status(() => call('GET', path, { table: 'p/rl' }, 'key=not-an-address'))).toBe(400);
    expect(status(() => call('GET', path, { table: 'p/rl' }, `key=${'1'.repeat(MAX_KEY_LENGTH + 1)}`))).toBe(400);
  });

  it('explain shows the key in every table storing counters', () => {
    const { call } = setup();
    const j = call('GET', '/api/explain', {}, 'key=10.0.0.1') as { counters: Array<Record<string, unknown>> };
    expect(j.counters).toHaveLength(1);
    expect(j.counters[0]).toMatchObject({ table: 'p/rl', total: { 'http_req_rate(10s)': 10, conn_cur: 3 } });
    const none = call('GET', '/api/explain', {}, 'key=10.9.9.9') as { counters: unknown[] };
    expect(none.counters).toEqual([]);
  });

  it('/metrics: per-table counter gauges', async () => {
    const { ops } = setup();
    ops.registerMetrics();
    const text = await metrics.text();
    expect(text).toContain('stickmesh_table_counter_entries{table="p/rl"} 1');
    expect(text).toContain('stickmesh_table_counter_remote_applied{table="p/rl"} 1');
    expect(text).toContain('stickmesh_table_counter_remote_rejected{table="p/rl"} 0');
    expect(text).toContain('stickmesh_table_counter_track_failures{table="p/rl"} 0');
    expect(text).toContain('stickmesh_table_remote_stale_updates{table="p/rl"} 0');
    expect(text).toContain('stickmesh_table_remote_invalid_updates{table="p/rl"} 0');
    expect(text).toContain('stickmesh_table_counter_dirty_keys{table="p/rl"} 1');
    expect(text).toMatch(/stickmesh_table_counter_oldest_unsent_seconds\{table="p\/rl"\} 0\n/);
    expect(text).not.toContain('stickmesh_table_counter_entries{table="plain"}');
  });
});
