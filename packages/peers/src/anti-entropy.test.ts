import { afterEach, describe, expect, it } from 'vitest';
import { StickTable, type StickTableConfig, type TableUpdate } from '@stickmesh/core';
import { waitFor } from '../../../test/helpers/wait.js';
import { captureLogger, fast } from '../test/harness.js';
import { PeersService } from './service.js';
import type { PeersServiceOptions } from './types.js';

interface N {
  name: string;
  table: StickTable;
  svc: PeersService;
}
const started: N[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((n) => n.svc.stop()));
});

function cfg(): StickTableConfig {
  return { id: 't1', name: 't1', type: 'string', keyLen: 32, size: 100_000, expire: 600_000, store: [], srvkey: 'name', loc: { file: 'test', line: 1 } };
}

/** Starts b (acceptor) then a (dialer) with real StickTables. */
async function pair(opts: { a?: Partial<PeersServiceOptions>; b?: Partial<PeersServiceOptions>; seed?: (a: StickTable, b: StickTable) => void } = {}): Promise<[N, N]> {
  const ta = new StickTable(cfg(), { node: 'a' });
  const tb = new StickTable(cfg(), { node: 'b' });
  opts.seed?.(ta, tb);
  const mk = (name: string, table: StickTable, peers: PeersServiceOptions['peers'], o: Partial<PeersServiceOptions> = {}): N => {
    const svc = new PeersService({
      node: name, cluster: 'c1', secret: 'k', bind: { host: '127.0.0.1', port: 0 }, peers, tables: [table],
      logger: captureLogger().logger, ...fast, antiEntropyMs: 50, ...o,
    });
    const n = { name, table, svc };
    started.push(n);
    return n;
  };
  const b = mk('b', tb, [{ name: 'a', host: '127.0.0.1', port: 0 }], opts.b);
  await b.svc.start();
  const a = mk('a', ta, [{ name: 'b', host: '127.0.0.1', port: b.svc.address.port }], opts.a);
  await a.svc.start();
  await Promise.all([a.svc.ready, b.svc.ready]);
  await waitFor(() => a.svc.status()[0]!.state === 'live' && b.svc.status()[0]!.state === 'live', 5000, 'live');
  return [a, b];
}

const upd = (key: string, server: string, wall: number, node = 'x', counter = 0): TableUpdate =>
  ({ key, server, ttl: 0, wall, counter, node, connCnt: 0, httpReqCnt: 0 });

const sameDigests = (a: StickTable, b: StickTable) => Buffer.compare(Buffer.from(a.bucketDigests().buffer), Buffer.from(b.bucketDigests().buffer)) === 0;

