/**
 * Recovery paths found by the replication benchmark: a live receiver that falls off the sender's
 * bounded update log gets a full resync inside the same session (no protocol error, no reconnect),
 * and a restarted node that sorts higher is dialed at once (knock) instead of after the dialer's
 * backoff. A peer's `lastDataAt` says when it was last heard, and stays put once it is gone.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { FakeTable } from '../test/fake-table.js';
import { makeNode, mesh, reasons, statusOf, type Node } from '../test/harness.js';
import { waitFor } from '../../../test/helpers/wait.js';

let nodes: Node[] = [];
afterEach(async () => {
  for (const n of nodes) await n.svc.stop();
  nodes = [];
});

describe('peers recovery', () => {
  it('resyncs a live receiver that fell off the update log within the same session', async () => {
    const [a, b] = await mesh(['a', 'b'], (n) => (n === 'a' ? { tables: [new FakeTable('a', 't1', { logMax: 50 })] } : {}));
    nodes = [a!, b!];
    const ta = a!.svc.tables.get('t1') as unknown as FakeTable;
    await waitFor(() => statusOf(a!, 'b').state === 'live' && statusOf(b!, 'a').state === 'live', 5000, 'live session');
    ta.set('k0', 'web1');
    await waitFor(() => b!.table.count === 1, 5000, 'first delta');
    // 1,000 writes in one turn: by the time the sender pumps, b's position left the 50-entry log.
    for (let i = 1; i <= 1000; i++) ta.set(`k${i}`, `web${i % 3}`);
    a!.svc.notify();
    await waitFor(() => b!.table.count === 1001, 5000, 'b to hold every entry');
    expect(reasons(a!).concat(reasons(b!))).not.toContain('unexpected-message');
    expect(statusOf(a!, 'b').state).toBe('live');
    expect(statusOf(a!, 'b').resyncsSent).toBeGreaterThanOrEqual(1);
    expect(a!.svc.status()[0]!.resyncsSent).toBeGreaterThanOrEqual(1);
  });

  it('dials a restarted higher-named peer at once when it knocks, not after backoff', async () => {
    const [a, b] = await mesh(['a', 'b']);
    nodes = [a!, b!];
    await waitFor(() => statusOf(a!, 'b').state === 'live', 5000, 'live session');
    const port = b!.svc.address.port;
    await b!.svc.stop();
    // Let a's reconnect backoff grow past a few seconds.
    await waitFor(() => a!.lines.filter((l) => l.msg === 'peers: reconnect scheduled').length >= 6, 15000, 'backoff to grow');
    const b2 = makeNode('b', { a: a!.svc.address.port }, { bind: { host: '127.0.0.1', port } });
    nodes.push(b2);
    a!.table.set('k', 'web1');
    const t0 = Date.now();
    await b2.svc.start();
    const r = await b2.svc.ready;
    expect(r.reason).toBe('resynced');
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(b2.table.count).toBe(1);
  });
  it("keeps a peer's lastDataAt at its last frame once it is gone: absent before, advancing while live", async () => {
    const [a, b] = await mesh(['a', 'b']);
    nodes = [a!, b!];
    await waitFor(() => statusOf(a!, 'b').state === 'live', 5000, 'live session');
    const first = statusOf(a!, 'b').lastDataAt!;
    expect(first).toBeGreaterThan(Date.now() - 5000);
    // An idle session still advances it: heartbeat pongs (every 100 ms here) count.
    await waitFor(() => statusOf(a!, 'b').lastDataAt! > first + 200, 5000, 'lastDataAt to advance on an idle session');
    await b!.svc.stop();
    await waitFor(() => statusOf(a!, 'b').state !== 'live' && statusOf(a!, 'b').state !== 'resyncing', 5000, 'session down');
    const last = statusOf(a!, 'b').lastDataAt!;
    const downAt = Date.now();
    await waitFor(() => a!.lines.filter((l) => l.msg === 'peers: reconnect scheduled').length >= 2, 10000, 'reconnect attempts');
    expect(statusOf(a!, 'b').lastDataAt).toBe(last);
    expect(last).toBeLessThanOrEqual(downAt);
    // A peer never heard from has none.
    const c = makeNode('c', { d: 1 });
    nodes.push(c);
    await c.svc.start();
    expect(statusOf(c, 'd').lastDataAt).toBeUndefined();
    expect('lastDataAt' in statusOf(c, 'd')).toBe(false);
  });
});
