import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../../test/helpers/wait.js';
import { FakeTable } from '../test/fake-table.js';
import { makeNode, reasons, statusOf, type Node } from '../test/harness.js';
import { decode, encode, NONCE_BYTES, PROTO } from './codec.js';
import { compareSchemas, sharedInternal } from './handshake.js';

const started: Node[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((n) => n.svc.stop()));
});

/** Starts `hi` (accepting) then `lo` (dialing it); each with its own tables. */
async function pair(lo: { name: string; tables: FakeTable[] }, hi: { name: string; tables: FakeTable[] }): Promise<[Node, Node]> {
  const b = makeNode(hi.name, { [lo.name]: 0 }, { tables: hi.tables }, hi.tables[0]);
  started.push(b);
  await b.svc.start();
  const a = makeNode(lo.name, { [hi.name]: b.svc.address.port }, { tables: lo.tables }, lo.tables[0]);
  started.push(a);
  await a.svc.start();
  return [a, b];
}

describe('internal tables (ids starting with #)', () => {
  it('are listed apart from the configured tables, so a node that compares table lists exactly still accepts', () => {
    const a = makeNode('a', {}, { tables: [new FakeTable('a', 't1'), new FakeTable('a', '#servers')] });
    const old = makeNode('b', {}, { tables: [new FakeTable('b', 't1')] });
    expect(a.svc.schema.map((s) => s.id)).toEqual(['t1']);
    expect(a.svc.internalSchema.map((s) => s.id)).toEqual(['#servers']);
    // The previous version's rule: both `tables` lists must be identical.
    expect(compareSchemas(old.svc.schema, a.svc.schema)).toBeNull();
    // A node without internal tables sends the auth of before (no `internal` field); decode gives [].
    const auth = { t: 'auth' as const, proto: PROTO, cluster: 'c', node: 'b', nonce2: Buffer.alloc(NONCE_BYTES), mac: Buffer.alloc(32), tables: old.svc.schema, caps: [] };
    const m = decode(encode(auth));
    expect(m.t === 'auth' && m.internal).toEqual([]);
    const withInternal = decode(encode({ ...auth, internal: a.svc.internalSchema }));
    expect(withInternal.t === 'auth' && withInternal.internal?.map((s) => s.id)).toEqual(['#servers']);
    expect(sharedInternal(a.svc.internalSchema, [{ id: '#servers', type: 'string', keyLen: 1 }])).toMatchObject({ shared: new Set(), mismatched: ['#servers'] });
  });

  it('a node of the previous version (no internal tables) joins: configured tables replicate, the internal one stays home, both are ready', async () => {
    const aT1 = new FakeTable('a', 't1');
    const aInt = new FakeTable('a', '#servers');
    const bT1 = new FakeTable('b', 't1');
    const [a, b] = await pair({ name: 'a', tables: [aT1, aInt] }, { name: 'b', tables: [bT1] });
    await expect(a.svc.ready).resolves.toMatchObject({ reason: 'resynced' });
    await expect(b.svc.ready).resolves.toMatchObject({ reason: 'resynced' });
    aInt.set('state:app/web1', '{"s":"drain"}');
    aT1.set('k1', 's1');
    a.svc.notify();
    await waitFor(() => bT1.entries.get('k1')?.server === 's1', 5000, 't1 replicated to the older node');
    await waitFor(() => statusOf(a, 'b').state === 'live' && statusOf(b, 'a').state === 'live', 5000, 'live');
    expect(reasons(a)).toEqual([]);
    expect(reasons(b)).toEqual([]);
    expect(Object.keys(statusOf(a, 'b').cursor)).toEqual(['t1']);
    expect(statusOf(a, 'b').internalTables).toEqual([]);
    expect(statusOf(b, 'a').internalTables).toBeUndefined();
    expect(a.lines.some((l) => l.msg.includes('does not have these internal tables'))).toBe(true);
  });

  it('are exchanged when both sides list them', async () => {
    const aInt = new FakeTable('a', '#servers');
    const bInt = new FakeTable('b', '#servers');
    const [a, b] = await pair({ name: 'a', tables: [new FakeTable('a', 't1'), aInt] }, { name: 'b', tables: [new FakeTable('b', 't1'), bInt] });
    await expect(a.svc.ready).resolves.toMatchObject({ reason: 'resynced' });
    aInt.set('state:app/web1', '{"s":"drain"}');
    a.svc.notify();
    bInt.set('weight:app/web1', '{"w":3}');
    b.svc.notify();
    await waitFor(() => bInt.entries.get('state:app/web1')?.server === '{"s":"drain"}', 5000, '#servers a -> b');
    await waitFor(() => aInt.entries.get('weight:app/web1')?.server === '{"w":3}', 5000, '#servers b -> a');
    expect(Object.keys(statusOf(a, 'b').cursor).sort()).toEqual(['#servers', 't1']);
    expect(statusOf(b, 'a').internalTables).toEqual(['#servers']);
  });

  it('with another type on the peer are not exchanged; the session stays up', async () => {
    const aInt = new FakeTable('a', '#servers');
    const bInt = new FakeTable('b', '#servers', { keyLen: 8 });
    const [a, b] = await pair({ name: 'a', tables: [new FakeTable('a', 't1'), aInt] }, { name: 'b', tables: [new FakeTable('b', 't1'), bInt] });
    await expect(a.svc.ready).resolves.toMatchObject({ reason: 'resynced' });
    await expect(b.svc.ready).resolves.toMatchObject({ reason: 'resynced' });
    await waitFor(() => statusOf(a, 'b').state === 'live', 5000, 'live');
    expect(Object.keys(statusOf(a, 'b').cursor)).toEqual(['t1']);
    expect(reasons(a)).toEqual([]);
    expect(a.lines.some((l) => l.msg.includes('another type or key length'))).toBe(true);
  });
});
