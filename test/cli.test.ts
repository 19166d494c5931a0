/**
 * The `stickmesh` command as a user runs it: real processes from the build `npm test` makes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBackend, freePort } from './helpers/backends.js';
import { cookieFrom, request } from './helpers/client.js';
import { waitFor } from './helpers/wait.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = path.join(root, 'packages/cli/bin/stickmesh.js');
const fixtures = path.join(root, 'test/fixtures/configs');

function cli(args: string[]) {
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 20000 });
}

let procs: ChildProcess[] = [];
let cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  procs = [];
  for (const c of cleanups) await c();
  cleanups = [];
});

describe('stickmesh --help', () => {
  it.each([[[]], [['--help']], [['start', '--help']], [['check', '--help']], [['demo', '--help']]])(
    'prints usage for %j',
    (args) => {
      const r = cli(args);
      expect(r.stdout).toMatch(/^Usage: stickmesh/);
      expect(r.status).toBe(args.length === 0 ? 2 : 0);
    },
  );
  it('rejects unknown commands and options with exit 2', () => {
    expect(cli(['frobnicate']).status).toBe(2);
    const r = cli(['check', '--bogus']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('bogus');
  });
});

describe('stickmesh check', () => {
  const files = readdirSync(fixtures).filter((f) => /\.(cfg|ya?ml|json)$/.test(f) && !f.startsWith('bad'));
  it('has the guide fixtures to check', () => {
    expect(files).toEqual(expect.arrayContaining(['guide1-cookie.cfg', 'guide1-dynamic-dns.cfg', 'guide1-peers-src.cfg', 'guide2-serverid.cfg']));
  });
  it.each(files)('accepts %s silently with exit 0', (f) => {
    const r = cli(['check', '--config', path.join(fixtures, f)]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('');
    expect(r.status).toBe(0);
  });
  it('names file, line and directive of every error and exits 1', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sm-check-'));
    const f = path.join(dir, 'broken.cfg');
    writeFileSync(
      f,
      [
        'frontend fe',
        '    bind :8080',
        '    default_backend be',
        'backend be',
        '    cookie SERVER insert indirect nocache',
        '    server web1 127.0.0.1:9001 check cookie web1',
        '    server web2 check cookie web2',
        '    stickyness on',
        '',
      ].join('\n'),
    );
    const r = cli(['check', '-f', f]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`${f}:7:`);
    expect(r.stderr).toContain(`${f}:8:`);
    expect(r.stderr).toMatch(/stickyness/);
  });
  it('reports an unreadable file', () => {
    const r = cli(['check', '--config', '/nonexistent/stickmesh.cfg']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('/nonexistent/stickmesh.cfg');
  });
});

describe('stickmesh start', () => {
  it('serves the guide config with cookie persistence, logs JSON with termination state, drains on SIGTERM', async () => {
    const a = await startBackend('web1');
    const b = await startBackend('web2');
    cleanups.push(() => a.close(), () => b.close());
    let slowRelease: (() => void) | undefined;
    a.handler = b.handler = (req, res) => {
      if (req.url === '/slow') {
        slowRelease = () => res.writeHead(200, { 'x-slow': 'done' }).end('slow');
        return;
      }
      res.writeHead(200, { 'x-served-by': req.socket.localPort === a.port ? 'web1' : 'web2' }).end('ok');
    };
    const port = await freePort();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sm-start-'));
    const cfg = path.join(dir, 'haproxy.cfg');
    writeFileSync(
      cfg,
      [
        'frontend mywebapp',
        `bind 127.0.0.1:${port}`,
        'mode http',
        'default_backend webservers',
        'backend webservers',
        'mode http',
        'balance roundrobin',
        'cookie SERVER insert indirect nocache',
        `server web1 127.0.0.1:${a.port} check cookie web1`,
        `server web2 127.0.0.1:${b.port} check cookie web2`,
        '',
      ].join('\n'),
    );
    const child = spawn(process.execPath, [bin, 'start', '--config', cfg, '--node', 'lb1'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, STICKMESH_ADMIN_PORT: '0' },
    });
    procs.push(child);
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    const first = await waitFor(() => request(port).catch(() => undefined), 10000, 'node listening');
    expect(first.status).toBe(200);
    const jar = cookieFrom(first.headers, 'SERVER')!;
    expect(jar).toMatch(/^SERVER=web[12]$/);
    const again = await request(port, { headers: { cookie: jar } });
    expect(again.headers['x-served-by']).toBe(jar.slice('SERVER='.length));

    const slow = request(port, { path: '/slow', headers: { cookie: jar } });
    await waitFor(() => slowRelease !== undefined, 5000, 'slow request reached the server');
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    child.kill('SIGTERM');
    // while draining, new connections are refused but the in-flight request completes
    await waitFor(() => request(port).then(() => false, () => true), 5000, 'listener closed');
    slowRelease!();
    const s = await slow;
    expect(s.headers['x-slow']).toBe('done');
    expect(await exited).toBe(0);

    const lines = out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const reqLogs = lines.filter((l) => l.msg === 'request');
    expect(reqLogs[0]).toMatchObject({ frontend: 'mywebapp', backend: 'webservers', status: 200, termination_state: '--NI', node: 'lb1' });
    expect(reqLogs[1]).toMatchObject({ termination_state: '--VN' });
    expect(typeof reqLogs[0]!.client_ip).toBe('string');
    expect(typeof reqLogs[0]!.Ta).toBe('number');
  });

  it('refuses to start on an invalid config with file:line', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sm-bad-'));
    const cfg = path.join(dir, 'bad.cfg');
    writeFileSync(cfg, 'backend be\n    balance nonsense\n');
    const r = cli(['start', '--config', cfg]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`${cfg}:2:`);
  });
});

describe('stickmesh: version, suggestions, messages a user reads', () => {
  it('--version and -V print the version of package.json', () => {
    const pkg = JSON.parse(readFileSync(path.join(root, 'packages/cli/package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const r = cli([flag]);
      expect(r.status).toBe(0);
      expect(r.stdout).toBe(`stickmesh ${pkg.version}\n`);
    }
  });

  it("suggests the command, option or subcommand meant, and nothing for a word far from any", () => {
    expect(cli(['tabel']).stderr).toMatch(/^stickmesh: unknown command 'tabel'; did you mean 'table'\?\n/);
    expect(cli(['--verison']).stderr).toMatch(/^stickmesh: unknown option '--verison'; did you mean '--version'\?\n/);
    expect(cli(['peers', '--confg', 'x.cfg']).stderr).toMatch(/^stickmesh: unknown option '--confg'; did you mean '--config'\?\n/);
    expect(cli(['table', 'shwo', 'x']).stderr).toMatch(/^stickmesh: unknown table subcommand 'shwo'; did you mean 'show'\?\n/);
    const far = cli(['xyzzy']);
    expect(far.status).toBe(2);
    expect(far.stderr).toMatch(/^stickmesh: unknown command 'xyzzy'\n/);
  });

  it('a missing config file is named, with the reason in words', () => {
    const missing = path.join(os.tmpdir(), 'sm-no-such-dir', 'haproxy.cfg');
    for (const args of [['check', '-c', missing], ['start', '-c', missing], ['peers', '--config', missing]]) {
      const r = cli(args);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(`cannot read ${missing}: no such file or directory`);
    }
  });

  it("--config: every node of the config is tried in turn; none answering names them all", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sm-nodes-'));
    const cfg = path.join(dir, 'cluster.cfg');
    // Nothing listens on 127.0.9.x: every node refuses.
    writeFileSync(cfg, ['peers mesh', '    server a 127.0.9.1:10000', '    server b 127.0.9.2:10000', 'backend be', '    server s 127.0.0.1:1', ''].join('\n'));
    const r = cli(['peers', '--config', cfg]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`stickmesh: cannot reach any node of ${cfg}: http://127.0.9.1:9100 (a) (ECONNREFUSED), http://127.0.9.2:9100 (b) (ECONNREFUSED)\n`);
    // A per-node override goes to the first node only, never on to another.
    const override = cli(['server', 'set', 'be/s', 'maint', '--node-only', '--config', cfg]);
    expect(override.status).toBe(1);
    expect(override.stderr).toBe(
      `stickmesh: this node: http://127.0.9.1:9100 (a) (the first of ${cfg}; --admin URL names another)\n` +
        'stickmesh: cannot reach http://127.0.9.1:9100 (ECONNREFUSED); other nodes: http://127.0.9.2:9100 (b) — or name the node meant with --admin URL\n',
    );
    const one = spawnSync(process.execPath, [bin, 'server', 'show', '--admin', 'http://127.0.9.1:9100'], { encoding: 'utf8', env: { ...process.env, STICKMESH_CONFIG: cfg } });
    expect(one.status).toBe(1);
    expect(one.stderr).toBe(
      'stickmesh: cannot reach http://127.0.9.1:9100 (ECONNREFUSED); other nodes: http://127.0.9.2:9100 (b) — or pass --config FILE to try them in turn\n',
    );
  });

  it('table show --prefix/--server without a table is an error that lists the tables', async () => {
    const admin = http.createServer((req, res) => {
      if (req.url === '/api/tables') res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify([{ id: 'mesh/sessions', servers: {} }, { id: 'be', servers: {} }]));
      else res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"no"}');
    });
    await new Promise<void>((r) => admin.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => admin.close(() => r())));
    const url = `http://127.0.0.1:${(admin.address() as AddressInfo).port}`;
    const r = await new Promise<{ status: number | null; stderr: string }>((resolve) => {
      const c = spawn(process.execPath, [bin, 'table', 'show', '--prefix', '10.', '--admin', url], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      c.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      c.on('exit', (status) => resolve({ status, stderr }));
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^stickmesh: --prefix filters the entries of one table: name it \(table show TABLE --prefix \.\.\.\); tables: mesh\/sessions, be\n/);
  });

  it("check --against counts live entries on the first node of OLD's cluster that answers", async () => {
    const admin = http.createServer((req, res) => {
      if (req.url === '/api/tables') res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify([{ id: 'mesh/sessions', live: 7, servers: { s1: 7 } }]));
      else res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"no"}');
    });
    await new Promise<void>((r) => admin.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => admin.close(() => r())));
    const port = (admin.address() as AddressInfo).port;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sm-against-'));
    // admin-bind on every address: each node's admin is its peer address; node a (127.0.9.1) is down.
    const cfg = (table: string) =>
      ['global', `    admin-bind :${port}`, 'peers mesh', '    server a 127.0.9.1:10000', '    server b 127.0.0.1:10000', '    table sessions type ip size 1k', '    table other type ip size 1k', 'backend be', `    stick on src table mesh/${table}`, '    server s1 127.0.0.1:1', ''].join('\n');
    writeFileSync(path.join(dir, 'old.cfg'), cfg('sessions'));
    writeFileSync(path.join(dir, 'new.cfg'), cfg('other'));
    const env = { ...process.env };
    delete env.STICKMESH_ADMIN;
    // Asynchronously: the admin answering is in this process.
    const r = await new Promise<{ status: number | null; stderr: string }>((resolve) => {
      const c = spawn(process.execPath, [bin, 'check', '-c', path.join(dir, 'new.cfg'), '--against', path.join(dir, 'old.cfg')], { env, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      c.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      c.on('exit', (status) => resolve({ status, stderr }));
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`stickmesh check: http://127.0.9.1:${port} (a): ECONNREFUSED; answered by http://127.0.0.1:${port} (b)\n`);
    expect(r.stderr).toMatch(/\[7 stick entries affected on the running node\]/);
  });
});
