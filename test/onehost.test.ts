/**
 * One host, several nodes, as HAProxy users run them: one config file per node, each the first
 * guide's stick-table example ("peers sticktables", `bind :10000`, `server loadbalancer1`) with
 * only the addresses filled in, three real `stickmesh start` processes on 127.0.3.1-3 (addresses
 * no other test uses), the guide's ports (frontend :80, peers :10000), no admin-bind.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { BIN, forEachLine } from './helpers/cluster.js';
import { startBackend, type TestBackend } from './helpers/backends.js';
import { waitFor } from './helpers/wait.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'stickmesh-onehost-'));

interface RunningNode {
  name: string;
  proc: ChildProcess;
  stdout: string[];
  stderr: string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exited: boolean;
}

const running: RunningNode[] = [];
const closers: Array<() => Promise<void> | void> = [];

async function stopAll(): Promise<void> {
  for (const n of running.splice(0)) {
    if (!n.exited) n.proc.kill('SIGKILL');
    await n.exit;
  }
  for (const c of closers.splice(0).reverse()) await c();
}
afterEach(stopAll);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function startNode(cfgFile: string, name: string): RunningNode {
  const proc = spawn(process.execPath, [BIN, 'start', '-c', cfgFile, '--node', name, '--drain-timeout', '500'], {
    env: { ...process.env, STICKMESH_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const n: RunningNode = { name, proc, stdout: [], stderr: '', exited: false, exit: undefined as never };
  n.exit = new Promise((resolve) =>
    proc.on('exit', (code, signal) => {
      n.exited = true;
      resolve({ code, signal });
    }),
  );
  forEachLine(proc.stdout!, (l) => n.stdout.push(l));
  proc.stderr!.on('data', (d: Buffer) => (n.stderr += d.toString()));
  running.push(n);
  return n;
}

function logged(n: RunningNode, msg: string): Record<string, unknown> | undefined {
  for (const l of n.stdout) {
    try {
      const j = JSON.parse(l) as Record<string, unknown>;
      if (j.msg === msg) return j;
    } catch {
      /* not JSON */
    }
  }
  return undefined;
}

async function started(n: RunningNode): Promise<void> {
  await waitFor(() => {
    if (n.exited) throw new Error(`${n.name} exited: ${n.stderr}`);
    return logged(n, 'stickmesh started');
  }, 15000, `${n.name} started`);
}

/** GET `url` from `localAddress`; resolves with status and body. */
function get(url: string, localAddress?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, ...(localAddress ? { localAddress } : {}) }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.setTimeout(3000, () => req.destroy(new Error('timeout')));
  });
}

async function servedBy(url: string, localAddress: string): Promise<string> {
  const r = await get(url, localAddress);
  expect(r.status).toBe(200);
  return (JSON.parse(r.body) as { server: string }).server;
}

async function tableCount(adminBase: string): Promise<number> {
  const r = await get(`${adminBase}/tables`);
  const t = (JSON.parse(r.body) as Array<{ id: string; count: number }>).find((x) => x.id === 'sticktables/sticky-sessions');
  return t?.count ?? -1;
}

/** The guide's `backend webservers`, sticky on the source address, over the two test backends. */
function webservers(web: TestBackend[]): string {
  return `backend webservers
mode http
balance roundrobin
stick match src table sticktables/sticky-sessions
stick store-request src table sticktables/sticky-sessions
server web1 127.0.0.1:${web[0]!.port} check
server web2 127.0.0.1:${web[1]!.port} check
`;
}

/** The guide's example for node `n` of three on 127.0.3.1-3; `data-dir` shared when given. */
function guideConfig(n: number, web: TestBackend[], extra = ''): string {
  return `${extra}frontend mywebapp
bind 127.0.3.${n}:80
mode http
default_backend webservers
peers sticktables
bind 127.0.3.${n}:10000
# On the next line, 'loadbalancer1'
# is the HAProxy server's hostname
server lb1 127.0.3.1:10000
server lb2 127.0.3.2:10000
server lb3 127.0.3.3:10000
table sticky-sessions type ip size 1m
${webservers(web)}`;
}

