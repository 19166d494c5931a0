/**
 * `stickmesh check -c NEW --against OLD [--admin URL]`: every change that breaks live persistence
 * is reported with its live count, from a fake admin listener answering `/api/tables` as a running
 * node does (82 live entries in mesh/sessions: web1 30, web2 27, web3 25), and exits 1.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = path.join(root, 'packages/cli/bin/stickmesh.js');

const OLD = `peers mesh
    bind 127.0.0.1:10000
    server node1 127.0.0.1:10000
    table sessions type ip size 1m expire 30m
    table other type ip size 1m expire 30m

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s

frontend web
    bind 127.0.0.1:8080
    default_backend app

backend app
    balance roundrobin
    cookie SRV insert indirect nocache
    stick on src table mesh/sessions
    server web1 127.0.0.1:9001 cookie w1
    server web2 127.0.0.1:9002 cookie w2
    server web3 127.0.0.1:9003 cookie w3

backend dyn
    cookie DYN insert dynamic
    dynamic-cookie-key oldsecret
    stick-table type ip size 100k expire 30m
    stick on src
    server d1 127.0.0.1:9101
    server d2 127.0.0.1:9102

backend src
    balance source
    hash-type map-based
    server s1 127.0.0.1:9201
    server s2 127.0.0.1:9202
    server s3 127.0.0.1:9203
`;

const TABLES = [
  { id: 'mesh/sessions', live: 82, servers: { web1: 30, web2: 27, web3: 25 } },
  { id: 'mesh/other', live: 0, servers: {} },
  { id: 'dyn', live: 12, servers: { d1: 5, d2: 7 } },
];

let dir: string;
let admin: Server;
let adminUrl: string;
let adminCalls = 0;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'sm-against-'));
  writeFileSync(path.join(dir, 'old.cfg'), OLD);
  admin = createServer((req, res) => {
    adminCalls++;
    res.setHeader('content-type', 'application/json');
    if (req.url === '/api/tables') res.end(JSON.stringify(TABLES));
    else {
      res.statusCode = 404;
      res.end('{"error":"not found"}');
    }
  });
  await new Promise<void>((r) => admin.listen(0, '127.0.0.1', r));
  adminUrl = `http://127.0.0.1:${(admin.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((r) => admin.close(r));
  rmSync(dir, { recursive: true, force: true });
});

interface Run { code: number; stdout: string; stderr: string }

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    // No STICKMESH_ADMIN from the caller's shell: each test says which node (if any) answers.
    const { STICKMESH_ADMIN: _a, ...base } = process.env;
    const p = spawn(process.execPath, [bin, ...args], { env: { ...base, ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

let n = 0;
/** Checks OLD with `edit` applied against OLD, counting on the fake admin. */
async function against(edit: (cfg: string) => string, withAdmin = true): Promise<Run> {
  const file = path.join(dir, `new${++n}.cfg`);
  const text = edit(OLD);
  expect(text).not.toBe(OLD);
  writeFileSync(file, text);
  const r = await run(['check', '-c', file, '--against', path.join(dir, 'old.cfg'), ...(withAdmin ? ['--admin', adminUrl] : [])], withAdmin ? {} : { STICKMESH_ADMIN: 'http://127.0.0.1:1' });
  // The new config itself is valid: whatever check reports below is about persistence.
  expect(r.stderr).not.toMatch(/^\S+:\d+: '/m);
  return r;
}

describe('stickmesh check --against', () => {
  it('reports nothing and exits 0 for the same config', async () => {
    const r = await run(['check', '-c', path.join(dir, 'old.cfg'), '--against', path.join(dir, 'old.cfg'), '--admin', adminUrl]);
    expect(r.stderr).toMatch(/no persistence-breaking change/);
    expect(r.code).toBe(0);
  });

  it('a renamed stick table orphans its 82 live entries', async () => {
    const r = await against((c) => c.replace('table sessions', 'table sess2').replace('mesh/sessions', 'mesh/sess2'));
    expect(r.stderr).toMatch(/new\d+\.cfg:4: persistence: stick table 'mesh\/sessions' renamed to 'mesh\/sess2'.*\[82 stick entries affected on the running node\]/);
    expect(r.stderr).not.toMatch(/stick on src/); // the rule follows the rename: reported once
    expect(r.code).toBe(1);
  });

  it("deleting 'stick on src' orphans the 82 entries it looked up", async () => {
    const r = await against((c) => c.replace('    stick on src table mesh/sessions\n', ''));
    expect(r.stderr).toMatch(/backend 'app': 'stick on src table mesh\/sessions' \(\S*old\.cfg:20\) was removed: .*no longer looked up.*\[82 stick entries affected on the running node\]/);
    expect(r.code).toBe(1);
  });

  it('a removed stick table drops its entries', async () => {
    const r = await against((c) => c.replace('    table sessions type ip size 1m expire 30m\n', '').replace('mesh/sessions', 'mesh/other'));
    // 'other' existed before: this is a removal, and the rule moved to another table.
    expect(r.stderr).toMatch(/stick table 'mesh\/sessions' \(\S*old\.cfg:4\) was removed.*\[82 stick entries affected/);
    expect(r.code).toBe(1);
  });

  it('a retyped stick table drops its entries', async () => {
    const r = await against((c) => c.replace('table sessions type ip', 'table sessions type ipv6'));
    expect(r.stderr).toMatch(/stick table 'mesh\/sessions': key type changed from ip to ipv6.*\[82 stick entries affected/);
    expect(r.code).toBe(1);
  });

  it('a table shrunk below its live entries loses the ones above the new size; above them it breaks nothing', async () => {
    const r = await against((c) => c.replace('table sessions type ip size 1m', 'table sessions type ip size 50'));
    expect(r.stderr).toMatch(/stick table 'mesh\/sessions': size reduced from 1048576 to 50.*\[32 live entries above the new size on the running node\]/);
    expect(r.code).toBe(1);
    const ok = await against((c) => c.replace('table sessions type ip size 1m', 'table sessions type ip size 100'));
    expect(ok.stderr).toMatch(/no persistence-breaking change/);
    expect(ok.code).toBe(0);
  });

  it('a stick rule reading another key or table no longer finds the stored entries', async () => {
    const key = await against((c) => c.replace('stick on src table mesh/sessions', 'stick on dst table mesh/sessions'));
    expect(key.stderr).toMatch(/'stick on src table mesh\/sessions' \(\S*old\.cfg:20\) was changed: .*the new rules are 'stick on dst table mesh\/sessions'.*\[82 stick entries affected/);
    expect(key.code).toBe(1);
    const table = await against((c) => c.replace('stick on src table mesh/sessions', 'stick on src table mesh/other'));
    expect(table.stderr).toMatch(/'stick on src table mesh\/sessions' .* was changed: .*'stick on src table mesh\/other'.*\[82 stick entries affected/);
    const store = await against((c) => c.replace('stick on src table mesh/sessions', 'stick match src table mesh/sessions\n    stick store-request dst table mesh/sessions'));
    expect(store.stderr).toMatch(/was changed: the entries of 'mesh\/sessions' are no longer stored or refreshed.*\[82 stick entries affected/);
    expect(store.code).toBe(1);
  });

  it('a renamed server orphans the entries naming it', async () => {
    const r = await against((c) => c.replace('server web2 ', 'server app2 '));
    expect(r.stderr).toMatch(/server 'web2' renamed to 'app2' .*\[27 stick entries affected on the running node\]/);
    expect(r.code).toBe(1);
  });

  it("a server's changed cookie value counts the entries naming it; browsers' cookies cannot be counted", async () => {
    const r = await against((c) => c.replace('cookie w3', 'cookie web3'));
    expect(r.stderr).toMatch(/server 'web3': cookie value changed from 'w3' to 'web3'.*\[25 stick entries name the servers concerned on the running node; cookies held by browsers cannot be counted\]/);
    expect(r.code).toBe(1);
  });

  it('a changed cookie name', async () => {
    const r = await against((c) => c.replace('cookie SRV insert', 'cookie SERVERID insert'));
    expect(r.stderr).toMatch(/cookie name changed from 'SRV' to 'SERVERID'.*\[82 stick entries name the servers concerned.*cookies held by browsers cannot be counted\]/);
    expect(r.code).toBe(1);
  });

  it('a changed cookie mode', async () => {
    const r = await against((c) => c.replace('cookie SRV insert indirect nocache', 'cookie SRV prefix'));
    expect(r.stderr).toMatch(/cookie 'SRV' mode changed from insert to prefix.*cookies held by browsers cannot be counted/);
    expect(r.code).toBe(1);
  });

  it('a changed dynamic-cookie-key invalidates every dynamic cookie', async () => {
    const r = await against((c) => c.replace('dynamic-cookie-key oldsecret', 'dynamic-cookie-key newsecret'));
    expect(r.stderr).toMatch(/backend 'dyn': dynamic-cookie-key changed: every dynamic cookie value changes.*\[12 stick entries name the servers concerned/);
    expect(r.code).toBe(1);
  });

  it('a server added to a balance source backend remaps a share of clients, estimated', async () => {
    const map = await against((c) => c.replace('    server s3 127.0.0.1:9203\n', '    server s3 127.0.0.1:9203\n    server s4 127.0.0.1:9204\n'));
    const m = /backend 'src': the servers of balance source changed \(added s4\) with hash-type map-based: about (\d+)% of source-hashed clients map to another server/.exec(map.stderr);
    expect(m).not.toBeNull();
    // hash % 3 -> hash % 4: a client stays only where both land on the same slot (3 of 12 residues).
    expect(Number(m![1])).toBeGreaterThanOrEqual(70);
    expect(map.code).toBe(1);
    const consistent = await against((c) => c.replace('hash-type map-based', 'hash-type consistent').replace('    server s3 127.0.0.1:9203\n', '    server s3 127.0.0.1:9203\n    server s4 127.0.0.1:9204\n'));
    expect(consistent.stderr).toMatch(/hash-type changed from map-based to consistent with balance source: about \d+%/);
    const json = await run(['check', '-c', path.join(dir, `new${n}.cfg`), '--against', path.join(dir, 'old.cfg'), '--json', '-q'], { STICKMESH_ADMIN: 'http://127.0.0.1:1' });
    const ws = JSON.parse(json.stdout) as Array<{ kind: string; remapped?: number }>;
    expect(ws.map((w) => w.kind)).toEqual(['hash-type-changed']);
    expect(ws[0]!.remapped).toBeGreaterThan(0.1);
    expect(json.code).toBe(1);
  });

  it('with consistent hashing a fourth server takes about a quarter of the clients', async () => {
    const base = (c: string): string => c.replace('hash-type map-based', 'hash-type consistent');
    writeFileSync(path.join(dir, 'old-consistent.cfg'), base(OLD));
    const file = path.join(dir, 'new-consistent.cfg');
    writeFileSync(file, base(OLD).replace('    server s3 127.0.0.1:9203\n', '    server s3 127.0.0.1:9203\n    server s4 127.0.0.1:9204\n'));
    const r = await run(['check', '-c', file, '--against', path.join(dir, 'old-consistent.cfg'), '--json', '-q'], { STICKMESH_ADMIN: 'http://127.0.0.1:1' });
    const ws = JSON.parse(r.stdout) as Array<{ kind: string; remapped: number }>;
    expect(ws.map((w) => w.kind)).toEqual(['source-servers-changed']);
    expect(ws[0]!.remapped).toBeGreaterThan(0.2);
    expect(ws[0]!.remapped).toBeLessThan(0.3);
  });

  it('a changed hash type', async () => {
    const r = await against((c) => c.replace('hash-type map-based', 'hash-type consistent'));
    expect(r.stderr).toMatch(/backend 'src': hash-type changed from map-based to consistent with balance source: about \d+% of source-hashed clients map to another server/);
    expect(r.code).toBe(1);
  });

  it('without a reachable node every count says "live count unknown"', async () => {
    const before = adminCalls;
    const r = await against((c) => c.replace('table sessions', 'table sess2').replace('mesh/sessions', 'mesh/sess2'), false);
    expect(r.stderr).toMatch(/renamed to 'mesh\/sess2'.*\[live count unknown\]/);
    expect(adminCalls).toBe(before);
    expect(r.code).toBe(1);
    const cookie = await against((c) => c.replace('cookie w3', 'cookie web3'), false);
    expect(cookie.stderr).toMatch(/cookie value changed .*\[live count unknown; cookies held by browsers cannot be counted\]/);
  });
});
