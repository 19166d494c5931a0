import { afterEach, describe, expect, it } from 'vitest';
import { pack } from 'msgpackr';
import { waitFor } from '../../../test/helpers/wait.js';
import { FakeCounters } from '../test/fake-counters.js';
import { FakeTable } from '../test/fake-table.js';
import { makeNode, mesh, statusOf, type Node } from '../test/harness.js';
import { decode, encode, encodeShares, MAX_COUNTER_WIDTH, MAX_SHARE_KEY, MAX_SHARES_PER_FRAME, ProtocolError } from './codec.js';
import { LagWindow } from './lag-window.js';

const started: Node[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((n) => n.svc.stop()));
});

/** A full mesh of `names` where each node replicates the FakeCounters given for it. */
async function counterMesh(names: string[], make: (name: string) => FakeCounters = (n) => new FakeCounters(n), extra: Record<string, unknown> = {}) {
  const counters = new Map(names.map((n) => [n, make(n)]));
  const nodes = await mesh(names, (n) => ({ counters: [counters.get(n)!], antiEntropyMs: 0, ...extra }));
  started.push(...nodes);
  return { nodes, c: (n: string) => counters.get(n)! };
}

const allLive = (nodes: Node[]) => nodes.every((n) => n.svc.status().every((p) => p.state === 'live'));

describe('counter shares codec', () => {
  it('round-trips a c frame and a table list carrying a counters schema', () => {
    const shares = [{ key: '10.0.0.1', v: [3, 0.5, -1] }, { key: '', v: [0, 0, 0] }];
    expect(decode(encodeShares('t1', 1234, shares))).toEqual({ t: 'c', table: 't1', wall: 1234, shares });
    expect(decode(encode({ t: 'c', table: 't1', wall: 0, shares: [] }))).toEqual({ t: 'c', table: 't1', wall: 0, shares: [] });
    const tables = [{ id: 't1', type: 'ip', keyLen: 32, counters: 'http_req_rate(10000)' }, { id: 't2', type: 'ip', keyLen: 32 }];
    const w = decode(encode({ t: 'welcome', mac2: Buffer.alloc(32), tables, caps: ['ctr'] }));
    expect(w).toMatchObject({ t: 'welcome', tables, caps: ['ctr'] });
    expect('counters' in (w as { tables: object[] }).tables[1]!).toBe(false);
  });

  it('rejects malformed c frames as malformed-frame', () => {
    const frames: Record<string, unknown>[] = [
      { t: 'c', table: 't1', wall: -1, shares: [] },
      { t: 'c', table: 't1', wall: NaN, shares: [] },
      { t: 'c', table: 't1', wall: Infinity, shares: [] },
      { t: 'c', table: 't1', shares: [] },
      { t: 'c', table: 't1', wall: 1, shares: {} },
      { t: 'c', table: 't1', wall: 1 },
      { t: 'c', wall: 1, shares: [] },
      { t: 'c', table: 7, wall: 1, shares: [] },
      { t: 'c', table: 't1', wall: 1, shares: [['k']] }, // no value
      { t: 'c', table: 't1', wall: 1, shares: [[1, 2]] }, // key not a string
      { t: 'c', table: 't1', wall: 1, shares: [['k', '1']] },
      { t: 'c', table: 't1', wall: 1, shares: [['k', null]] },
      { t: 'c', table: 't1', wall: 1, shares: [['k', Infinity]] },
      { t: 'c', table: 't1', wall: 1, shares: [['k', 1], ['j', 1, 2]] }, // widths differ
      { t: 'c', table: 't1', wall: 1, shares: [{ key: 'k', v: [1] }] },
      { t: 'c', table: 't1', wall: 1, shares: [['x'.repeat(MAX_SHARE_KEY + 1), 1]] },
      { t: 'c', table: 't1', wall: 1, shares: [['k', ...new Array(MAX_COUNTER_WIDTH + 1).fill(1)]] },
      { t: 'c', table: 't1', wall: 1, shares: new Array(MAX_SHARES_PER_FRAME + 1).fill(['k', 1]) },
      { t: 'welcome', mac2: Buffer.alloc(32), tables: [{ id: 't1', type: 'ip', keyLen: 32, counters: 5 }] },
      { t: 'welcome', mac2: Buffer.alloc(32), tables: [{ id: 't1', type: 'ip', keyLen: 32, counters: 'x'.repeat(5000) }] },
    ];
    for (const f of frames) {
      let err: unknown;
      try {
        decode(pack(f));
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(f).slice(0, 80)).toBeInstanceOf(ProtocolError);
      expect((err as ProtocolError).reason).toBe('malformed-frame');
    }
    // At the bounds: accepted.
    expect(decode(pack({ t: 'c', table: 't1', wall: 1, shares: new Array(MAX_SHARES_PER_FRAME).fill(['x'.repeat(MAX_SHARE_KEY), ...new Array(4).fill(1)]) })).t).toBe('c');
  });

  it('lag window: quantiles over recent samples, fixed memory', () => {
    const w = new LagWindow(100, 1000);
    expect(w.quantiles([0.5])).toBeUndefined();
    for (let i = 1; i <= 250; i++) w.record(i, 10_000); // only the last 100 (151..250) are kept
    expect(w.count(10_000)).toBe(100);
    expect(w.quantiles([0.5, 0.99, 1], 10_000)).toEqual([200, 249, 250]);
    expect(w.quantiles([0.5], 12_000)).toBeUndefined(); // all older than the window
    expect(w.last).toBe(250);
  });
});