async function backends(): Promise<TestBackend[]> {
  const web = [await startBackend('web1'), await startBackend('web2')];
  for (const b of web) closers.push(() => b.close());
  return web;
}

/** Holds `host:port` with a plain listener, as another program would. */
async function occupy(host: string, port: number): Promise<net.Server> {
  const s = net.createServer((c) => c.destroy());
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen({ host, port }, () => resolve());
  });
  closers.push(() => new Promise<void>((r) => s.close(() => r())));
  return s;
}

function expectNodeOncePerLine(n: RunningNode): void {
  const lines = n.stdout.filter((l) => l.startsWith('{'));
  expect(lines.length).toBeGreaterThan(3);
  for (const l of lines) expect(l.match(/"node":/g), l).toHaveLength(1);
}

describe('one host, several nodes: the guide\'s peers example', () => {
  it('runs as three nodes on 127.0.3.1-3; a node that cannot bind answers nothing; a kill -9 fails over', async () => {
    const web = await backends();
    const files = [1, 2, 3].map((n) => {
      const f = path.join(dir, `lb${n}.cfg`);
      writeFileSync(f, guideConfig(n, web));
      return f;
    });

    // All-or-nothing start: lb2's peers address is taken, so lb2 binds its frontend and admin
    // first, fails on peers, and exits non-zero naming the line, having answered nobody.
    const blocker = await occupy('127.0.3.2', 10000);
    const t0 = Date.now();
    const failing = startNode(files[1]!, 'lb2');
    let firstBound = 0;
    let answeredBytes = 0;
    let attempts = 0;
    while (!failing.exited && Date.now() - t0 < 15000) {
      attempts++;
      await new Promise<void>((resolve) => {
        const s = net.connect({ host: '127.0.3.2', port: 80 }, () => {
          if (firstBound === 0) firstBound = Date.now();
          s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
        });
        s.on('data', (d: Buffer) => (answeredBytes += d.length));
        s.on('error', () => resolve());
        s.on('close', () => resolve());
        setTimeout(() => s.destroy(), 50);
      });
    }
    const { code } = await failing.exit;
    const exitedAt = Date.now();
    expect(code).toBe(1);
    expect(failing.stderr).toMatch(/lb2\.cfg:6: 'bind': peers 'sticktables' cannot listen on 127\.0\.3\.2:10000: .*EADDRINUSE/);
    expect(answeredBytes).toBe(0);
    expect(attempts).toBeGreaterThan(0);
    // From the first moment its frontend was bound to its exit: well under a second.
    if (firstBound > 0) expect(exitedAt - firstBound).toBeLessThan(1000);
    console.log(`lb2 with its peers address taken: ${attempts} connection attempts, ${answeredBytes} bytes answered, exit ${code} ${firstBound > 0 ? `${exitedAt - firstBound} ms after its frontend was first reachable` : '(frontend never reachable)'}, ${exitedAt - t0} ms after spawn`);
    running.splice(running.indexOf(failing), 1);
    await new Promise<void>((r) => blocker.close(() => r()));

    // Now the three nodes, each with the guide's file for its address.
    const nodes = [1, 2, 3].map((n) => startNode(files[n - 1]!, `lb${n}`));
    for (const n of nodes) await started(n);
    // No admin-bind: each node's admin listener is on its own peers address, port 9100.
    for (const [i, n] of nodes.entries()) expect(logged(n, 'admin listening')?.address).toBe(`127.0.3.${i + 1}:9100`);
    for (const i of [1, 2, 3]) await waitFor(async () => (await get(`http://127.0.3.${i}:9100/ready`)).status === 200, 10000, `lb${i} ready`);

    // Another source first, so the client under test is not on round robin's first pick.
    await servedBy('http://127.0.3.1/', '127.0.4.6');
    const sticky = await servedBy('http://127.0.3.1/', '127.0.4.7');
    await waitFor(async () => (await tableCount('http://127.0.3.2:9100')) === 2, 10000, 'lb2 has both entries');
    expect(await servedBy('http://127.0.3.2/', '127.0.4.7')).toBe(sticky);
    await waitFor(async () => (await tableCount('http://127.0.3.3:9100')) === 2, 10000, 'lb3 has both entries');

    nodes[0]!.proc.kill('SIGKILL');
    expect((await nodes[0]!.exit).signal).toBe('SIGKILL');
    for (let i = 0; i < 3; i++) expect(await servedBy('http://127.0.3.3/', '127.0.4.7')).toBe(sticky);
    expect(await servedBy('http://127.0.3.2/', '127.0.4.7')).toBe(sticky);
    for (const n of nodes.slice(1)) expectNodeOncePerLine(n);
  }, 60000);
});

