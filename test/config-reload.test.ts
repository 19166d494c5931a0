/**
 * Config problems as an operator meets them through the built `stickmesh` command: a reload of a
 * garbage file leaves exactly one bounded log line and the running config serving; `check`
 * reports the first 100 problems and counts the rest; YAML/JSON errors, alias bombs, environment
 * overrides and bad flags are named precisely.
 */
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startBackend } from './helpers/backends.js';
import { request } from './helpers/client.js';
import { forEachLine } from './helpers/cluster.js';
import { useScope } from './helpers/scope.js';
import { waitFor } from './helpers/wait.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = path.join(root, 'packages/cli/bin/stickmesh.js');

/** 4 MiB of `a\n`: a problem on each of its 2,097,152 lines (and the empty last one is none). */
const GARBAGE = 'a\n'.repeat(2 * 1024 * 1024);
const GARBAGE_LINES = 2 * 1024 * 1024;

function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 60000, env: { ...process.env, ...env } });
}

function tmp(name: string, body: string): string {
  const f = path.join(mkdtempSync(path.join(os.tmpdir(), 'sm-cfg-')), name);
  writeFileSync(f, body);
  return f;
}

const scope = useScope();

describe('stickmesh check with many problems', () => {
  it('prints the first 100 problems of a 4 MiB garbage file and counts the rest', () => {
    const f = tmp('garbage.cfg', GARBAGE);
    const r = cli(['check', '-c', f]);
    expect(r.status).toBe(1);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(101);
    expect(lines[0]).toBe(`${f}:1: 'a': 'a' appears outside of any section (expected one of global, defaults, frontend, backend, listen, peers, resolvers first)`);
    expect(lines[99]).toMatch(new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:100: `));
    expect(lines[100]).toBe(`${GARBAGE_LINES - 100} more problems`);
  });

  it('caps warnings the same way', () => {
    const servers = Array.from({ length: 150 }, (_, i) => `  server s${i} 127.0.0.1:${1000 + i}`);
    const f = tmp('many.cfg', ['frontend fe', '  bind 127.0.0.1:8080', '  mode http', '  default_backend be', 'backend be', '  mode http', '  cookie SRV insert', ...servers, ''].join('\n'));
    const r = cli(['check', '-c', f]);
    expect(r.status).toBe(0);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(101);
    expect(lines.slice(0, 100).every((l) => l.startsWith(`[WARNING] ${f}:`))).toBe(true);
    expect(lines[100]).toBe('[WARNING] 50 more warnings');
  });

  it('refuses a file over 16 MiB, naming it', () => {
    const f = tmp('huge.cfg', '#'.repeat(16 * 1024 * 1024 + 1));
    const r = cli(['check', '-c', f]);
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe(`${f}: larger than 16 MiB, the most a config file may have`);
  });
});

describe('front doors name where the problem is', () => {
  it('YAML alias bomb: file and line of the nested aliases', () => {
    const f = tmp(
      'bomb.yaml',
      [
        'global:',
        '  maxconn: 10',
        'a: &a ["x","x","x","x","x","x","x","x","x"]',
        'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]',
        'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]',
        'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]',
        '',
      ].join('\n'),
    );
    const r = cli(['check', '-c', f]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^${f.replace(/\./g, '\\.')}:5: 'syntax': YAML aliases expand to too many nodes`));
  });

  it('YAML and JSON syntax errors: file and line of the error', () => {
    const y = tmp('bad.yaml', 'global:\n  maxconn: 10\nbackends:\n  - name: b\n    servers: [ {name: s\n');
    expect(cli(['check', '-c', y]).stderr).toContain(`${y}:6: 'syntax': `);
    const j = tmp('bad.json', '{\n  "global": {\n    "maxconn": 10,\n  }\n  "backends": []\n}\n');
    expect(cli(['check', '-c', j]).stderr).toBe(`${j}:5: 'syntax': Missing , between flow map items\n`);
  });

  it('environment overrides: the variable and its value', () => {
    const f = tmp('ok.cfg', 'global\n  maxconn 10\n');
    const r = cli(['check', '-c', f], { STICKMESH_MAXCONN: 'lots', STICKMESH_ADMIN_PORT: '99999' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`${f}: 'environment': STICKMESH_MAXCONN="lots" (global maxconn): must be a positive integer`);
    expect(r.stderr).toContain(`${f}: 'environment': STICKMESH_ADMIN_PORT="99999" (global admin.port): ports must be within range 0 - 65535`);
    const y = tmp('ok.yaml', 'global:\n  maxconn: 10\n');
    expect(cli(['check', '-c', y], { STICKMESH_MAXCONN: 'lots' }).stderr).toBe(`${y}: 'environment': STICKMESH_MAXCONN="lots" (global maxconn): must be a positive integer\n`);
  });

  it('command-line flags: the flag and its value', () => {
    const f = tmp('ok.cfg', 'global\n  maxconn 10\n');
    const r = cli(['start', '-c', f, '--drain-timeout', 'soon']);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(`stickmesh start: --drain-timeout: 'soon' is not a number of milliseconds (0..999999999)\n`);
  });
});

