import { describe, expect, it } from 'vitest';
import type { StickTableConfig, StickmeshConfig } from '../config/model.js';
import { CounterTable } from '../counters/counter-table.js';
import { TimerWheel } from '../util/timer-wheel.js';
import { attachTables, buildTables, countersMode, startCounterSweeps, tableHandles } from './registry.js';

const RATE = { kind: 'http_req_rate', idx: 0, period: 10_000 } as const;
const CUR = { kind: 'conn_cur', idx: 0, period: 0 } as const;

function table(id: string, over: Partial<StickTableConfig> = {}): StickTableConfig {
  return { id, name: id.split('/').pop()!, type: 'ip', keyLen: 32, size: 64, expire: 30_000, store: [], srvkey: 'name', loc: { file: 'x.cfg', line: 1 }, ...over };
}

/** Only what tableConfigs reads. */
function config(peerTables: StickTableConfig[], backendTables: StickTableConfig[], frontendTables: StickTableConfig[] = []): StickmeshConfig {
  return {
    peers: [{ name: 'p', peers: [], tables: peerTables, loc: { file: 'x.cfg', line: 1 } }],
    backends: backendTables.map((t) => ({ name: t.id, stickTable: t })),
    frontends: frontendTables.map((t) => ({ name: t.id, stickTable: t })),
  } as unknown as StickmeshConfig;
}

describe('buildTables and counters', () => {
  it('gives tables that store counters a CounterTable, local without peers, cluster (or as configured) with', () => {
    const cfg = config(
      [table('p/a', { peers: 'p', data: [RATE, CUR] }), table('p/b', { peers: 'p', data: [CUR], counters: 'local' }), table('p/c', { peers: 'p' })],
      [table('be1', { data: [RATE] }), table('be2', { data: [RATE], peers: 'p' })],
    );
    const t = buildTables(cfg, 'n1');
    expect(t.get('p/a')!.counters!.mode).toBe('cluster');
    expect(t.get('p/a')!.counters!.schema).toBe('http_req_rate(10000),conn_cur');
    expect(t.get('p/b')!.counters!.mode).toBe('local');
    expect(t.get('p/c')!.counters).toBeUndefined();
    expect(t.get('be1')!.counters!.mode).toBe('local');
    expect(t.get('be2')!.counters!.mode).toBe('cluster');
    expect(countersMode(table('x'))).toBe('local');
  });

  it("builds a frontend's own stick-table with the others, under the frontend's name", () => {
    const t = buildTables(config([], [], [table('fe', { data: [RATE] })]), 'n1');
    expect(t.get('fe')!.counters!.mode).toBe('local');
  });

  it('a reload keeps counters whose schema is unchanged and starts afresh otherwise', () => {
    const a = table('p/a', { peers: 'p', data: [RATE, CUR] });
    const b = table('p/b', { peers: 'p', data: [RATE] });
    const first = buildTables(config([a, b], []), 'n1');
    const ca = first.get('p/a')!.counters!;
    const s = ca.acquire('10.0.0.1');
    ca.add(s, 0, 3);
    // p/a: only srvkey changed (a new stick table, the same counters); p/b: the store changed.
    const next = buildTables(config([{ ...a, srvkey: 'addr' }, { ...b, data: [RATE, CUR] }], []), 'n1', first);
    expect(next.get('p/a')).not.toBe(first.get('p/a'));
    expect(next.get('p/a')!.counters).toBe(ca);
    expect(ca.read(ca.find('10.0.0.1'), 0)).toBe(3);
    expect(next.get('p/b')!.counters).not.toBe(first.get('p/b')!.counters);
    // Unchanged table: kept whole. Mode changed: fresh counters.
    const again = buildTables(config([{ ...a, srvkey: 'addr' }, { ...b, data: [RATE, CUR], counters: 'local' }], []), 'n1', next);
    expect(again.get('p/a')).toBe(next.get('p/a'));
    expect(again.get('p/b')!.counters!.mode).toBe('local');
    expect(again.get('p/b')!.counters).not.toBe(next.get('p/b')!.counters);
  });

  it('startCounterSweeps starts the new tables and stops the ones no longer in service', () => {
    const wheel = new TimerWheel(100, 64);
    const a = table('p/a', { peers: 'p', data: [RATE] });
    const first = buildTables(config([a], []), 'n1');
    startCounterSweeps(first, wheel);
    const c1 = first.get('p/a')!.counters as CounterTable;
    expect(c1.sweeping).toBe(true);
    const next = buildTables(config([{ ...a, expire: 5000 }], []), 'n1', first);
    startCounterSweeps(next, wheel, first);
    const c2 = next.get('p/a')!.counters as CounterTable;
    expect(c2).not.toBe(c1);
    expect(c2.sweeping).toBe(true);
    expect(c1.sweeping).toBe(false);
    startCounterSweeps(new Map(), wheel, next);
    expect(c2.sweeping).toBe(false);
  });
});

