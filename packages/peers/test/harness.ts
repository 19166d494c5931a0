/** Test harness: pino loggers captured into arrays, and services wired together on 127.0.0.1:0. */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { PeersService } from '../src/service.js';
import type { PeersServiceOptions } from '../src/types.js';
import { FakeTable } from './fake-table.js';

export interface LogLine {
  level: number;
  msg: string;
  peer?: string;
  reason?: string;
  [k: string]: unknown;
}

export function captureLogger(): { logger: pino.Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as LogLine);
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

export interface Node {
  name: string;
  table: FakeTable;
  svc: PeersService;
  lines: LogLine[];
}

export type NodeOpts = Partial<Omit<PeersServiceOptions, 'node' | 'peers' | 'logger'>>;

export const fast: NodeOpts = { heartbeatMs: 100, deadAfterMs: 1500, resyncTimeoutMs: 5000 };

/** Creates (not starts) a service for `name` knowing `peers` (name -> port; 0 when never dialed). */
export function makeNode(name: string, peers: Record<string, number>, opts: NodeOpts = {}, table = new FakeTable(name)): Node {
  const { logger, lines } = captureLogger();
  const svc = new PeersService({
    node: name,
    cluster: 'c1',
    secret: 's3cret',
    bind: { host: '127.0.0.1', port: 0 },
    peers: Object.entries(peers).map(([n, port]) => ({ name: n, host: '127.0.0.1', port })),
    tables: opts.tables ?? [table],
    logger,
    ...fast,
    ...opts,
  });
  return { name, table, svc, lines };
}

/**
 * Starts a full mesh of `names`: highest name first, since lower names dial higher ones and need their
 * ports. Returns the nodes in the given order.
 */
export async function mesh(names: string[], opts: (name: string) => NodeOpts = () => ({})): Promise<Node[]> {
  const sorted = [...names].sort().reverse();
  const ports: Record<string, number> = {};
  const nodes = new Map<string, Node>();
  for (const n of sorted) {
    const peers: Record<string, number> = {};
    for (const o of names) if (o !== n) peers[o] = ports[o] ?? 0;
    const node = makeNode(n, peers, opts(n));
    await node.svc.start();
    ports[n] = node.svc.address.port;
    nodes.set(n, node);
  }
  return names.map((n) => nodes.get(n)!);
}

export function statusOf(node: Node, peer: string) {
  const s = node.svc.status().find((x) => x.peer === peer);
  if (!s) throw new Error(`${node.name} has no peer ${peer}`);
  return s;
}

export const reasons = (n: Node): string[] => n.lines.filter((l) => l.level === 40 && l.reason).map((l) => String(l.reason));