/** Starts `stickmesh start` on `cfg`; resolves once it logged 'stickmesh started', with its stdout lines. */
async function startNode(cfg: string): Promise<{ child: ChildProcess; lines: string[]; logs: () => Array<Record<string, unknown>> }> {
  const child = spawn(process.execPath, [bin, 'start', '--config', cfg, '--node', 'lb1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, STICKMESH_ADMIN_PORT: '0', STICKMESH_LOG_LEVEL: 'info' },
  });
  scope.defer(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const lines: string[] = [];
  forEachLine(child.stdout!, (l) => lines.push(l));
  const logs = (): Array<Record<string, unknown>> => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  await waitFor(() => logs().some((l) => l.msg === 'stickmesh started'), 15000, 'node started');
  return { child, lines, logs };
}

describe('SIGHUP reload', () => {
  it('a native file is reloaded through the worker: an alias bomb fails with file:line, a good file loads', async () => {
    const be = await startBackend('web1');
    scope.defer(() => be.close());
    const port = await freePort();
    const good = ['frontends:', `  - { name: fe, bind: ["127.0.0.1:${port}"], mode: http, defaultBackend: be }`, 'backends:', `  - { name: be, mode: http, servers: [{ name: web1, address: "127.0.0.1:${be.port}" }] }`, ''].join('\n');
    const cfg = tmp('node.yaml', good);
    const { child, logs } = await startNode(cfg);
    expect((await request(port)).status).toBe(200);
    writeFileSync(cfg, ['global: {}', 'a: &a [x, x, x, x, x, x, x, x, x, x, x, x]', 'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a, *a]', 'c: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b]', ''].join('\n'));
    child.kill('SIGHUP');
    const failed = await waitFor(() => logs().find((l) => l.msg === 'reload failed; keeping the running config'), 15000, 'reload failed line');
    expect(failed.issues).toEqual([`${cfg}:4: 'syntax': YAML aliases expand to too many nodes (an alias bomb); write the values out or use fewer nested aliases`]);
    expect((await request(port)).status).toBe(200);
    writeFileSync(cfg, good);
    child.kill('SIGHUP');
    await waitFor(() => logs().some((l) => l.msg === 'reloaded'), 15000, 'reloaded line');
    expect((await request(port)).status).toBe(200);
  }, 60000);

  it('a failed reload of 4 MiB of garbage leaves one bounded log line and the running config serving; a good one leaves one line', async () => {
    const be = await startBackend('web1');
    scope.defer(() => be.close());
    const port = await freePort();
    const good = ['frontend fe', `  bind 127.0.0.1:${port}`, '  mode http', '  default_backend be', 'backend be', '  mode http', `  server web1 127.0.0.1:${be.port}`, ''].join('\n');
    const cfg = tmp('node.cfg', good);
    const { child, lines, logs } = await startNode(cfg);
    expect((await request(port)).status).toBe(200);

    writeFileSync(cfg, GARBAGE);
    child.kill('SIGHUP');
    const failedLine = await waitFor(() => lines.find((l) => l.includes('"reload failed; keeping the running config"')), 30000, 'reload failed line');
    const failed = JSON.parse(failedLine) as { problems: number; issues: string[]; config: string; level: number };
    expect(failed.config).toBe(cfg);
    expect(failed.problems).toBe(GARBAGE_LINES);
    expect(failed.issues).toHaveLength(101);
    expect(failed.issues[0]).toMatch(new RegExp(`:1: 'a': 'a' appears outside of any section`));
    expect(failed.issues[100]).toBe(`${GARBAGE_LINES - 100} more problems`);
    expect(failedLine.length).toBeLessThan(64 * 1024);
    expect((await request(port)).status).toBe(200);

    writeFileSync(cfg, good);
    child.kill('SIGHUP');
    await waitFor(() => logs().some((l) => l.msg === 'reloaded'), 15000, 'reloaded line');
    expect((await request(port)).status).toBe(200);
    const reloadLines = logs().filter((l) => typeof l.msg === 'string' && /^reload/.test(l.msg));
    expect(reloadLines.map((l) => l.msg)).toEqual(['reload failed; keeping the running config', 'reloaded']);
  }, 90000);
});
