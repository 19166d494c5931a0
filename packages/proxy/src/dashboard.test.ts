/**
 * The dashboard's pure parts (DASHBOARD_RENDER_JS, run in a fresh V8 context as the browser runs
 * it): a dead peer shows when it was last heard instead of stale lag and pending counts; a server's
 * state and weight name the node that set them (cluster-wide or a per-node override) and older
 * nodes without that field render as before; the page's own node going down is announced with the
 * nodes the page now reads from; a node that stops answering is asked again on a backoff.
 */
import { describe, expect, it } from 'vitest';
import vm from 'node:vm';
import { DASHBOARD_RENDER_JS } from './dashboard.js';

interface View {
  nodes: string;
  servers: string;
  origin: { down: boolean; text: string; reading: string };
  kpi: Record<string, string>;
}
interface Entry { fails: number; since: number; next: number }
interface Dashboard {
  view(results: unknown, state: unknown, now: number, self?: string): View;
  newState(): unknown;
  newSchedule(): Map<string, Entry>;
  due(sched: Map<string, Entry>, o: string, now: number, seenLive: boolean): boolean;
  record(sched: Map<string, Entry>, o: string, ok: boolean, now: number, error?: string): string;
  waiting(sched: Map<string, Entry>, o: string): { origin: string; ok: boolean; error: string; since: number };
  liveNames(results: unknown): Set<string>;
  BACKOFF_MS: number[];
}

function load(): Dashboard {
  const ctx = vm.createContext({});
  vm.runInContext(DASHBOARD_RENDER_JS, ctx);
  return (ctx as { StickmeshDashboard: Dashboard }).StickmeshDashboard;
}

const T = new Date(2026, 11, 7, 12, 0, 0).getTime();
const O1 = 'http://127.0.0.1:9100';
const O2 = 'http://127.0.0.2:9100';
const O3 = 'http://127.0.0.3:9100';

function server(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { backend: 'app', server: 'web1', health: 'up', admin: 'ready', weight: 1, sticky: 0, activeConns: 0, requests: 0, errors: 0, ...extra };
}
function summary(node: string, peers: unknown[], servers: unknown[] = [server()]): Record<string, unknown> {
  return { node, time: T, uptimeMs: 1000, ready: true, connections: 0, tables: [], servers, peers };
}
const live = (peer: string) => ({ peer, state: 'live', connected: true, lagMs: 12, pending: 3, lastDataAt: T - 100 });
const dead = (peer: string, lastDataAt?: number) => ({ peer, state: 'connecting', connected: false, lagMs: 4321, pending: 77, ...(lastDataAt ? { lastDataAt } : {}) });
const text = (html: string) => html.replace(/<[^>]*>/g, '');

