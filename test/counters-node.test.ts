/**
 * Node wiring of cluster-wide counters (in process, two nodes): a replicated table's counters go to
 * the peers mesh, a `counters local` table's do not, a reload that changes the counters hands the
 * new ones to the mesh, and /metrics exposes the counter replication lag.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { CounterTable, parseConfigText, type LoadedConfig, type StoredType } from '@stickmesh/core';
import { StickmeshNode } from '../packages/cli/src/node.js';
import { freePort } from './helpers/backends.js';
import { waitFor } from './helpers/wait.js';
import { oneThread } from './helpers/in-process.js';

const DATA: StoredType[] = [
  { kind: 'http_req_rate', idx: 0, period: 10_000 },
  { kind: 'conn_cur', idx: 0, period: 0 },
];

const nodes: StickmeshNode[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) await n.stop(0, false);
});

function load(ports: Record<string, number>, name: string, mode: 'cluster' | 'local', data: StoredType[] = DATA): LoadedConfig {
  const text = `
global
    admin-bind "127.0.0.1:${ports[`${name}-admin`]}"
peers mesh
    server n1 127.0.0.1:${ports.n1}
    server n2 127.0.0.1:${ports.n2}
    table rl type ip size 1k expire 60s
defaults
    mode http
    timeout connect 1s
    timeout client 10s
    timeout server 10s
frontend web
    bind "127.0.0.1:${ports[`${name}-proxy`]}"
    default_backend app
backend app
    server s1 127.0.0.1:9
`;
  const loaded = parseConfigText(text, `${name}.cfg`, 'haproxy', {});
  // The store line's parser is another branch's work: set the table's data and mode directly.
  const t = loaded.config.peers[0]!.tables[0]!;
  t.data = data;
  t.counters = mode;
  return loaded;
}

async function pair(mode: 'cluster' | 'local') {
  const ports: Record<string, number> = {};
  for (const k of ['n1', 'n2', 'n1-admin', 'n2-admin', 'n1-proxy', 'n2-proxy']) ports[k] = await freePort();
  const logger = pino({ level: 'silent' });
  const n2 = await StickmeshNode.start(oneThread(load(ports, 'n2', mode)), { node: 'n2', logger });
  nodes.push(n2);
  const n1 = await StickmeshNode.start(oneThread(load(ports, 'n1', mode)), { node: 'n1', logger });
  nodes.push(n1);
  await waitFor(() => [n1, n2].every((n) => n.peers[0]!.status().every((p) => p.state === 'live')), 10_000, 'peers live');
  return { n1, n2, ports };
}

const ctr = (n: StickmeshNode) => n.tables.get('mesh/rl')!.counters as CounterTable;
const rate = (t: CounterTable, key: string) => {
  const s = t.find(key);
  return s < 0 ? 0 : t.read(s, t.column('http_req_rate'));
};

describe('node: cluster-wide counters through the mesh', () => {
  it('replicates a cluster table\'s shares both ways and exposes the lag on /metrics', async () => {
    const { n1, n2, ports } = await pair('cluster');
    expect(ctr(n1).mode).toBe('cluster');
    const a = ctr(n1);
    const b = ctr(n2);
    a.add(a.acquire('10.0.0.1'), a.column('http_req_rate'), 3);
    b.add(b.acquire('10.0.0.1'), b.column('http_req_rate'), 4);
    await waitFor(() => rate(a, '10.0.0.1') === 7 && rate(b, '10.0.0.1') === 7, 5000, 'sum 7 on both');
    expect(n1.peers[0]!.status()[0]!.counterTables).toEqual(['mesh/rl']);
    // Gauges are process-wide and the last node to register wins: n1's admin serves n1's view.
    const text = await waitFor(async () => {
      const t = await (await fetch(`http://127.0.0.1:${ports['n1-admin']}/metrics`)).text();
      return /stickmesh_counter_replication_lag_seconds\{peer="n2",quantile="0.99"\} \d/.test(t) ? t : undefined;
    }, 5000, 'lag metric');
    expect(text).toMatch(/stickmesh_peer_counter_shares_received\{peer="n2"\} [1-9]/);
  });

  it('does not replicate a counters local table', async () => {
    const { n1, n2 } = await pair('local');
    const a = ctr(n1);
    expect(a.mode).toBe('local');
    a.add(a.acquire('10.0.0.2'), a.column('http_req_rate'), 5);
    // A cluster table's shares would be there within milliseconds; give it a generous margin.
    const until = Date.now() + 300;
    await waitFor(() => Date.now() > until, 1000, 'margin');
    expect(rate(ctr(n2), '10.0.0.2')).toBe(0);
    expect(n1.peers[0]!.status()[0]!.counterTables ?? []).toEqual([]);
    expect(n1.peers[0]!.status()[0]!.refusals).toEqual({});
  });

  it('a reload that changes the counters gives the mesh the new ones', async () => {
    const { n1, n2, ports } = await pair('cluster');
    const before = ctr(n1);
    const more: StoredType[] = [...DATA, { kind: 'gpc', idx: 0, period: 0 }];
    await n1.reload(load(ports, 'n1', 'cluster', more));
    await n2.reload(load(ports, 'n2', 'cluster', more));
    const a = ctr(n1);
    expect(a).not.toBe(before);
    await waitFor(() => [n1, n2].every((n) => n.peers[0]!.status().every((p) => p.state === 'live' && p.counterTables?.includes('mesh/rl'))), 10_000, 'live again with counters');
    a.add(a.acquire('10.0.0.3'), a.column('gpc'), 2);
    await waitFor(() => {
      const b = ctr(n2);
      const s = b.find('10.0.0.3');
      return s >= 0 && b.read(s, b.column('gpc')) === 2;
    }, 5000, 'gpc share at n2');
  });
  it('replicates a backend stick-table that names the peers section, counters and entries, written with a real store line', async () => {
    const ports: Record<string, number> = {};
    for (const k of ['n1', 'n2', 'n1-admin', 'n2-admin', 'n1-proxy', 'n2-proxy']) ports[k] = await freePort();
    const text = (name: string) => `
global
    admin-bind "127.0.0.1:${ports[`${name}-admin`]}"
peers mesh
    server n1 127.0.0.1:${ports.n1}
    server n2 127.0.0.1:${ports.n2}
defaults
    mode http
    timeout connect 1s
    timeout client 10s
    timeout server 10s
frontend web
    bind "127.0.0.1:${ports[`${name}-proxy`]}"
    default_backend app
backend app
    stick-table type ip size 1k expire 60s peers mesh store http_req_rate(10s)
    stick on src
    server s1 127.0.0.1:9
`;
    const logger = pino({ level: 'silent' });
    for (const name of ['n2', 'n1']) nodes.push(await StickmeshNode.start(oneThread(parseConfigText(text(name), `${name}.cfg`, 'haproxy', {})), { node: name, logger }));
    const [n2, n1] = nodes as [StickmeshNode, StickmeshNode];
    await waitFor(() => [n1, n2].every((n) => n.peers[0]!.status().every((p) => p.state === 'live')), 10_000, 'peers live');
    const a = n1.tables.get('app')!.counters as CounterTable;
    const b = n2.tables.get('app')!.counters as CounterTable;
    expect(a.mode).toBe('cluster');
    a.add(a.acquire('10.0.0.2'), a.column('http_req_rate'), 2);
    b.add(b.acquire('10.0.0.2'), b.column('http_req_rate'), 5);
    await waitFor(() => rate(a, '10.0.0.2') === 7 && rate(b, '10.0.0.2') === 7, 5000, 'sum 7 on both');
    n1.tables.get('app')!.setLocal('10.0.0.3', 's1');
    await waitFor(() => n2.tables.get('app')!.lookup('10.0.0.3') === 's1', 5000, 'stick entry replicated');
  });
});