describe('one host: single-node configs side by side', () => {
  /** The guide's single-node example on `ip`, sharing `data-dir` with its neighbour. */
  const single = (ip: string, name: string, web: TestBackend[], dataDir: string, global = ''): string => `global
    data-dir ${dataDir}
${global}frontend mywebapp
bind ${ip}:80
mode http
default_backend webservers
peers sticktables
bind ${ip}:10000
server ${name}
table sticky-sessions type ip size 1m
${webservers(web)}`;

  it('two configs each get their own admin listener and their own snapshot file', async () => {
    const web = await backends();
    const data = path.join(dir, 'shared-data');
    const a = path.join(dir, 'a.cfg');
    const b = path.join(dir, 'b.cfg');
    writeFileSync(a, single('127.0.3.4', 'lbA', web, data));
    writeFileSync(b, single('127.0.3.5', 'lbB', web, data));
    const na = startNode(a, 'lbA');
    const nb = startNode(b, 'lbB');
    await started(na);
    await started(nb);
    expect(logged(na, 'admin listening')?.address).toBe('127.0.3.4:9100');
    expect(logged(nb, 'admin listening')?.address).toBe('127.0.3.5:9100');
    await servedBy('http://127.0.3.4/', '127.0.4.8');
    await servedBy('http://127.0.3.5/', '127.0.4.8');
    na.proc.kill('SIGTERM');
    nb.proc.kill('SIGTERM');
    expect((await na.exit).code).toBe(0);
    expect((await nb.exit).code).toBe(0);
    expect(readdirSync(data).sort()).toEqual(['stick-tables.lbA.snap', 'stick-tables.lbB.snap']);
  }, 30000);

  it('a taken default admin address: the node serves without admin and warns once; a taken admin-bind stops it', async () => {
    const web = await backends();
    await occupy('127.0.3.6', 9100);
    const data = path.join(dir, 'data-6');
    const f = path.join(dir, 'c.cfg');
    writeFileSync(f, single('127.0.3.6', 'lbC', web, data));
    const n = startNode(f, 'lbC');
    await started(n);
    expect(await servedBy('http://127.0.3.6/', '127.0.4.9')).toMatch(/^web[12]$/);
    const warns = n.stdout.filter((l) => l.includes('admin listener not started'));
    expect(warns).toHaveLength(1);
    expect(JSON.parse(warns[0]!)).toMatchObject({ level: 'warn', address: '127.0.3.6:9100' });
    expect(logged(n, 'admin listening')).toBeUndefined();
    n.proc.kill('SIGTERM');
    expect((await n.exit).code).toBe(0);

    const g = path.join(dir, 'd.cfg');
    writeFileSync(g, single('127.0.3.6', 'lbC', web, data, '    admin-bind 127.0.3.6:9100\n'));
    const t0 = Date.now();
    const m = startNode(g, 'lbC');
    expect((await m.exit).code).toBe(1);
    expect(Date.now() - t0).toBeLessThan(10000);
    expect(m.stderr).toMatch(/d\.cfg:3: 'admin-bind': admin listener cannot listen on 127\.0\.3\.6:9100: .*EADDRINUSE/);
    expect(logged(m, 'stickmesh started')).toBeUndefined();
  }, 30000);
});
