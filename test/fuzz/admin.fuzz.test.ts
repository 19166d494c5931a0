/**
 * Seeded hostile-input fuzz of the admin listener over raw TCP: random methods, paths (every API
 * route with random segments), queries, Host, Origin, Sec-Fetch-Site, Authorization and
 * Content-Type headers, bodies and tokens, against
 *   - a real in-process node (its AdminServer with the real ops routes, a stick table and a
 *     backend), with `admin-token` set, and
 *   - an AdminServer without a token, with write routes that count what they accept.
 *
 * Checks per case: the answer is HTTP with a status in ALLOWED (no 5xx); a write answered 2xx
 * had the token (node) or came from no browser / a trusted origin with an acceptable Host (no
 * token); a foreign browser request never gets `Access-Control-Allow-Origin`. After the run: both
 * still serve, the node's table and servers are consistent, memory is bounded.
 * `FUZZ_LONG=1` runs 100,000 cases; replay with `FUZZ_SEED=...`, one case with `FUZZ_CASE=id`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { parseConfigText } from '@stickmesh/core';
import { AdminServer, HostCheck, classifyOrigin } from '@stickmesh/proxy';
import { StickmeshNode } from '../../packages/cli/src/node.js';
import { freePort, startBackend, type TestBackend } from '../helpers/backends.js';
import { exchangeUntilClose } from '../helpers/client.js';
import { Rng, fuzzRun } from '../helpers/rng.js';
import { oneThread } from '../helpers/in-process.js';

const { long: LONG, cases: CASES, seed, replay } = fuzzRun(2000);
const ALLOWED = new Set([200, 204, 400, 401, 403, 404, 405, 409, 413, 414, 421, 431]);
const TOKEN = 'fuzz-token-7f3a';
const PEER = 'http://127.0.0.9:4242';
const ALLOWED_ORIGIN = 'https://ops.example';
const CASE_DEADLINE_MS = 5000;

let backend: TestBackend;
let node: StickmeshNode;
let nodePort: number;
let open: AdminServer;
let openPort: number;
/** Case ids (from `?case=`) whose write ran on the no-token listener. */
let openWrites: number[] = [];

beforeAll(async () => {
  backend = await startBackend('web1');
  nodePort = await freePort();
  const proxyPort = await freePort();
  const text = `
global
    admin-bind 127.0.0.1:${nodePort}
    admin-token ${TOKEN}
    admin-allow-origin ${ALLOWED_ORIGIN}
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend web
    bind 127.0.0.1:${proxyPort}
    default_backend app
backend app
    stick-table type string len 64 size 10k expire 10m store http_req_rate(10s),conn_cur,gpc0
    stick on req.cook(sid)
    server web1 127.0.0.1:${backend.port}
    server web2 127.0.0.1:${backend.port}
`;
  node = await StickmeshNode.start(oneThread(parseConfigText(text, 'fuzz.cfg', 'haproxy', {})), { node: 'lb1', logger: pino({ level: 'silent' }) });
  const t = [...node.tables.values()][0]!;
  for (let i = 0; i < 500; i++) t.setLocal(`sess-${i}`, i % 2 ? 'web1' : 'web2');
  // Counters for the first 100 keys, so `/api/tables/:table/counters?key=` finds some.
  const ctr = t.counters!;
  for (let i = 0; i < 100; i++) {
    const slot = ctr.acquire(`sess-${i}`);
    ctr.add(slot, ctr.column('http_req_rate'), 1 + i);
    ctr.release(slot);
  }
  open = new AdminServer({
    host: '127.0.0.1',
    port: 0,
    readiness: () => ({ ready: true, reason: 'ok' }),
    origins: () => ({ peers: [PEER], allowed: [ALLOWED_ORIGIN] }),
    api: [
      { method: 'GET', path: '/api/things/:id', handler: (r) => ({ id: r.params.id, q: r.query.get('q') }) },
      { method: 'PUT', path: '/api/things/:id', handler: (r) => (openWrites.push(Number(r.query.get('case'))), { ok: true, body: r.body ?? null }) },
      { method: 'DELETE', path: '/api/things/:id', handler: (r) => (openWrites.push(Number(r.query.get('case'))), { deleted: true }) },
      { method: 'POST', path: '/api/things', handler: (r) => (openWrites.push(Number(r.query.get('case'))), { created: true }) },
    ],
  });
  openPort = (await open.listen()).port;
}, 30000);

afterAll(async () => {
  open?.close();
  await node?.stop(0, false);
  await backend?.close();
});