describe('dashboard rendering', () => {
  it('shows a dead peer as "no data since HH:MM:SS", not its last lag and pending', () => {
    const D = load();
    const v = D.view([{ origin: O2, ok: true, s: summary('node2', [dead('node1', T - 65_000), live('node3'), dead('node4')]) }], D.newState(), T, O2);
    const peers = v.nodes.split('data-testid="peer"');
    const n1 = text(peers.find((p) => p.includes('data-peer="node1"'))!);
    expect(n1).toContain('no data since 11:58:55');
    expect(n1).not.toMatch(/lag|pending|4321|77/);
    expect(text(peers.find((p) => p.includes('data-peer="node3"'))!)).toMatch(/lag 12 ms.*3 pending/);
    expect(text(peers.find((p) => p.includes('data-peer="node4"'))!)).toContain('node4 connectingno session');
    // The dead node's own card says when its peers last heard from it.
    expect(v.nodes).toContain('<div class="card down" data-testid="node" data-node="node1">');
    const card = v.nodes.split('data-testid="node"').find((c) => c.includes('data-node="node1"'))!;
    expect(text(card)).toContain('down');
    expect(text(card)).toContain('no data since 11:58:55 (last heard by node2)');
    expect(v.kpi.lag).toBe('12 ms');
  });

  it('names the node that set a state cluster-wide, and per-node overrides as such', () => {
    const D = load();
    const drain = server({ admin: 'drain', adminSet: { scope: 'cluster', node: 'node1', at: T - 120_000 } });
    const res = ['node1', 'node2', 'node3'].map((n, i) => ({ origin: [O1, O2, O3][i], ok: true, s: summary(n, [], [drain]) }));
    const v = D.view(res, D.newState(), T, O1);
    expect(v.servers).toContain('data-scope="cluster"');
    expect(text(v.servers)).toContain('drain \u2014 set by node1 2 min ago');
    // node2 keeps web1 in maint on its own: shown as that node's override, beside the cluster-wide drain.
    const over = server({ admin: 'maint', adminSet: { scope: 'node', node: 'node2', at: T - 30_000 }, weight: 5, weightSet: { scope: 'node', node: 'node2', at: T - 30_000 } });
    res[1]!.s = summary('node2', [], [over]);
    const w = D.view(res, D.newState(), T, O1);
    expect(w.servers).toContain('data-admin="maint"');
    expect(w.servers).toContain('data-scope="node"');
    expect(text(w.servers)).toContain('drain cluster-wide \u2014 set by node1 2 min ago');
    expect(text(w.servers)).toContain('maint on node2 \u2014 override on that node only, 30 s ago');
    expect(text(w.servers)).toContain('weight 5 on node2 \u2014 override on that node only, 30 s ago');
    // Seen from node2's own page, the override is "on this node".
    const x = D.view([res[1]!], D.newState(), T, O2);
    expect(text(x.servers)).toContain('maint \u2014 override on this node, 30 s ago');
  });

  it('says a server in maint got there by the end of a drain, and why', () => {
    const D = load();
    const ended = server({ admin: 'maint', adminSet: { scope: 'cluster', node: 'node2', at: T - 5000 }, drain: { scope: 'cluster', by: 'node1', bindings: 0, ended: 'no-bindings', endedAt: T - 5000, endedBy: 'node2' } });
    const v = D.view([{ origin: O1, ok: true, s: summary('node1', [], [ended]) }], D.newState(), T, O1);
    expect(text(v.servers)).toContain('maint after drain: no bindings left');
    expect(text(v.servers)).toContain('maint \u2014 set by node2 5 s ago');
    expect(v.servers).not.toContain('bindings left,');
  });

  it('renders servers of older nodes (no adminSet/weightSet) and config state without attribution', () => {
    const D = load();
    const v = D.view([{ origin: O1, ok: true, s: summary('node1', [], [server({ admin: 'drain' })]) }], D.newState(), T, O1);
    expect(v.servers).toContain('data-admin="drain"');
    expect(v.servers).toContain('data-scope=""');
    expect(v.servers).not.toContain('class="by"');
    const c = D.view([{ origin: O1, ok: true, s: summary('node1', [], [server({ adminSet: { scope: 'config' }, weightSet: { scope: 'config' } })]) }], D.newState(), T, O1);
    expect(c.servers).toContain('data-scope="config"');
    expect(c.servers).not.toContain('class="by"');
  });

  it("announces that the page's own node is down and which nodes it reads from", () => {
    const D = load();
    const st = D.newState();
    const all = [O1, O2, O3].map((o, i) => ({ origin: o, ok: true, s: summary(`node${i + 1}`, []) }));
    expect(D.view(all, st, T, O1).origin).toEqual({ down: false, reading: 'node1,node2,node3', text: '' });
    const v = D.view([{ origin: O1, ok: false, error: 'Failed to fetch', since: T - 5000 }, all[1], all[2]], st, T, O1);
    expect(v.origin.down).toBe(true);
    expect(v.origin.reading).toBe('node2,node3');
    expect(v.origin.text).toBe(`node1 (${O1}), the node that served this page, has not answered since 11:59:55: reading the cluster from node2, node3`);
    const none = D.view([{ origin: O1, ok: false, error: 'x' }], st, T, O1);
    expect(none.origin.text).toContain('no other node answers either');
  });
});

describe('dashboard poll schedule', () => {
  it('logs a node down once, backs off 5/10/20/30 s, and reports it back once', () => {
    const D = load();
    const s = D.newSchedule();
    expect(D.BACKOFF_MS).toEqual([5000, 10000, 20000, 30000]);
    expect(D.due(s, O1, T, true)).toBe(true);
    expect(D.record(s, O1, true, T)).toBe('');
    expect(D.record(s, O1, false, T, 'Failed to fetch')).toBe('down');
    expect(D.waiting(s, O1)).toEqual({ origin: O1, ok: false, error: 'Failed to fetch', since: T });
    // Asked again after each step of the backoff only; later failures log nothing.
    let t = T;
    const asked: number[] = [];
    for (let now = T + 1000; now <= T + 120_000; now += 1000) {
      if (!D.due(s, O1, now, false)) continue;
      asked.push(now - t);
      t = now;
      expect(D.record(s, O1, false, now, 'Failed to fetch')).toBe('');
    }
    expect(asked).toEqual([5000, 10000, 20000, 30000, 30000]);
    expect(D.record(s, O1, true, T + 121_000)).toBe('back');
    expect(s.size).toBe(0);
  });

  it('asks a down node at once when its peers see it live again after having seen it gone', () => {
    const D = load();
    const s = D.newSchedule();
    D.record(s, O1, false, T, 'refused');
    // Peers still report the session of a node that just died: no early retry for that.
    expect(D.due(s, O1, T + 1000, true)).toBe(false);
    expect(D.due(s, O1, T + 2000, false)).toBe(false);
    // Seen without a session, then with one again: one retry now, not one per second.
    expect(D.due(s, O1, T + 3000, true)).toBe(true);
    D.record(s, O1, false, T + 3000, 'refused');
    expect(D.due(s, O1, T + 4000, true)).toBe(false);
    expect(D.due(s, O1, T + 7999, true)).toBe(false);
    expect(D.due(s, O1, T + 13_000, true)).toBe(true);
  });

  it('collects the peers that answering nodes see live', () => {
    const D = load();
    const names = D.liveNames([{ origin: O2, ok: true, s: summary('node2', [dead('node1', T), live('node3')]) }, { origin: O1, ok: false }]);
    expect([...names]).toEqual(['node3']);
  });
});
