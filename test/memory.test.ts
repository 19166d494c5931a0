/**
 * What a node does to stay small (docs/BENCHMARKS.md#memory), seen from outside the process: the
 * launcher's young-generation cap reaches the spawned node (and a user's NODE_OPTIONS wins over
 * it), and what is loaded on first use (prom-client on the first scrape, the yaml library on a
 * native config) works when first used.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startBackend, type TestBackend } from './helpers/backends.js';
import { request } from './helpers/client.js';
import { waitFor } from './helpers/wait.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = path.join(root, 'packages/cli/bin/stickmesh.js');
const MiB = 2 ** 20;

let procs: ChildProcess[] = [];
let backends: TestBackend[] = [];
afterEach(async () => {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  procs = [];
  for (const b of backends) await b.close();
  backends = [];
});

/** Starts `stickmesh start` on `cfgText` (written as `name`) and waits for its admin /ready. */
async function startNode(name: string, cfgText: string, admin: number, env: NodeJS.ProcessEnv = {}): Promise<{ stderr: () => string }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'stickmesh-mem-'));
  const file = path.join(dir, name);
  writeFileSync(file, cfgText);
  let err = '';
  const p = spawn(process.execPath, [bin, 'start', '--config', file, '--node', 'm1'], {
    env: { ...process.env, NODE_OPTIONS: '', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  procs.push(p);
  await waitFor(
    async () => {
      if (p.exitCode !== null) throw new Error(`node exited ${p.exitCode}: ${err}`);
      return (await fetch(`http://127.0.0.1:${admin}/ready`).catch(() => undefined))?.ok === true;
    },
    30000,
    'the node to be ready',
    50,
  ).catch((e: Error) => {
    throw new Error(`${e.message}; stderr: ${err.slice(0, 2000)}`);
  });
  return { stderr: () => err };
}

function haproxyCfg(admin: number, proxy: number, backend: number, logLevel = 'warn'): string {
  return [
    'global',
    // The caps are a one-thread node's (a 2-thread node's RSS is in bench/threads.mjs).
    '    nbthread 1',
    `    admin-bind 127.0.0.1:${admin}`,
    `    log-level ${logLevel}`,
    'defaults',
    '    mode http',
    '    timeout connect 1s',
    '    timeout client 10s',
    '    timeout server 10s',
    'frontend fe',
    `    bind 127.0.0.1:${proxy}`,
    '    default_backend be',
    'backend be',
    `    server s1 127.0.0.1:${backend}`,
    '',
  ].join('\n');
}

/** The young generation's committed bytes, from the node's own gauge on /metrics. */
async function newSpaceBytes(admin: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
  const m = /^stickmesh_v8_heap_space_bytes\{space="new_space"\} (\d+)$/m.exec(text);
  if (!m) throw new Error(`no new_space gauge in /metrics:\n${text.slice(0, 2000)}`);
  return Number(m[1]);
}

describe('node memory', () => {
  it('runs with the young generation capped at 1 MiB semi-spaces; /metrics (prom-client loaded on first scrape) and the dashboard answer', async () => {
    const b = await startBackend('s1');
    backends.push(b);
    const [admin, proxy] = [await freePort(), await freePort()];
    await startNode('node.cfg', haproxyCfg(admin, proxy, b.port), admin);
    for (let i = 0; i < 200; i++) expect((await request(proxy, { path: `/r${i}` })).status).toBe(200);
    // Node's default lets the new space reach 8-16 MiB while the modules load.
    expect(await newSpaceBytes(admin)).toBeLessThanOrEqual(2 * MiB);
    const text = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
    expect(text).toMatch(/^stickmesh_requests_total\{backend="be",server="s1",code="2xx"\} 200$/m);
    const page = await fetch(`http://127.0.0.1:${admin}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<html');
  });

  it('keeps the cap on a node that logs every request (log-level info)', async () => {
    const b = await startBackend('s1');
    backends.push(b);
    const [admin, proxy] = [await freePort(), await freePort()];
    await startNode('node.cfg', haproxyCfg(admin, proxy, b.port, 'info'), admin);
    for (let i = 0; i < 2000; i++) expect((await request(proxy, { path: `/r${i}` })).status).toBe(200);
    expect(await newSpaceBytes(admin)).toBeLessThanOrEqual(2 * MiB);
  });

  it("leaves the young generation to the user's NODE_OPTIONS", async () => {
    const b = await startBackend('s1');
    backends.push(b);
    const [admin, proxy] = [await freePort(), await freePort()];
    await startNode('node.cfg', haproxyCfg(admin, proxy, b.port), admin, { NODE_OPTIONS: '--max-semi-space-size=8' });
    expect(await newSpaceBytes(admin)).toBeGreaterThan(2 * MiB);
  });

  it('starts from a native YAML config (the yaml library is loaded on first use) and proxies', async () => {
    const b = await startBackend('s1');
    backends.push(b);
    const [admin, proxy] = [await freePort(), await freePort()];
    const yaml = [
      'global:',
      '  nbthread: 1',
      '  logLevel: warn',
      `  admin: { host: 127.0.0.1, port: ${admin} }`,
      'defaults:',
      '  mode: http',
      '  timeouts: { connect: 1s, client: 10s, server: 10s }',
      'frontends:',
      `  - { name: fe, bind: ["127.0.0.1:${proxy}"], defaultBackend: be }`,
      'backends:',
      `  - { name: be, servers: [{ name: s1, address: "127.0.0.1:${b.port}" }] }`,
      '',
    ].join('\n');
    await startNode('node.yaml', yaml, admin);
    const r = await request(proxy, { path: '/yaml' });
    expect(r.status).toBe(200);
    expect(r.body).toContain('"server":"s1"');
  });
});
