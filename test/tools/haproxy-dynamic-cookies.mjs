#!/usr/bin/env node
// Ground truth for HAProxy dynamic cookies: runs the real `haproxy` binary in front of tiny HTTP
// servers and records the cookie value it inserts for each (key, server address, port).
//
// As a script it writes test/fixtures/haproxy-dynamic-cookies.json (binding ports 80/443 needs
// root). As a module it exports `collect`, which the test suite uses with a fresh random key.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const COOKIE = 'SRVID';

/** haproxy processes started by `collect` and not yet reaped; `stopAll` kills them. */
const running = new Set();

/** Kills every haproxy this module started that is still running (for test teardown). */
export function stopAll() {
  for (const child of running) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  running.clear();
}

/** Resolves to a TCP port that was free on `host` a moment ago (bind to 0, read, close). */
export function freePort(host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      srv.close(() => resolve(addr.port));
    });
  });
}

/** Polls `cond` every `everyMs` until it resolves truthy; rejects with `what` after `timeoutMs`. */
async function waitFor(cond, timeoutMs, what, everyMs = 20) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

function canConnect(host, port) {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function startBackend(address, port) {
  return new Promise((resolve, reject) => {
    const srv = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', connection: 'close' });
      res.end(`${address} ${port}\n`);
    });
    srv.once('error', reject);
    srv.listen({ host: address, port, ipv6Only: false }, () => resolve(srv));
  });
}

function get(port, path) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
  });
}

/** HAProxy server address syntax: IPv6 literals need the `ipv6@` prefix to split off the port. */
function serverAddr(address, port) {
  return address.includes(':') ? `ipv6@${address}:${port}` : `${address}:${port}`;
}

function checkKey(key) {
  if (key.length === 0 || /['\0\r\n]/.test(key)) {
    throw new Error(`key ${JSON.stringify(key)} cannot be written single-quoted in a haproxy config`);
  }
}

function configFor(feport, cases) {
  const lines = [
    'global',
    '  maxconn 256',
    'defaults',
    '  mode http',
    '  timeout connect 5s',
    '  timeout client 10s',
    '  timeout server 10s',
    'frontend fe',
    `  bind 127.0.0.1:${feport}`,
  ];
  cases.forEach((_, i) => lines.push(`  use_backend b${i} if { path_beg /b${i}/ }`));
  cases.forEach((c, i) => {
    lines.push(
      `backend b${i}`,
      `  cookie ${COOKIE} insert dynamic`,
      // Single quotes: HAProxy copies the content verbatim (no escapes, no env expansion).
      `  dynamic-cookie-key '${c.key}'`,
      `  server s${i} ${serverAddr(c.address, c.port)}`,
    );
  });
  return lines.join('\n') + '\n';
}

/**
 * For every key × server, has a real haproxy insert its dynamic cookie and returns
 * `{ key, address, port, value }` in that order. A server `port` of 0 gets a free port.
 * Starts one HTTP listener per server on its own address, so addresses must be local
 * (127.0.0.0/8, ::1, ::ffff:127.x.y.z). Each key/server pair gets a backend of its own with a
 * single server, so each request is answered by exactly the server being measured.
 */
export async function collect(keys, servers, { haproxy = 'haproxy', timeoutMs = 10000 } = {}) {
  keys.forEach(checkKey);
  const listeners = [];
  const dir = mkdtempSync(join(tmpdir(), 'haproxy-dyncookie-'));
  let child;
  try {
    const resolved = [];
    for (const s of servers) {
      const port = s.port === 0 ? await freePort(s.address) : s.port;
      listeners.push(await startBackend(s.address, port));
      resolved.push({ address: s.address, port });
    }
    const cases = keys.flatMap((key) => resolved.map((s) => ({ key, ...s })));
    const feport = await freePort('127.0.0.1');
    const cfg = join(dir, 'haproxy.cfg');
    writeFileSync(cfg, configFor(feport, cases));

    let stderr = '';
    child = spawn(haproxy, ['-db', '-f', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
    running.add(child);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d) => (stderr += d));
    const spawnError = new Promise((_, reject) => child.once('error', reject));
    spawnError.catch(() => {});
    await Promise.race([
      spawnError,
      waitFor(async () => {
        if (child.exitCode !== null || child.signalCode !== null) {
          throw Object.assign(new Error(`haproxy exited (${child.exitCode ?? child.signalCode}): ${stderr}`), { fatal: true });
        }
        return canConnect('127.0.0.1', feport);
      }, timeoutMs, `haproxy to listen on 127.0.0.1:${feport}`).catch((e) => {
        throw new Error(`${e.message}\nhaproxy stderr:\n${stderr}`);
      }),
    ]);

    const out = [];
    for (let i = 0; i < cases.length; i++) {
      const c = cases[i];
      const res = await get(feport, `/b${i}/`);
      const expectedBody = `${c.address} ${c.port}\n`;
      if (res.status !== 200 || res.body !== expectedBody) {
        throw new Error(`backend b${i} (${c.address}:${c.port}) answered ${res.status} ${JSON.stringify(res.body)}`);
      }
      const setCookie = (res.headers['set-cookie'] ?? []).find((h) => h.startsWith(`${COOKIE}=`));
      const m = setCookie && /^SRVID=([^;]*)/.exec(setCookie);
      if (!m) throw new Error(`no ${COOKIE} Set-Cookie from backend b${i}: ${JSON.stringify(res.headers['set-cookie'])}`);
      out.push({ key: c.key, address: c.address, port: c.port, value: m[1] });
    }
    return out;
  } finally {
    if (child) {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      running.delete(child);
    }
    await Promise.all(listeners.map((l) => new Promise((r) => l.close(() => r()))));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Returns the first line of `haproxy -v`, e.g. "HAProxy version 2.6.12-1+deb12u3 ...". */
export function haproxyVersion(haproxy = 'haproxy') {
  return new Promise((resolve, reject) => {
    const c = spawn(haproxy, ['-v'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    c.stdout.setEncoding('utf8');
    c.stdout.on('data', (d) => (out += d));
    c.once('error', reject);
    c.once('close', () => resolve(out.split('\n')[0] ?? ''));
  });
}

const FIXTURE_KEYS = ['MySecretKey', 'another key/with spaces #2', 'clé-ünïcode'];
const FIXTURE_SERVERS = [
  { address: '127.0.0.1', port: 9001 },
  { address: '127.0.0.1', port: 9002 },
  { address: '127.0.0.1', port: 65535 },
  { address: '127.0.0.2', port: 80 },
  { address: '127.10.20.30', port: 443 },
  { address: '::1', port: 8080 },
  { address: '::ffff:127.0.0.3', port: 8443 },
];

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const target = fileURLToPath(new URL('../fixtures/haproxy-dynamic-cookies.json', import.meta.url));
  try {
    const rows = await collect(FIXTURE_KEYS, FIXTURE_SERVERS);
    writeFileSync(target, JSON.stringify(rows, null, 2) + '\n');
    console.log(`${await haproxyVersion()}\nwrote ${rows.length} entries to ${target}`);
  } catch (err) {
    stopAll();
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  }
}
