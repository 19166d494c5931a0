/**
 * A node with `nbthread 2`, end to end: the main thread's health checks and admin state reach
 * both data-plane threads (a down server gets no request from either, a server put in
 * maintenance through the admin API neither), and `/metrics` and the admin API count the
 * requests both threads served.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, startBackend, type TestBackend } from './helpers/backends.js';
import { waitFor } from './helpers/wait.js';

const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../packages/cli/bin/stickmesh.js');

let child: ChildProcess | undefined;
const backends: TestBackend[] = [];
afterEach(async () => {
  child?.kill('SIGKILL');
  child = undefined;
  for (const b of backends.splice(0)) await b.close();
});

/** One request on a new connection: status and the server that answered. */
function get(port: number, pathname = '/', method = 'GET', body?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: pathname, method, agent: false, headers: body ? { 'content-type': 'application/json' } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('nbthread 2: one view of the servers, whole-node metrics', () => {
  it('checks and admin state reach both threads; /metrics and the API count both', async () => {
    const a = await startBackend('a');
    const b = await startBackend('b');
    backends.push(a, b);
    const dead = await freePort();
    const [fe, admin] = [await freePort(), await freePort()];
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sm-threads-view-'));
    const cfg = path.join(dir, 'n.cfg');
    writeFileSync(cfg, `
global
  nbthread 2
  admin-bind 127.0.0.1:${admin}
defaults
  mode http
  timeout connect 1s
  timeout client 5s
  timeout server 5s
frontend fe
  bind 127.0.0.1:${fe}
  default_backend be
backend be
  balance leastconn
  server a 127.0.0.1:${a.port} check inter 100 fall 1 rise 1
  server b 127.0.0.1:${b.port} check inter 100 fall 1 rise 1
  server dead 127.0.0.1:${dead} check inter 100 fall 1 rise 1
`);
    child = spawn(process.execPath, [bin, 'start', '--config', cfg, '--node', 'n1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    await waitFor(() => out.includes('server be/dead is DOWN'), 15000, 'the dead server checked DOWN');

    const served = new Map<string, number>();
    for (let i = 0; i < 60; i++) {
      const r = await get(fe);
      expect(r.status).toBe(200);
      const by = (JSON.parse(r.text) as { server: string }).server;
      served.set(by, (served.get(by) ?? 0) + 1);
    }
    // Both threads served (log lines name the thread) and neither tried the dead server.
    await waitFor(() => out.includes('"thread":1') && out.includes('"thread":2'), 5000, 'log lines of both threads');
    expect(out).not.toMatch(/"server":"dead","method"/);
    expect((served.get('a') ?? 0) + (served.get('b') ?? 0)).toBe(60);

    const metrics = (await get(admin, '/metrics')).text;
    const count = (server: string): number => Number(/ (\d+)$/.exec(metrics.split('\n').find((l) => l.startsWith(`stickmesh_requests_total{backend="be",server="${server}",code="2xx"}`)) ?? ' 0')![1]);
    expect(count('a') + count('b')).toBe(60);
    expect(metrics).toMatch(/^stickmesh_thread_metrics_misses_total 0$/m);
    const api = JSON.parse((await get(admin, '/api/servers')).text) as Array<{ server: string; requests: number }>;
    expect(api.filter((s) => s.server !== 'dead').reduce((n, s) => n + s.requests, 0)).toBe(60);

    // Maintenance set through the admin API (main thread) reaches both threads.
    // It reaches them a moment after the API answers (the view goes out at the end of main's
    // turn): wait until a run of requests all went to b, then no request may reach a.
    expect((await get(admin, '/api/servers/be/a', 'PUT', JSON.stringify({ state: 'maint' }))).status).toBe(200);
    let run = 0;
    await waitFor(async () => {
      const r = JSON.parse((await get(fe)).text) as { server: string };
      run = r.server === 'b' ? run + 1 : 0;
      return run >= 6;
    }, 5000, 'maintenance of a reaching both threads');
    const before = a.seen.length;
    for (let i = 0; i < 30; i++) {
      const r = await get(fe);
      expect(JSON.parse(r.text)).toMatchObject({ server: 'b' });
    }
    expect(a.seen.length).toBe(before);
  }, 40000);
});
