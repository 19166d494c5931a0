/**
 * README.md's "Try it" as a user follows it: `npm start` (the command package.json's `start`
 * script runs), then the README's block of steps line by line through bash, as written, with three
 * substitutions: node1's pid (printed by the demo) for `<pid of node1>`, a scratch file for the
 * cookie jar `/tmp/jar`, and `node packages/cli/bin/stickmesh.js` for `npx stickmesh` (what npx
 * runs here, without npm's start-up). The block must equal the steps the demo prints (DEMO_STEPS),
 * so README, demo and test cannot drift apart.
 *
 * One step is added: after the drain, node1 is restarted with the command the demo printed when it
 * died, to check that a node that was down when the drain was set learns it on resync.
 *
 * Also here, because they bind the same fixed ports (8080, 9100, 10000 on 127.0.0.1-3, 9001-9003)
 * and test files run in parallel: the demo's stop (Ctrl-C, SIGTERM) and the single-node example
 * (`stickmesh demo-backends` with `stickmesh start -c examples/demo.cfg`).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEMO_STEPS } from '../packages/cli/src/commands/demo.js';
import { request } from './helpers/client.js';
import { waitFor, processAlive } from './helpers/wait.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = path.join(root, 'packages/cli/bin/stickmesh.js');
const NODE_IPS = ['127.0.0.1', '127.0.0.2', '127.0.0.3'];

let groups: ChildProcess[] = [];
afterEach(() => {
  for (const p of groups) {
    try {
      process.kill(-p.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  groups = [];
});

/** Starts `argv` in its own process group (killed after the test), collecting its output. */
function start(argv: string[], env: NodeJS.ProcessEnv = process.env): { proc: ChildProcess; out: () => string } {
  const proc = spawn(argv[0]!, argv.slice(1), { cwd: root, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  groups.push(proc);
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return { proc, out: () => out };
}

/** The fenced block right after README's `test/readme-steps.test.ts runs this block` comment. */
function readmeSteps(): string[] {
  const text = readFileSync(path.join(root, 'README.md'), 'utf8');
  const m = /<!-- test\/readme-steps\.test\.ts runs this block[^\n]*-->\n```sh\n([\s\S]*?)\n```/.exec(text);
  if (!m) throw new Error('README.md has no block marked for test/readme-steps.test.ts');
  return m[1]!.split('\n');
}

/** `npm start` as package.json defines it, as an argv (it must be `node FILE ARGS`). */
function npmStart(): string[] {
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const argv = pkg.scripts.start!.split(/\s+/);
  expect(argv[0]).toBe('node');
  return [process.execPath, ...argv.slice(1)];
}

async function getJson(url: string): Promise<Record<string, unknown>> {
  const u = new URL(url);
  const r = await request(Number(u.port), { host: u.hostname, path: u.pathname });
  if (r.status !== 200) throw new Error(`${url}: HTTP ${r.status}`);
  return JSON.parse(r.body.toString()) as Record<string, unknown>;
}

const web1 = (ip: string) => getJson(`http://${ip}:9100/api/servers/app/web1`);

/** Waits until the demo's three nodes are ready and see every server up. */
async function demoUp(): Promise<void> {
  await waitFor(
    async () => {
      for (const ip of NODE_IPS) {
        const list = (await getJson(`http://${ip}:9100/api/servers`)) as unknown as Array<{ health: string }>;
        if (list.length !== 3 || list.some((s) => s.health !== 'up')) return false;
        if ((await request(9100, { host: ip, path: '/ready' })).status !== 200) return false;
      }
      return true;
    },
    30000,
    'three demo nodes ready, every server up',
  );
}

describe("README 'Try it', run as written", () => {
  it('the steps the demo prints are the README block', () => {
    expect(readmeSteps()).toEqual([...DEMO_STEPS]);
  });

  it('demo up, a cookie jar counts visits through any node, kill -9, the CLI through a surviving node, drain through node2 on all three, auto-maint', async () => {
    expect(spawnSync('curl', ['--version']).status, 'the README steps need curl (apt-get install curl)').toBe(0);
    const steps = readmeSteps();
    // The CLI finds the demo by itself: nothing in the environment may point it elsewhere.
    const env = { ...process.env };
    delete env.STICKMESH_ADMIN;
    delete env.STICKMESH_CONFIG;
    delete env.STICKMESH_ADMIN_TOKEN;
    const demo = start(npmStart(), env);
    await demoUp();
    const pid1 = Number(/node1: proxy .* pid (\d+)/.exec(demo.out())?.[1]);
    expect(pid1).toBeGreaterThan(0);
    // The demo printed the README's steps, node1's pid in place.
    for (const l of DEMO_STEPS) expect(demo.out()).toContain(`  ${l.replace('<pid of node1>', String(pid1))}\n`);
    const jar = path.join(mkdtempSync(path.join(os.tmpdir(), 'sm-readme-')), 'jar');

    const run = (line: string) => {
      const cmd = line.replace('<pid of node1>', String(pid1)).replaceAll('/tmp/jar', jar).replaceAll('npx stickmesh', `"${process.execPath}" "${bin}"`);
      const r = spawnSync('bash', ['-c', cmd], { cwd: root, env, encoding: 'utf8', timeout: 20000 });
      return { line, status: r.status, stdout: r.stdout, stderr: r.stderr };
    };
    const step = (i: number, expectLine: RegExp) => {
      const line = steps[i]!;
      expect(line).toMatch(expectLine);
      const r = run(line);
      expect(r.status, `${line}\n${r.stderr}`).toBe(0);
      return r;
    };
    const visit = (i: number, ip: string, n: number) => {
      const r = step(i, new RegExp(`^curl .*-b /tmp/jar -c /tmp/jar .*app\\.test:8080:${ip.replaceAll('.', '\\.')} `));
      const m = /^served by (\w+); session (\S+); visit (\d+)$/.exec(r.stdout.trim());
      expect(m, r.stdout).not.toBeNull();
      return { server: m![1], session: m![2], visit: Number(m![3]), n };
    };

    // 0-1: a server is chosen through node1, node2 sends the same client to it and the visit count goes on.
    const v1 = visit(0, '127.0.0.1', 1);
    expect(v1).toMatchObject({ server: 'web1', visit: 1 });
    expect(visit(1, '127.0.0.2', 2)).toMatchObject({ server: 'web1', session: v1.session, visit: 2 });
    // The demo's three nodes share this machine with two threads each at most (not one per CPU), and say so.
    const threads = Math.min(2, os.availableParallelism());
    expect(demo.out()).toContain(`${threads} data-plane thread(s) per node`);
    const metrics = await request(9100, { host: '127.0.0.2', path: '/metrics' });
    expect(metrics.body).toMatch(new RegExp(`^stickmesh_threads ${threads}$`, 'm'));
    // 2: kill -9 node1.
    step(2, /^kill -9 <pid of node1>$/);
    await waitFor(() => !processAlive(pid1), 5000, 'node1 gone');
    // 3: through node3, same server, same session.
    expect(visit(3, '127.0.0.3', 3)).toMatchObject({ server: 'web1', session: v1.session, visit: 3 });
    // 4: the CLI without flags: node1 refuses, node2 answers, and it says so on stderr (one line).
    const peers = step(4, /^npx stickmesh peers\b/);
    expect(peers.stderr.trim().split('\n')).toEqual([expect.stringContaining('http://127.0.0.1:9100 (node1): ECONNREFUSED; answered by http://127.0.0.2:9100 (node2)')]);
    expect(peers.stdout).toMatch(/^node1\s+/m);
    expect(peers.stdout).toMatch(/^node3\s+live/m);
    // 5: drain through node2, seen on node2 and node3 as set through node2 for the cluster.
    step(5, /^npx stickmesh server set app\/web1 drain --auto-maint\b/);
    for (const ip of ['127.0.0.2', '127.0.0.3']) {
      await waitFor(async () => (await web1(ip)).admin === 'drain', 5000, `web1 in drain on ${ip}`);
      expect(await web1(ip)).toMatchObject({ admin: 'drain', adminSet: { scope: 'cluster', node: 'node2' } });
    }
    // Added step: node1 comes back with the command the demo printed when it died, and learns the drain.
    const restart = /Restart it to watch it resync: (.+)\n/.exec(demo.out())?.[1];
    expect(restart).toMatch(/NODE_IP=127\.0\.0\.1 .* start -c examples\/cluster\.cfg -L node1$/);
    start(['bash', '-c', `exec env ${restart!}`], env);
    await waitFor(async () => (await request(9100, { host: '127.0.0.1', path: '/ready' })).status === 200, 20000, 'node1 restarted and ready');
    await waitFor(async () => (await web1('127.0.0.1')).admin === 'drain', 10000, 'web1 in drain on the restarted node1');
    expect(await web1('127.0.0.1')).toMatchObject({ adminSet: { scope: 'cluster', node: 'node2' } });
    // 6: a client bound to web1 stays on it.
    expect(visit(6, '127.0.0.3', 4)).toMatchObject({ server: 'web1', session: v1.session, visit: 4 });
    // 7: server show: web1 in drain with its binding left (the client's stick entry), counted over the cluster.
    const show = step(7, /^npx stickmesh server show\b/);
    const row = show.stdout.split('\n').find((l) => l.startsWith('app/web1 '));
    expect(row).toMatch(/\bdrain\b/);
    expect(Number(/(\d+) bindings? left/.exec(row ?? '')?.[1])).toBeGreaterThanOrEqual(1);
    await expect(web1('127.0.0.2')).resolves.toMatchObject({ admin: 'drain' });
    // 8: the binding goes: auto-maint fires, and every node shows maint.
    step(8, /^npx stickmesh table clear mesh\/sessions --key 127\.0\.0\.1\b/);
    for (const ip of NODE_IPS) await waitFor(async () => (await web1(ip)).admin === 'maint', 10000, `web1 in maint on ${ip}`);
    // 9: the API, as curl shows it.
    const last = step(9, /^curl -s http:\/\/127\.0\.0\.2:9100\/api\/servers\/app\/web1\b/);
    expect(JSON.parse(last.stdout)).toMatchObject({ backend: 'app', server: 'web1', admin: 'maint' });
    expect(steps).toHaveLength(10);

    // Ctrl-C: the demo stops its nodes (the restarted node1 is the user's own) and removes its directory.
    const tmp = /temporary files in (\S+?)\)/.exec(demo.out())![1]!;
    const exited = new Promise<number | null>((resolve) => demo.proc.once('exit', (code) => resolve(code)));
    process.kill(-demo.proc.pid!, 'SIGINT');
    expect(await exited).toBe(0);
    expect(existsSync(tmp)).toBe(false);
  }, 120000);
});

describe('stickmesh demo', () => {
  it.each([
    ['Ctrl-C (SIGINT to the process group)', 'SIGINT', true, false],
    ['SIGTERM to the demo alone', 'SIGTERM', false, false],
    ['Ctrl-C once the reader of its output is gone (npm start | tee, tee killed by the same Ctrl-C)', 'SIGINT', true, true],
  ] as const)('stops every node within 5 s of %s and removes its temporary directory', async (_what, sig, group, closeOutput) => {
    const demo = start([process.execPath, bin, 'demo']);
    await demoUp();
    const tmp = /temporary files in (\S+?)\)/.exec(demo.out())?.[1];
    expect(tmp).toMatch(new RegExp(`^${os.tmpdir()}/stickmesh-demo-`));
    expect(existsSync(path.join(tmp!, 'demo.json'))).toBe(true);
    for (const ip of NODE_IPS) expect(demo.out()).toContain(`dashboard http://${ip}:9100/`);
    const nodes = spawnSync('pgrep', ['-P', String(demo.proc.pid)], { encoding: 'utf8' }).stdout.trim().split('\n').map(Number).filter(Boolean);
    expect(nodes).toHaveLength(3);
    const t0 = Date.now();
    const exited = new Promise<number | null>((resolve) => demo.proc.once('exit', (code) => resolve(code)));
    if (closeOutput) demo.proc.stdout!.destroy();
    process.kill(group ? -demo.proc.pid! : demo.proc.pid!, sig);
    expect(await exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(nodes.filter(processAlive)).toEqual([]);
    expect(existsSync(tmp!)).toBe(false);
  });
});

describe('the single-node example (README: demo-backends, then start -c examples/demo.cfg)', () => {
  it('serves with cookie persistence: the same server and a growing visit count', async () => {
    const backends = start([process.execPath, bin, 'demo-backends']);
    await waitFor(() => backends.out().includes('Ctrl-C stops them'), 10000, 'demo backends listening');
    const node = start([process.execPath, bin, 'start', '-c', 'examples/demo.cfg']);
    // Health checks every second: wait until both servers answer through the node.
    await waitFor(
      async () => {
        const r = await request(8080, { host: '127.0.0.1' });
        return r.status === 200;
      },
      15000,
      'the node serving through a healthy server',
    );
    expect(node.out()).not.toContain('"level":50');
    let cookie = '';
    const seen: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await request(8080, { host: '127.0.0.1', headers: cookie ? { cookie } : {} });
      expect(r.status).toBe(200);
      const set = ([] as string[]).concat(r.headers['set-cookie'] ?? []);
      const jar = new Map(cookie ? cookie.split('; ').map((c) => c.split('=') as [string, string]) : []);
      for (const c of set) {
        const [kv] = c.split(';');
        const [k, v] = kv!.split('=');
        jar.set(k!, v!);
      }
      cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
      seen.push(r.body.toString().trim());
    }
    const server = /^served by (web[12]);/.exec(seen[0]!)?.[1];
    expect(server).toBeDefined();
    expect(seen.map((s) => s.replace(/session [^;]+/, 'session S'))).toEqual([1, 2, 3].map((n) => `served by ${server}; session S; visit ${n}`));
    expect(cookie).toContain(`SERVER=${server}`);
  });
});
