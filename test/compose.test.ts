/**
 * docker-compose.yml: validated with Debian's `docker-compose config -q` (no Docker engine in CI),
 * then the same topology run as plain processes: every service's command, environment,
 * configuration file and healthcheck taken from the compose file, with container ports remapped
 * to free loopback ports. Proves the node config, the env-driven identity and peers, `/ready`
 * healthchecks, and session stickiness through each node, including across a rolling restart.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { freePort } from './helpers/backends.js';
import { waitFor } from './helpers/wait.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const COMPOSE_FILE = path.join(root, 'docker-compose.yml');
const DOCKER_COMPOSE = '/usr/bin/docker-compose';
const SECRET = 'compose-test-secret';

interface Service {
  command?: string[];
  environment?: Record<string, string | number>;
  ports?: string[];
  volumes?: string[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, unknown>;
}

interface Proc {
  name: string;
  argv: string[];
  env: Record<string, string>;
  health: string[];
  proc?: ChildProcess;
  output: string[];
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: root, env, timeout: 20000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as NodeJS.ErrnoException).code === 'number' ? Number((err as NodeJS.ErrnoException).code) : 1) : 0;
      resolve({ code, out: `${stdout}${stderr}` });
    });
  });
}

/** Compose variable interpolation: `${VAR}`, `${VAR:-default}`, `${VAR:?error}`, `$$`. */
function interpolate(v: string, env: Record<string, string | undefined>): string {
  return v.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([-?])([^}]*))?\}/g, (m, name: string | undefined, op: string | undefined, arg: string | undefined) => {
    if (m === '$$') return '$';
    const val = env[name!];
    if (op === '-') return val ? val : arg!;
    if (op === '?' && !val) throw new Error(`compose: ${name} is required: ${arg}`);
    return val ?? '';
  });
}

async function get(port: number, cookie?: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, headers: cookie ? { cookie } : {} }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

const services: Record<string, Service> = (parse(readFileSync(COMPOSE_FILE, 'utf8'), { merge: true }) as { services: Record<string, Service> }).services;
const procs = new Map<string, Proc>();
/** (service, container port) -> free loopback port. */
const portMap = new Map<string, number>();
let tmp = '';

async function mapped(service: string, port: number | string): Promise<number> {
  const key = `${service}:${port}`;
  if (!portMap.has(key)) portMap.set(key, await freePort());
  return portMap.get(key)!;
}

/** A compose service as a local process: paths, addresses and ports rewritten for one host. */
async function toProcess(name: string, svc: Service): Promise<Proc> {
  const mounts = new Map<string, string>();
  for (const v of svc.volumes ?? []) {
    const [src, target] = v.split(':') as [string, string];
    if (src.startsWith('.') || src.startsWith('/')) mounts.set(target, path.resolve(root, src));
    else mounts.set(target, path.join(tmp, `${name}-${src}`));
  }
  const composeEnv: Record<string, string> = { ...process.env, STICKMESH_PEERS_SECRET: SECRET } as Record<string, string>;
  const env: Record<string, string> = {};
  for (const [k, raw] of Object.entries(svc.environment ?? {})) {
    let v = interpolate(String(raw), composeEnv);
    const any = /^0\.0\.0\.0:(\d+)$/.exec(v);
    const peer = /^([a-z0-9_-]+):(\d+)$/.exec(v);
    if (any) v = `127.0.0.1:${await mapped(name, any[1]!)}`;
    else if (peer && services[peer[1]!]) v = `127.0.0.1:${await mapped(peer[1]!, peer[2]!)}`;
    env[k] = v;
  }
  // Container-only defaults the image sets or the network provides, made explicit per process.
  if (env.PORT) {
    env.PORT = String(await mapped(name, env.PORT));
    env.HOST = '127.0.0.1';
  }
  const isNode = (svc.command ?? []).some((a) => a.endsWith('stickmesh.js'));
  if (isNode) {
    env.STICKMESH_ADMIN_HOST = '127.0.0.1';
    env.STICKMESH_ADMIN_PORT = String(await mapped(name, 9100));
    const data = mounts.get('/var/lib/stickmesh');
    expect(data, `${name} mounts a volume on /var/lib/stickmesh`).toBeDefined();
    mkdirSync(data!, { recursive: true });
    env.STICKMESH_DATA_DIR = data!;
  }
  const argv = (svc.command ?? []).map((a, i) => {
    if (i === 0 && a === 'node') return process.execPath;
    if (mounts.has(a)) return mounts.get(a)!;
    return /^[a-z].*\.(m?js)$/.test(a) ? path.join(root, a) : a;
  });
  const health = svc.healthcheck!.test.slice(1).map((a, i) => (i === 0 && a === 'node' ? process.execPath : a));
  return { name, argv, env, health, output: [] };
}

