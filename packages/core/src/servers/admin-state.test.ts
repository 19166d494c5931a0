import { describe, expect, it } from 'vitest';
import type { TableUpdate } from '../table/types.js';
import {
  ServerStateError, ServerStateStore, SERVER_STATE_TABLE, decodeConns, decodeState, decodeWeight, encodeState, encodeWeight, parseRecordKey,
} from './admin-state.js';

/** Copies every record of `from` into `to` as a peer would (full export, applyRemote). */
function sync(from: ServerStateStore, to: ServerStateStore): void {
  const out: TableUpdate[] = [];
  let c = 0;
  while (c !== -1) c = from.table.exportBatch(c, 100, out);
  for (const u of out) to.table.applyRemote(u);
}

const CFG = { disabled: false, weight: 10 };

describe('server admin records', () => {
  it('encode and decode state, weight and conns values; reject what does not decode', () => {
    const v = { state: 'drain' as const, autoMaint: true, deadline: 1765000000000, by: 'node1' };
    expect(decodeState(encodeState(v))).toEqual(v);
    expect(decodeState(encodeState({ state: 'maint', autoMaint: false, reason: 'no-bindings', since: 5, by: 'n2' }))).toEqual({ state: 'maint', autoMaint: false, reason: 'no-bindings', since: 5, by: 'n2' });
    expect(decodeWeight(encodeWeight(0))).toBe(0);
    expect(decodeWeight(encodeWeight(256))).toBe(256);
    for (const bad of ['', '{}', '[]', '{"s":"up"}', 'not json', '{"s":1}', `{"s":"ready","pad":"${'x'.repeat(2000)}"}`]) expect(decodeState(bad)).toBeUndefined();
    for (const bad of ['{"w":257}', '{"w":-1}', '{"w":1.5}', '{"w":"3"}', '{}']) expect(decodeWeight(bad)).toBeUndefined();
    expect(decodeConns('{"c":3}')).toBe(3);
    expect(decodeConns('{"c":-3}')).toBeUndefined();
  });

  it('parses record keys; a node name may hold @', () => {
    expect(parseRecordKey('state:app/web1')).toEqual({ kind: 'state', backend: 'app', server: 'web1' });
    expect(parseRecordKey('weight:app/web/1')).toEqual({ kind: 'weight', backend: 'app', server: 'web/1' });
    expect(parseRecordKey('conns:app/web1@node@2')).toEqual({ kind: 'conns', backend: 'app', server: 'web1', node: 'node@2' });
    for (const bad of ['state:app', 'state:/web1', 'state:app/', 'other:app/web1', 'conns:app/web1', 'nocolon']) expect(parseRecordKey(bad)).toBeUndefined();
  });

  it('the table is internal: its id starts with #, no expiry', () => {
    const s = new ServerStateStore({ node: 'n1' });
    expect(s.table.cfg.id).toBe(SERVER_STATE_TABLE);
    expect(SERVER_STATE_TABLE.startsWith('#')).toBe(true);
    expect(s.table.cfg.expire).toBe(0);
  });
});

