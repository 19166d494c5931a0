import { describe, expect, it, vi } from 'vitest';
import { parseConfigText } from '@stickmesh/core';
import { RuntimeBackend } from './backend.js';
import { RuntimeServer } from './server.js';

function backendOf(n: number): RuntimeBackend {
  const lines = ['backend be', '  mode http', ...Array.from({ length: n }, (_, i) => `  server s${i} 10.0.${i >> 8}.${i & 255}:80`), ''];
  const cfg = parseConfigText(lines.join('\n'), 'b.cfg', 'haproxy', {}).config.backends[0]!;
  return new RuntimeBackend(cfg, cfg.servers.map((sc, i) => new RuntimeServer(i, sc, sc.host)));
}

describe('RuntimeBackend at scale', () => {
  it('health changes of many servers in one turn cost one rebuild, done before the next turn ends', async () => {
    const b = backendOf(2000);
    const rebuild = vi.spyOn(b.balancer, 'rebuild');
    for (const s of b.servers.slice(0, 1500)) {
      s.checkUp = false;
      b.rebuildSoon();
    }
    expect(rebuild).not.toHaveBeenCalled();
    await new Promise((r) => setImmediate(r));
    expect(rebuild).toHaveBeenCalledTimes(1);
    expect(b.candidates).toHaveLength(500);
    expect(b.candidates[0]!.name).toBe('s1500');
  });

  it('finds servers by name through a map', () => {
    const b = backendOf(3000);
    expect(b.serverByName('s2999')).toBe(b.servers[2999]);
    expect(b.serverByName('nope')).toBeUndefined();
  });
});

describe("a discovered server's weight", () => {
  it('follows DNS unless a weight was set at run time, which keeps winning over DNS updates', () => {
    const s = backendOf(1).servers[0]!;
    s.setTarget({ address: '10.1.0.1', port: 80, weight: 40 });
    expect([s.weight, s.baseWeight]).toEqual([40, 40]);
    s.adminWeight = 3;
    s.weight = 3;
    s.setTarget({ address: '10.1.0.2', port: 80, weight: 50 });
    expect([s.weight, s.baseWeight]).toEqual([3, 50]);
    s.adminWeight = undefined;
    s.setTarget(undefined);
    expect([s.weight, s.baseWeight, s.address]).toEqual([1, 1, '']);
  });
});
