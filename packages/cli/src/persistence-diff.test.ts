import { describe, expect, it } from 'vitest';
import { parseConfigText, type StickmeshConfig } from '@stickmesh/core';
import { countAffected, countText, persistenceDiff, remapFraction } from './persistence-diff.js';

const parse = (text: string): StickmeshConfig => parseConfigText(text, 'x.cfg', 'haproxy', {}).config;

const RL = `defaults
  mode http
frontend fe
  bind 127.0.0.1:8080
  stick-table type ip size 100k expire 10s store http_req_rate(10s)
  http-request track-sc0 src
  default_backend be
backend be
  server s1 127.0.0.1:9000
`;

describe('persistenceDiff', () => {
  it("a removed rate-limit table loses counters, not servers; its live count comes from the node", () => {
    const ws = persistenceDiff(parse(RL), parse(RL.replace(/  stick-table .*\n  http-request .*\n/, '')));
    expect(ws.map((w) => w.kind)).toEqual(['table-removed']);
    expect(ws[0]!.message).toMatch(/counters start again from zero/);
    expect(countText(ws[0]!)).toBe(' [live count unknown]');
    const counted = countAffected(ws, new Map([['fe', { live: 7, servers: new Map() }]]));
    expect(countText(counted[0]!)).toBe(' [7 stick entries affected on the running node]');
  });

  it('a table shrunk to a size its live entries fit in breaks nothing once counted', () => {
    const ws = persistenceDiff(parse(RL), parse(RL.replace('size 100k', 'size 50')));
    expect(ws.map((w) => w.kind)).toEqual(['table-shrunk']);
    expect(countAffected(ws, new Map([['fe', { live: 50, servers: new Map() }]]))).toEqual([]);
    expect(countAffected(ws, new Map([['fe', { live: 51, servers: new Map() }]]))[0]!.affected).toBe(1);
  });

  it('estimates remapping quickly even for thousands of consistently hashed servers', () => {
    const servers = (n: number): string => Array.from({ length: n }, (_, i) => `  server s${i} 10.0.${i >> 8}.${i & 255}:80`).join('\n');
    const cfg = (n: number): string => `defaults\n  mode http\nbackend be\n  balance source\n  hash-type consistent\n${servers(n)}\n`;
    const t0 = performance.now();
    const f = remapFraction(parse(cfg(5000)).backends[0]!, parse(cfg(5001)).backends[0]!);
    expect(performance.now() - t0).toBeLessThan(4000); // unbounded, 40,000 samples x 10,001 servers: ~30 s
    // One server in 5001 takes its share: about 0.02% of clients.
    expect(f).toBeLessThan(0.005);
    const same = remapFraction(parse(cfg(3)).backends[0]!, parse(cfg(3)).backends[0]!);
    expect(same).toBe(0);
  });
});