describe('ServerStateStore', () => {
  it('a cluster record names the node that wrote it and replicates; the newest write wins on both nodes', () => {
    let t = 1_000_000;
    const now = () => t;
    const a = new ServerStateStore({ node: 'node1', now });
    const b = new ServerStateStore({ node: 'node2', now });
    const seen: string[] = [];
    b.onChange = (be, sv) => seen.push(`${be}/${sv}`);
    a.setState('app', 'web1', { state: 'drain', autoMaint: true, by: 'node1' });
    sync(a, b);
    expect(seen).toEqual(['app/web1']);
    const eb = b.effective('app', 'web1', CFG);
    expect(eb.admin).toBe('drain');
    expect(eb.adminSet).toEqual({ scope: 'cluster', node: 'node1', at: 1_000_000 });
    expect(eb.stateValue?.autoMaint).toBe(true);
    // Concurrent writes: node2 writes later (by its clock) and wins on both sides whatever the order.
    t += 10;
    b.setState('app', 'web1', { state: 'maint', autoMaint: false });
    t -= 5;
    a.setState('app', 'web1', { state: 'ready', autoMaint: false });
    sync(a, b);
    sync(b, a);
    expect(a.effective('app', 'web1', CFG).admin).toBe('maint');
    expect(b.effective('app', 'web1', CFG).admin).toBe('maint');
    expect(a.effective('app', 'web1', CFG).adminSet).toMatchObject({ scope: 'cluster', node: 'node2' });
    expect(a.table.digest()).toBe(b.table.digest());
  });

  it('state and weight are separate records: concurrent changes on two nodes both survive', () => {
    const a = new ServerStateStore({ node: 'node1' });
    const b = new ServerStateStore({ node: 'node2' });
    a.setState('app', 'web1', { state: 'drain', autoMaint: false });
    b.setWeight('app', 'web1', 3);
    sync(a, b);
    sync(b, a);
    for (const s of [a, b]) {
      const e = s.effective('app', 'web1', CFG);
      expect([e.admin, e.weight]).toEqual(['drain', 3]);
      expect(e.adminSet).toMatchObject({ node: 'node1' });
      expect(e.weightSet).toMatchObject({ node: 'node2' });
    }
  });

  it('precedence: node override > cluster record > config; clearing falls back', () => {
    const s = new ServerStateStore({ node: 'node3' });
    expect(s.effective('app', 'web1', { disabled: true, weight: 7 })).toMatchObject({ admin: 'maint', adminSet: { scope: 'config' }, weight: 7, weightSet: { scope: 'config' } });
    s.setState('app', 'web1', { state: 'ready', autoMaint: false });
    s.setWeight('app', 'web1', 20);
    expect(s.effective('app', 'web1', { disabled: true, weight: 7 })).toMatchObject({ admin: 'ready', adminSet: { scope: 'cluster' }, weight: 20 });
    s.setOverride('app', 'web1', { state: { state: 'maint', autoMaint: false } });
    const e = s.effective('app', 'web1', CFG);
    expect(e.admin).toBe('maint');
    expect(e.adminSet).toMatchObject({ scope: 'node', node: 'node3' });
    expect(e.weight).toBe(20); // the override holds no weight: the cluster's
    s.setOverride('app', 'web1', { weight: 0 });
    expect(s.effective('app', 'web1', CFG)).toMatchObject({ weight: 0, weightSet: { scope: 'node' } });
    expect(s.clearOverride('app', 'web1', 'state')).toBe(true);
    expect(s.effective('app', 'web1', CFG)).toMatchObject({ admin: 'ready', adminSet: { scope: 'cluster' }, weight: 0 });
    expect(s.clearOverride('app', 'web1')).toBe(true);
    expect(s.clearOverride('app', 'web1')).toBe(false);
    expect(s.clear('app', 'web1', 'state')).toBe(true);
    expect(s.effective('app', 'web1', { disabled: true, weight: 7 })).toMatchObject({ admin: 'maint', adminSet: { scope: 'config' }, weight: 20 });
  });

  it('a record that does not decode counts as absent (config applies)', () => {
    const s = new ServerStateStore({ node: 'n1' });
    s.table.applyRemote({ key: 'state:app/web1', server: '{"s":"sleeping"}', ttl: 0, wall: 5, counter: 0, node: 'n9', connCnt: 0, httpReqCnt: 0 });
    expect(s.effective('app', 'web1', CFG)).toMatchObject({ admin: 'ready', adminSet: { scope: 'config' } });
  });

  it('at the bound a write of a new key is refused with SM_ADMIN_STATE_FULL; existing records still change; nothing is evicted', () => {
    const s = new ServerStateStore({ node: 'n1', capacity: 8, maxRecords: 4 });
    for (let i = 0; i < 4; i++) s.setState('app', `w${i}`, { state: 'drain', autoMaint: false });
    let err: unknown;
    try {
      s.setWeight('app', 'w9', 1);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ServerStateError);
    expect((err as ServerStateError).code).toBe('SM_ADMIN_STATE_FULL');
    s.setState('app', 'w0', { state: 'maint', autoMaint: false });
    expect(s.table.stats.evictions).toBe(0);
    for (let i = 0; i < 4; i++) expect(s.state('app', `w${i}`)).toBeDefined();
    expect(() => s.setState('b'.repeat(300), 'w', { state: 'ready', autoMaint: false })).toThrow(/longer than/);
  });

  it('conns records are per node and fire onConns, not onChange', () => {
    const a = new ServerStateStore({ node: 'node2' });
    const b = new ServerStateStore({ node: 'node1' });
    const changes: string[] = [];
    b.onChange = () => changes.push('change');
    b.onConns = (be, sv) => changes.push(`conns ${be}/${sv}`);
    a.setConns('app', 'web1', 4);
    sync(a, b);
    expect(changes).toEqual(['conns app/web1']);
    expect(b.conns('app', 'web1', 'node2')?.value).toBe(4);
    expect(b.conns('app', 'web1', 'node1')).toBeUndefined();
  });
});