describe('counter shares over the mesh', () => {
  it('refuses counters of a table it does not replicate', () => {
    expect(() => makeNode('a', {}, { counters: [new FakeCounters('a', 'nope')] })).toThrow(/not replicated/);
  });

  it('three nodes: the sum converges everywhere, shares replace (never add twice) and are never re-broadcast', async () => {
    const { nodes, c } = await counterMesh(['a', 'b', 'c']);
    await waitFor(() => allLive(nodes), 5000, 'mesh live');
    c('a').add('k', 5);
    c('b').add('k', 7);
    c('c').add('k', 11);
    c('c').add('j', 1, 1);
    await waitFor(() => ['a', 'b', 'c'].every((n) => c(n).read('k') === 23 && c(n).read('j', 1) === 1), 5000, 'sum 23 everywhere');
    // More of a's share: the peers replace a's share (5 -> 8), they do not add 8 to 5.
    c('a').add('k', 3);
    await waitFor(() => c('b').read('k') === 26 && c('c').read('k') === 26, 5000, 'sum 26');
    expect(c('b').shareOf('a', 'k')).toEqual([8, 0]);
    // Every share a node received came from its owner, with the owner's own values: no echo.
    for (const n of ['a', 'b', 'c']) {
      for (const { node, u } of c(n).applied) {
        expect(node).not.toBe(n);
        expect(c(node).shareOf(node, u.key)).toBeDefined();
      }
      const fromOthers = c(n).applied.filter((x) => x.u.key === 'k');
      expect(new Set(fromOthers.map((x) => x.node))).toEqual(new Set(['a', 'b', 'c'].filter((x) => x !== n)));
    }
    for (const n of nodes) {
      for (const p of n.svc.status()) {
        expect(p.counterTables).toEqual(['t1']);
        expect(p.sharesRejected).toBe(0);
        expect(p.refusals).toEqual({});
      }
    }
  });

  it('a reconnected peer gets every current share again (the export), not only later changes', async () => {
    const { nodes, c } = await counterMesh(['a', 'b']);
    const [a, b] = nodes as [Node, Node];
    await waitFor(() => allLive(nodes), 5000, 'live');
    for (let i = 0; i < 50; i++) c('a').add(`k${i}`, i + 1);
    await waitFor(() => c('b').read('k49') === 50, 5000, 'shares at b');
    await waitFor(() => c('a').dirty === 0, 5000, 'a drained');
    // b "restarts": its session goes, and it forgets every share it had learned.
    await b.svc.stop();
    c('b').shares.delete('a');
    await b.svc.start();
    await waitFor(() => allLive(nodes), 5000, 'live again');
    await waitFor(() => Array.from({ length: 50 }, (_, i) => c('b').read(`k${i}`) === i + 1).every(Boolean), 5000, 'export after reconnect');
    expect(statusOf(a, 'b').reconnects).toBe(1);
    expect(statusOf(a, 'b').sharesSent).toBeGreaterThanOrEqual(100);
  });

  it('drops the gauge shares of a peer whose session died; its counts stay', async () => {
    const { nodes, c } = await counterMesh(['a', 'b', 'c']);
    await waitFor(() => allLive(nodes), 5000, 'live');
    c('a').add('k', 4, 0);
    c('a').add('k', 2, 1); // a gauge share (conn_cur)
    c('b').add('k', 1, 1);
    await waitFor(() => c('c').read('k', 1) === 3 && c('c').read('k', 0) === 4, 5000, 'gauge 3 at c');
    await nodes[0]!.svc.stop();
    await waitFor(() => c('c').dropped.includes('a') && c('b').dropped.includes('a'), 5000, 'a dropped');
    expect(c('c').read('k', 1)).toBe(1);
    expect(c('b').read('k', 1)).toBe(1);
    expect(c('c').read('k', 0)).toBe(4); // rate/count shares fade with their window, not at once
    expect(c('c').dropped).not.toContain('b');
  });

  it('a peer with another counters schema gets no shares and its shares are ignored; the session stays up', async () => {
    const { nodes, c } = await counterMesh(['a', 'b', 'c'], (n) => new FakeCounters(n, 't1', n === 'c' ? 'gpc0' : 'http_req_cnt,conn_cur'));
    const [a, b, cc] = nodes as [Node, Node, Node];
    await waitFor(() => allLive(nodes), 5000, 'live');
    c('a').add('k', 2);
    c('c').add('k', 100);
    await waitFor(() => c('b').read('k') === 2, 5000, 'a -> b');
    // Table replication is unaffected across the mismatch.
    cc.table.set('from-c', 's1');
    cc.svc.notify();
    await waitFor(() => a.table.entries.has('from-c') && b.table.entries.has('from-c'), 5000, 'table c -> a, b');
    expect(c('c').read('k')).toBe(100);
    expect(c('a').read('k')).toBe(2);
    expect(c('c').applied).toEqual([]);
    expect(c('a').applied.every((x) => x.node === 'b')).toBe(true);
    expect(statusOf(a, 'c').refusals['counter-schema-mismatch']).toBe(1);
    expect(statusOf(cc, 'a').refusals['counter-schema-mismatch']).toBe(1);
    expect(statusOf(a, 'c').counterTables).toEqual([]);
    expect(statusOf(a, 'b').counterTables).toEqual(['t1']);
    expect(statusOf(a, 'c').state).toBe('live');
    expect(statusOf(a, 'c').reconnects).toBe(0);
    expect(a.lines.filter((l) => l.reason === 'counter-schema-mismatch').length).toBe(1);
  });

  it('a node replicating no counters: sessions stay up, shares are not exchanged', async () => {
    const ca = new FakeCounters('a');
    const nodes = await mesh(['a', 'b'], (n) => (n === 'a' ? { counters: [ca] } : {}));
    started.push(...nodes);
    await waitFor(() => allLive(nodes), 5000, 'live');
    ca.add('k', 1);
    await waitFor(() => ca.dirty === 0, 5000, 'drained');
    expect(statusOf(nodes[0]!, 'b').sharesSent).toBe(0);
    expect(statusOf(nodes[0]!, 'b').refusals['counter-schema-mismatch']).toBe(1);
    expect(statusOf(nodes[1]!, 'a').refusals['counter-schema-mismatch']).toBe(1);
  });

  it('a hammered key costs each peer at most one share per counterFlushMs; the sum is exact; lag is recorded', async () => {
    const flushMs = 20;
    const { nodes, c } = await counterMesh(['a', 'b', 'c'], undefined, { counterFlushMs: flushMs });
    const [a, b] = nodes as [Node, Node, Node];
    await waitFor(() => allLive(nodes), 5000, 'live');
    const before = { b: statusOf(b, 'a').sharesReceived!, frames: a.svc.counterStats().frames };
    const t0 = Date.now();
    let n = 0;
    while (Date.now() - t0 < 600) {
      for (let i = 0; i < 200; i++) c('a').add('hot');
      n += 200;
      await new Promise((r) => setImmediate(r));
    }
    await waitFor(() => c('b').read('hot') === n && c('c').read('hot') === n, 5000, 'exact sum');
    const ms = Date.now() - t0;
    const shares = statusOf(b, 'a').sharesReceived! - before.b;
    const frames = a.svc.counterStats().frames - before.frames;
    // One share per flush at most, flushes at least flushMs apart (+1: the flush of the tail).
    expect(shares).toBeLessThanOrEqual(Math.ceil(ms / flushMs) + 1);
    expect(frames).toBe(shares); // one key per flush: one frame, encoded once for both peers
    expect(statusOf(a, 'b').sharesSent).toBe(statusOf(a, 'c').sharesSent);
    expect(n / shares).toBeGreaterThan(50); // the batching did coalesce
    const s = statusOf(b, 'a');
    expect(s.counterLagSamples).toBeGreaterThan(0);
    expect(s.counterLagP50Ms).toBeGreaterThanOrEqual(0);
    expect(s.counterLagP99Ms).toBeGreaterThanOrEqual(s.counterLagP50Ms!);
    // The lag includes waiting for the flush, so it is at least 0 and at most flushMs plus loop delays.
    expect(s.counterLagP50Ms).toBeLessThan(1000);
    expect(s.counterLagMs).toBeLessThan(1000);
  });

  it('shares changed while a peer is down reach it by the export when it comes back', async () => {
    const { nodes, c } = await counterMesh(['a', 'b']);
    const [, b] = nodes as [Node, Node];
    await waitFor(() => allLive(nodes), 5000, 'live');
    await b.svc.stop();
    c('a').add('while-down', 9);
    await waitFor(() => c('a').dirty === 0, 5000, 'drained with nobody to send to');
    await b.svc.start();
    await waitFor(() => c('b').read('while-down') === 9, 5000, 'exported on reconnect');
  });
});

describe('counter shares from a hostile but authenticated peer', () => {
  it('width mismatch closes that session only; the table and counters survive', async () => {
    const ca = new FakeCounters('a');
    const table = new FakeTable('a');
    const nodes = await mesh(['a', 'b'], (n) => (n === 'a' ? { counters: [ca], tables: [table] } : { counters: [new FakeCounters('b')] }));
    started.push(...nodes);
    await waitFor(() => allLive(nodes), 5000, 'live');
    // Forge a frame from b's session with a width the table does not have, straight into a's session.
    const conn = (nodes[0]!.svc as unknown as { links: Map<string, { conn: { session: { handle(m: unknown): void } } }> }).links.get('b')!.conn;
    expect(() => conn.session.handle({ t: 'c', table: 't1', wall: 1, shares: [{ key: 'k', v: [1, 2, 3] }] })).toThrow(ProtocolError);
    expect(() => conn.session.handle({ t: 'c', table: 'nope', wall: 1, shares: [] })).toThrow(ProtocolError);
    expect(ca.applied).toEqual([]);
  });
});