describe('anti-entropy', () => {
  it('heals divergence that deltas never carry (writes applied with applyRemote on one side)', async () => {
    const [a, b] = await pair();
    const now = Date.now();
    // Not in either update log: only anti-entropy can move these.
    for (let i = 0; i < 50; i++) a.table.applyRemote(upd(`only-a-${i}`, 'sa', now));
    for (let i = 0; i < 30; i++) b.table.applyRemote(upd(`only-b-${i}`, 'sb', now));
    // Conflicting versions of one key: the newer one must win on both sides.
    a.table.applyRemote(upd('both', 'old', now - 1000));
    b.table.applyRemote(upd('both', 'new', now));
    // A tombstone (deleted key) is an entry like any other.
    a.table.applyRemote(upd('gone', 's1', now - 10));
    b.table.applyRemote(upd('gone', '', now));
    expect(sameDigests(a.table, b.table)).toBe(false);

    await waitFor(() => sameDigests(a.table, b.table), 5000, 'digests converge');
    expect(a.table.digest()).toBe(b.table.digest());
    expect(a.table.get('only-b-7')?.server).toBe('sb');
    expect(b.table.get('only-a-49')?.server).toBe('sa');
    expect(a.table.get('both')?.server).toBe('new');
    expect(a.table.lookup('gone')).toBeUndefined();
    expect(b.table.lookup('gone')).toBeUndefined();

    const sa = a.svc.stats();
    const sb = b.svc.stats();
    expect(sa.antiEntropyRounds).toBeGreaterThan(0);
    expect(sb.antiEntropyRounds).toBeGreaterThan(0);
    expect(sb.bucketsCompared).toBeGreaterThanOrEqual(256);
    expect(sa.bucketsRepaired).toBeGreaterThan(0);
    expect(sb.bucketsRepaired).toBe(sa.bucketsRepaired);
    // a learned b's 30 + 'both' + 'gone'; b learned a's 50.
    expect(sa.entriesRepaired).toBe(32);
    expect(sb.entriesRepaired).toBe(50);
    expect(a.svc.status()[0]).toMatchObject({ bucketsRepaired: sa.bucketsRepaired, entriesRepaired: 32 });
    // Deltas carried none of it.
    expect(a.svc.status()[0]!.received).toBe(0);
    expect(b.svc.status()[0]!.received).toBe(0);
  });

  it('heals a 10,000-entry divergence within the per-round bucket bound', async () => {
    const [a, b] = await pair({ a: { antiEntropyBuckets: 16 }, b: { antiEntropyBuckets: 16 } });
    const now = Date.now();
    for (let i = 0; i < 10_000; i++) a.table.applyRemote(upd(`k${i}`, `s${i % 5}`, now));
    const t0 = Date.now();
    await waitFor(() => sameDigests(a.table, b.table), 20_000, '10k healed');
    const ms = Date.now() - t0;
    expect(b.table.count).toBe(10_000);
    expect(a.table.digest()).toBe(b.table.digest());
    const sb = b.svc.stats();
    expect(sb.entriesRepaired).toBe(10_000);
    // 16 buckets per round: all 256 buckets differ, so at least 16 rounds did the work.
    expect(sb.bucketsRepaired).toBe(256);
    expect(sb.antiEntropyRounds).toBeGreaterThanOrEqual(16);
    console.log(`anti-entropy: 10000 entries healed in ${ms} ms (${sb.antiEntropyRounds} rounds at 50 ms)`);
  });

  it('sends no repair traffic while the tables are equal', async () => {
    const [a, b] = await pair({
      seed: (ta, tb) => {
        for (let i = 0; i < 2000; i++) ta.setLocal(`ka${i}`, 's1');
        for (let i = 0; i < 2000; i++) tb.setLocal(`kb${i}`, 's2');
      },
    });
    // The dialer counts a round when it sends digests, the acceptor when it compares them: wait for
    // the acceptor to have compared ten rounds too, not only for the dialer to have sent them.
    await waitFor(() => a.svc.stats().antiEntropyRounds >= 10 && b.svc.stats().bucketsCompared >= 10 * 256, 5000, 'rounds');
    expect(sameDigests(a.table, b.table)).toBe(true);
    for (const s of [a.svc.stats(), b.svc.stats()]) {
      expect(s.bucketsRepaired).toBe(0);
      expect(s.entriesRepaired).toBe(0);
      expect(s.repairUpdatesSent).toBe(0);
    }
    expect(b.svc.stats().bucketsCompared).toBeGreaterThanOrEqual(10 * 256);
  });

  it('runs no rounds with a node that does not advertise it (antiEntropyMs 0), and the session stays up', async () => {
    const [a, b] = await pair({ b: { antiEntropyMs: 0 } });
    a.table.applyRemote(upd('diverged', 's1', Date.now()));
    await new Promise((r) => setTimeout(r, 400));
    expect(a.svc.stats().antiEntropyRounds).toBe(0);
    expect(b.svc.stats().antiEntropyRounds).toBe(0);
    expect(a.svc.status()[0]!.state).toBe('live');
    expect(a.svc.refusals).toEqual({});
  });

  it('rejects a bad configuration', () => {
    const base = { node: 'a', cluster: 'c', secret: '', bind: { host: '127.0.0.1', port: 0 }, peers: [], tables: [], logger: captureLogger().logger };
    expect(() => new PeersService({ ...base, antiEntropyBuckets: 0 })).toThrow(/antiEntropyBuckets/);
    expect(() => new PeersService({ ...base, antiEntropyBuckets: 257 })).toThrow(/antiEntropyBuckets/);
    expect(() => new PeersService({ ...base, antiEntropyMs: -1 })).toThrow(/antiEntropyMs/);
  });
});