function start(p: Proc): void {
  p.output = [];
  const child = spawn(p.argv[0]!, p.argv.slice(1), { cwd: root, env: { PATH: process.env.PATH, ...p.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const keep = (d: Buffer) => {
    p.output.push(d.toString());
    if (p.output.length > 200) p.output.shift();
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  p.proc = child;
}

/** Runs the service's own compose healthcheck command with the service's environment. */
async function healthy(p: Proc, timeoutMs = 15000): Promise<void> {
  await waitFor(
    async () => {
      if (p.proc && p.proc.exitCode !== null) throw new Error(`${p.name} exited ${p.proc.exitCode}: ${p.output.join('').slice(-800)}`);
      return (await run(p.health[0]!, p.health.slice(1), { PATH: process.env.PATH, ...p.env })).code === 0;
    },
    timeoutMs,
    `${p.name} healthcheck`,
    200,
  );
}

async function stop(p: Proc, signal: NodeJS.Signals): Promise<number | null> {
  const c = p.proc;
  if (!c || c.exitCode !== null || c.signalCode !== null) return c?.exitCode ?? null;
  const exited = new Promise<number | null>((r) => c.once('exit', (code) => r(code)));
  c.kill(signal);
  return exited;
}

beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'sm-compose-'));
});

afterAll(async () => {
  await Promise.all([...procs.values()].map((p) => stop(p, 'SIGKILL')));
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('docker-compose.yml', () => {
  it('passes `docker-compose config -q`, and refuses to start without a peers secret', async () => {
    expect(existsSync(DOCKER_COMPOSE), `${DOCKER_COMPOSE} (Debian package docker-compose) is required`).toBe(true);
    const env = { PATH: process.env.PATH, HOME: process.env.HOME ?? '/root' };
    const ok = await run(DOCKER_COMPOSE, ['-f', COMPOSE_FILE, 'config', '-q'], { ...env, STICKMESH_PEERS_SECRET: SECRET });
    expect(ok, ok.out).toMatchObject({ code: 0 });
    const missing = await run(DOCKER_COMPOSE, ['-f', COMPOSE_FILE, 'config', '-q'], env);
    expect(missing.code).not.toBe(0);
    expect(missing.out).toMatch(/STICKMESH_PEERS_SECRET/);
  });

  it('describes 3 nodes meshing on port 10000 in front of 3 backends, each node with its own proxy port and a /ready healthcheck', () => {
    const nodes = Object.entries(services).filter(([, s]) => (s.command ?? []).some((a) => a.endsWith('stickmesh.js')));
    const backends = Object.entries(services).filter(([, s]) => (s.command ?? []).some((a) => a.endsWith('demo-backend.mjs')));
    expect(nodes.map(([n]) => n)).toEqual(['lb1', 'lb2', 'lb3']);
    expect(backends.map(([n]) => n)).toEqual(['web1', 'web2', 'web3']);
    const published = new Set<string>();
    for (const [name, s] of nodes) {
      expect(s.environment?.STICKMESH_NODE).toBe(name);
      expect(s.environment?.PEERS_BIND).toBe('0.0.0.0:10000');
      expect([s.environment?.PEER_LB1, s.environment?.PEER_LB2, s.environment?.PEER_LB3]).toEqual(['lb1:10000', 'lb2:10000', 'lb3:10000']);
      expect(s.healthcheck?.test.join(' ')).toMatch(/\/ready/);
      const proxy = (s.ports ?? []).filter((p) => /^\d+:8080$/.test(p));
      expect(proxy).toHaveLength(1);
      published.add(proxy[0]!.split(':')[0]!);
      expect(Object.keys(s.depends_on ?? {}).sort()).toEqual(['web1', 'web2', 'web3']);
    }
    expect(published.size).toBe(3);
  });

  it('runs the same services as processes: /ready through the healthchecks, sessions sticky through every node and across a rolling restart', async () => {
    for (const [name, svc] of Object.entries(services)) procs.set(name, await toProcess(name, svc));
    const backends = ['web1', 'web2', 'web3'].map((n) => procs.get(n)!);
    const nodes = ['lb1', 'lb2', 'lb3'].map((n) => procs.get(n)!);
    // depends_on: backends healthy first, then the nodes.
    for (const b of backends) start(b);
    await Promise.all(backends.map((b) => healthy(b)));
    for (const n of nodes) start(n);
    await Promise.all(nodes.map((n) => healthy(n)));
    for (const n of nodes) {
      const r = await fetch(`http://127.0.0.1:${n.env.STICKMESH_ADMIN_PORT}/ready`);
      expect(r.status).toBe(200);
      expect(((await r.json()) as { ready: boolean }).ready).toBe(true);
    }
    const proxyPort = async (n: Proc) => mapped(n.name, 8080);

    // A new session through lb1 (the app sets app_session), then the same cookie through lb2, lb3.
    const SESSIONS = 30;
    const sessions: Array<{ cookie: string; server: string }> = [];
    for (let i = 0; i < SESSIONS; i++) {
      const r = await get(await proxyPort(nodes[0]!));
      expect(r.status).toBe(200);
      const cookie = String(r.headers['set-cookie']?.[0] ?? '').split(';')[0]!;
      expect(cookie).toMatch(/^app_session=/);
      expect(r.body).toMatch(/visit 1\b/);
      sessions.push({ cookie, server: String(r.headers['x-served-by']) });
    }
    expect(new Set(sessions.map((s) => s.server)).size).toBe(3);
    const tableCount = async (n: Proc) => {
      const t = (await (await fetch(`http://127.0.0.1:${n.env.STICKMESH_ADMIN_PORT}/tables`)).json()) as Array<{ count: number }>;
      return t[0]!.count;
    };
    await waitFor(async () => (await Promise.all(nodes.map(tableCount))).every((c) => c === SESSIONS), 10000, 'tables to replicate');
    let visits = 1;
    for (const via of [nodes[1]!, nodes[2]!]) {
      visits++;
      for (const s of sessions) {
        const r = await get(await proxyPort(via), s.cookie);
        expect(r.headers['x-served-by'], `${s.cookie} via ${via.name}`).toBe(s.server);
        expect(r.body).toMatch(new RegExp(`visit ${visits}\\b`));
      }
    }

    // Rolling restart of lb1 (docker stop = SIGTERM, drain, snapshot): ready again after its
    // resync, and still sticky.
    expect(await stop(nodes[0]!, 'SIGTERM')).toBe(0);
    start(nodes[0]!);
    await healthy(nodes[0]!);
    expect(await tableCount(nodes[0]!)).toBe(SESSIONS);
    visits++;
    for (const s of sessions) {
      const r = await get(await proxyPort(nodes[0]!), s.cookie);
      expect(r.headers['x-served-by']).toBe(s.server);
      expect(r.body).toMatch(new RegExp(`visit ${visits}\\b`));
    }
  }, 60000);
});