const METHODS = ['GET', 'GET', 'HEAD', 'POST', 'PUT', 'PUT', 'DELETE', 'DELETE', 'OPTIONS', 'OPTIONS', 'PATCH', 'TRACE', 'get', 'FOO', 'CONNECT'];
const JUNK = ['', '%', '%2', '%zz', '%00', '%2F', '..', '.', '%C0%AF', '\u00e9', '%E2%80%AE', 'a'.repeat(300), '__proto__', 'constructor', 'toString', '<script>', '"\'>', '*', ' ', '%20', '?', '#'];
const SEGS = {
  table: ['app', 'app', 'nope', 'mesh%2Fsessions'],
  key: ['sess-1', 'sess-2', 'sess-499', 'none', '%25'],
  backend: ['app', 'app', 'nope'],
  server: ['web1', 'web2', 'web9'],
  id: ['a', 'b%2Fc', 'x'],
};
const PATHS = [
  '/', '/dashboard', '/dashboard.js', '/dashboard.css', '/healthz', '/ready', '/metrics', '/tables', '/peers',
  '/api/dashboard', '/api/summary', '/api/tables', '/api/tables/:table/entries', '/api/tables/:table/entries/:key', '/api/tables/:table/counters',
  '/api/servers', '/api/servers/:backend/:server', '/api/peers', '/api/explain', '/api/things/:id', '/api/things',
  '/api', '/api/', '//api/servers', '/api/servers/', '/api/servers/app', '/api/servers/app/web1/x', '/nope', '*',
];
const QKEYS = ['limit', 'cursor', 'server', 'prefix', 'key', 'backend', 'q', 'limit', 'cursor'];
const QVALS = ['1', '0', '-1', '10000', '10001', '1e3', '1.5', 'NaN', '999999999999', 'web1', 'sess-', 'sess-1', 'x'.repeat(1100), '%', '%E2', ''];
const ORIGINS = [undefined, undefined, 'self', PEER, ALLOWED_ORIGIN, 'http://evil.example', 'http://127.0.0.1:8080', 'null', 'HTTP://OPS.EXAMPLE', 'https://ops.example.evil', 'http://127.0.0.9:4242/', 'javascript:alert(1)', ''];
const SITES = [undefined, undefined, 'same-origin', 'same-site', 'cross-site', 'none', 'bogus'];
const AUTHS = [undefined, undefined, `Bearer ${TOKEN}`, `Bearer ${TOKEN} `, `bearer ${TOKEN}`, `Bearer ${TOKEN}x`, 'Bearer ', 'Basic Zm9vOmJhcg==', `Bearer ${'t'.repeat(2000)}`, TOKEN];
const CTYPES = [undefined, 'application/json', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16'];
const BODIES = ['', '{"state":"maint"}', '{"state":"drain","deadlineMs":1000,"autoMaint":true}', '{"state":"ready"}', '{"state":"drain","deadlineMs":-1}', '{"state":"drain","autoMaint":"yes"}', '[]', 'null', '"x"', '{', '{"__proto__":{"state":"maint"}}', 'state=maint', '\u0000\u0001', '{"state":"maint"}'.repeat(4000)];
/** Well-formed writes of the cluster-wide admin state (weight, per-node scope, clear). */
const STATE_BODIES = ['{"weight":50}', '{"state":"drain","weight":0}', '{"scope":"node","state":"maint"}', '{"scope":"node","clear":true}', '{"clear":true}'];
/** Hostile ones: out-of-range or mistyped weight, unknown scope, clear with other fields. */
const BAD_STATE_BODIES = ['{"weight":257}', '{"weight":-1}', '{"weight":1.5}', '{"weight":"5"}', '{"weight":1e309}', '{"scope":"cluster-wide","state":"maint"}', '{"scope":"node"}', '{"clear":"yes"}', '{"clear":true,"state":"drain"}', '{"scope":null,"weight":null}'];

interface Case {
  target: 'node' | 'open';
  method: string;
  path: string;
  host: string | undefined;
  origin: string | undefined;
  site: string | undefined;
  auth: string | undefined;
  ctype: string | undefined;
  body: string;
  lie: boolean;
  upgrade: boolean;
}

function generate(r: Rng, id: number): Case {
  const target = r.chance(0.7) ? 'node' : 'open';
  const port = target === 'node' ? nodePort : openPort;
  // A quarter of the cases are well-formed writes, so the write oracle meets accepted ones too.
  const plausible = r.chance(0.25);
  const WRITES: Array<[string, string]> = target === 'node'
    ? [['PUT', '/api/servers/app/:server'], ['DELETE', '/api/tables/app/entries/:key'], ['DELETE', '/api/tables/app/entries']]
    : [['PUT', '/api/things/:id'], ['DELETE', '/api/things/:id'], ['POST', '/api/things']];
  const w = r.pick(WRITES);
  let path = (plausible ? w[1] : r.pick(PATHS)).replace(/:(\w+)/g, (_, n: keyof typeof SEGS) => (r.chance(0.85) ? r.pick(SEGS[n] ?? ['x']) : r.pick(JUNK)));
  if (r.chance(0.6)) {
    const qs: string[] = [];
    for (let i = r.int(1, 4); i > 0; i--) qs.push(`${r.pick(QKEYS)}=${r.pick(QVALS)}`);
    if (r.chance(0.1)) qs.push(r.pick(JUNK));
    path += `?${qs.join('&')}`;
  }
  if (r.chance(0.02)) path = `/${'a'.repeat(r.int(4000, 5000))}`;
  // Writes on the no-token listener are attributed to their case by this query parameter.
  if (target === 'open') path += `${path.includes('?') ? '&' : '?'}case=${id}`;
  const hosts = [`127.0.0.1:${port}`, `127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, `evil.example:${port}`, `127.0.0.1:${port + 1}`, 'localhost', undefined, '', 'ops.example', `127.0.0.2:${port}`, `a b:${port}`, `[::1`, `127.0.0.1:${port}:${port}`];
  const host = r.chance(0.5) ? hosts[0] : r.pick(hosts);
  let origin = r.pick(ORIGINS);
  if (origin === 'self') origin = `http://${host ?? `127.0.0.1:${port}`}`;
  return {
    target,
    method: plausible ? w[0] : r.pick(METHODS),
    path,
    host,
    origin,
    site: r.pick(SITES),
    auth: r.chance(0.25) ? AUTHS[2] : r.pick(AUTHS),
    ctype: r.pick(CTYPES),
    body: plausible ? r.pick([...BODIES.slice(1, 4), ...STATE_BODIES]) : r.chance(0.2) ? r.pick(BAD_STATE_BODIES) : r.pick(BODIES),
    lie: r.chance(0.05),
    upgrade: r.chance(0.03),
  };
}

function wire(c: Case): string {
  const lines = [`${c.method} ${c.path} HTTP/1.1`];
  if (c.host !== undefined) lines.push(`Host: ${c.host}`);
  if (c.origin !== undefined) lines.push(`Origin: ${c.origin}`);
  if (c.site !== undefined) lines.push(`Sec-Fetch-Site: ${c.site}`);
  if (c.auth !== undefined) lines.push(`Authorization: ${c.auth}`);
  if (c.ctype !== undefined) lines.push(`Content-Type: ${c.ctype}`);
  if (c.method === 'OPTIONS' && c.origin !== undefined) lines.push('Access-Control-Request-Method: PUT');
  if (c.upgrade) lines.push('Connection: Upgrade', 'Upgrade: websocket');
  const len = Buffer.byteLength(c.body);
  // A lying Content-Length (shorter) leaves bytes Node reads as a second request: allowed, answered or refused.
  lines.push(`Content-Length: ${c.lie ? Math.max(0, len - 3) : len}`, 'Connection: close', '', '');
  return lines.join('\r\n') + c.body;
}

function exchange(port: number, data: string): Promise<{ out: string; closed: boolean }> {
  return exchangeUntilClose(port, CASE_DEADLINE_MS, (sock) => sock.end(data, 'latin1'));
}

/** What the access rules say a case may get, independently of the server: a write may succeed. */
function writeMayPass(c: Case, port: number, token: boolean): boolean {
  const validToken = token && (c.auth === `Bearer ${TOKEN}` || c.auth === `Bearer ${TOKEN} `);
  if (validToken) return true;
  if (token) return false; // the node has a token: every write needs it
  const hostOk = new HostCheck('127.0.0.1', port, [ALLOWED_ORIGIN]).accepts(c.host);
  const v = classifyOrigin(c.origin, c.site, c.host === undefined ? undefined : `http://${c.host.toLowerCase()}`, new Set([PEER, ALLOWED_ORIGIN]));
  return hostOk && !v.foreign;
}

describe(`admin API under hostile input (${CASES} cases, seed ${seed})`, () => {
  it('answers within ALLOWED, accepts no write without the token or a trusted origin, keeps serving, bounded memory', async () => {
    const heapBefore = process.memoryUsage().heapUsed;
    const failures: string[] = [];
    const only = process.env.FUZZ_CASE !== undefined ? Number(process.env.FUZZ_CASE) : undefined;
    let next = only ?? 0;
    const last = only !== undefined ? only + 1 : CASES;
    let run = 0;
    let acceptedWrites = 0;
    /** No-token cases whose write must not run, by id. */
    const refused = new Map<number, string>();
    let statusCounts = new Map<number, number>();
    const worker = async () => {
      while (next < last && failures.length < 10) {
        const id = next++;
        const r = new Rng((seed + Math.imul(id, 0x9e3779b1)) >>> 0);
        const c = generate(r, id);
        const port = c.target === 'node' ? nodePort : openPort;
        const data = wire(c);
        const { out, closed } = await exchange(port, data);
        run++;
        const show = `case ${id} ${JSON.stringify(data.slice(0, 240))}`;
        if (only !== undefined) console.log(show, '->', JSON.stringify(out.slice(0, 600)));
        if (!closed) failures.push(`${show}: connection still open after ${CASE_DEADLINE_MS} ms`);
        const statuses = [...out.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
        if (statuses.length === 0) {
          failures.push(`${show}: no HTTP answer: ${JSON.stringify(out.slice(0, 120))}`);
          continue;
        }
        const st = statuses[0]!;
        statusCounts.set(st, (statusCounts.get(st) ?? 0) + 1);
        if (!ALLOWED.has(st)) failures.push(`${show}: status ${st}: ${JSON.stringify(out.slice(0, 300))}`);
        const write = ['POST', 'PUT', 'DELETE'].includes(c.method);
        const api = c.path.startsWith('/api/');
        if (write && api && st >= 200 && st < 300) acceptedWrites++;
        if (write && api && st >= 200 && st < 300 && !c.lie && !writeMayPass(c, port, c.target === 'node')) failures.push(`${show}: write accepted (${st})`);
        if (c.target === 'open' && !c.lie && !writeMayPass(c, port, false)) refused.set(id, show);
        const acao = /\r\naccess-control-allow-origin: ([^\r]*)/i.exec(out)?.[1];
        if (acao !== undefined) {
          const o = acao.toLowerCase();
          const self = c.host === undefined ? undefined : `http://${c.host.toLowerCase()}`;
          if (o !== self && o !== PEER && o !== ALLOWED_ORIGIN) failures.push(`${show}: CORS granted to ${acao}`);
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, () => worker()));
    for (const id of openWrites) if (refused.has(id)) failures.push(`${refused.get(id)}: write ran on the no-token listener`);
    // Still serving; the node's table and servers consistent.
    for (const port of [nodePort, openPort]) {
      const h = await exchange(port, `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`);
      if (!/^HTTP\/1\.1 200 /.test(h.out)) failures.push(`port ${port} no longer serves /healthz: ${h.out.slice(0, 80)}`);
    }
    const sum = await exchange(nodePort, `GET /api/summary HTTP/1.1\r\nHost: 127.0.0.1:${nodePort}\r\nConnection: close\r\n\r\n`);
    if (!/^HTTP\/1\.1 200 /.test(sum.out)) failures.push(`summary: ${sum.out.slice(0, 200)}`);
    const t = [...node.tables.values()][0]!;
    if (t.serverCounts().live > 500) failures.push(`table grew to ${t.serverCounts().live}`);
    if (t.counters!.count !== 100) failures.push(`counter keys changed from 100 to ${t.counters!.count}`);
    // Admin state: at most a state, a weight and this node's open-connections record (written while
    // it drains) per configured server; web9 and junk names are refused.
    const servers = [...node.proxy.backends.values()].reduce((n, b) => n + b.servers.length, 0);
    if (node.serverStates.store.count > 3 * servers) failures.push(`#servers grew to ${node.serverStates.store.count} records for ${servers} servers`);
    const growthMb = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
    if (growthMb > 200) failures.push(`heap grew by ${growthMb.toFixed(0)} MiB`);
    console.log(`admin fuzz: ${run} cases, ${acceptedWrites} writes accepted, statuses ${JSON.stringify(Object.fromEntries([...statusCounts].sort((a, b) => a[0] - b[0])))}, heap +${growthMb.toFixed(1)} MiB`);
    statusCounts = new Map();
    openWrites = [];
    expect(failures, `replay: ${replay} npx vitest run test/fuzz/admin.fuzz.test.ts`).toEqual([]);
    expect(run).toBe(last - (only ?? 0));
    // The oracle saw writes succeed (with the token or a trusted origin), so it is not vacuous.
    if (only === undefined && CASES >= 1000) expect(acceptedWrites).toBeGreaterThan(0);
  }, LONG ? 1_800_000 : 120_000);
});