describe('shared tables (nbthread)', () => {
  it('buildTables { shared } builds tables another thread attaches to by handle; a reload keeps them or copies them into shared tables', () => {
    const cfg = config([table('p/a', { peers: 'p' })], [table('be1')]);
    const main = buildTables(cfg, 'n1', undefined, { shared: true });
    expect([...main.values()].every((t) => t.shared)).toBe(true);
    const worker = attachTables(cfg, 'n1', structuredClone(tableHandles(main)));
    expect([...worker.keys()]).toEqual(['p/a', 'be1']);
    worker.get('be1')!.setLocal('10.0.0.1', 's1');
    expect(main.get('be1')!.lookup('10.0.0.1')).toBe('s1');
    expect(main.get('be1')!.seq).toBe(1);

    // Another schema on the worker's side (a different config) is refused, as is a missing handle.
    expect(() => attachTables(config([], [table('be1', { size: 128 })]), 'n1', tableHandles(main))).toThrow(expect.objectContaining({ code: 'SM_TABLE_ATTACH' }));
    expect(() => attachTables(config([], [table('be2')]), 'n1', tableHandles(main))).toThrow(expect.objectContaining({ code: 'SM_TABLE_ATTACH' }));
    expect(() => tableHandles(buildTables(cfg, 'n1'))).toThrow(expect.objectContaining({ code: 'SM_TABLE_ATTACH' }));

    const next = buildTables(config([table('p/a', { peers: 'p' })], [table('be1', { size: 128 })]), 'n1', main, { shared: true });
    expect(next.get('p/a')).toBe(main.get('p/a'));
    expect(next.get('be1')).not.toBe(main.get('be1'));
    expect(next.get('be1')!.shared).toBe(true);
    expect(next.get('be1')!.lookup('10.0.0.1')).toBe('s1');
  });

  it('counters of a shared build are shared too, and attachTables attaches them', () => {
    const cfg = config([table('p/a', { peers: 'p', data: [RATE, CUR] })], [table('be1', { data: [CUR] }), table('be2')]);
    const main = buildTables(cfg, 'n1', undefined, { shared: true });
    const ca = main.get('p/a')!.counters as CounterTable;
    expect(ca.shared).toBe(true);
    expect((main.get('be1')!.counters as CounterTable).shared).toBe(true);
    expect(main.get('be2')!.counters).toBeUndefined();
    const handles = structuredClone(tableHandles(main));
    expect(handles['be2']!.counters).toBeUndefined();
    const worker = attachTables(cfg, 'n1', handles);
    const wa = worker.get('p/a')!.counters as CounterTable;
    expect(wa.attached).toBe(true);
    expect(wa.mode).toBe('cluster');
    expect((worker.get('be1')!.counters as CounterTable).mode).toBe('local');
    const s = wa.acquire('10.0.0.7');
    wa.add(s, wa.column('conn_cur'), 2);
    expect(ca.read(ca.find('10.0.0.7'), ca.column('conn_cur'))).toBe(2);
    expect(ca.dirty).toBe(1);

    // A handle without the counters of a table that stores them is refused, as are unshared counters.
    const { counters: _, ...bare } = handles['p/a']!;
    expect(() => attachTables(cfg, 'n1', { ...handles, 'p/a': bare })).toThrow(expect.objectContaining({ code: 'SM_TABLE_ATTACH' }));
    main.get('be1')!.counters = new CounterTable(main.get('be1')!.cfg, { node: 'n1' });
    expect(() => tableHandles(main)).toThrow(expect.objectContaining({ code: 'SM_TABLE_ATTACH' }));
  });
});
