/**
 * `nbthread 2` with real node processes: both threads accept HTTP and TCP, stickiness over new
 * connections (one node, and across a kill -9 failover in a 3-node cluster of 2-thread nodes),
 * a thread that dies takes the node down with one `thread N died` line, and reload and SIGTERM
 * lose no request and no log line. Which thread served a request is the `thread` field of its
 * access-log line.
 */
import { describe, expect, it } from 'vitest';
import net from 'node:net';
import { freePort, type TestBackend } from './helpers/backends.js';
import { request } from './helpers/client.js';
import { makeCluster, type Cluster, type ClusterNode } from './helpers/cluster.js';
import { waitFor } from './helpers/wait.js';
import { useScope } from './helpers/scope.js';
import tls from 'node:tls';
import { makeCert, tempDir } from './helpers/certs.js';

const scope = useScope();

function threadedCfg(bs: TestBackend[], opts: { tcpPort?: number; peers?: boolean; checks?: boolean; tls?: { port: number; pem: string } } = {}) {
  return (peersLines: string) => `
global
    nbthread 2
    admin-bind "127.0.0.1:\${ADMIN_PORT}"
${
  opts.peers
    ? `peers mesh
${peersLines}
    shared-secret "\${STICKMESH_PEERS_SECRET}"
    resync-timeout 3s
    table sessions type ip size 100k expire 30m`
    : ''
}
defaults
    mode http
    timeout connect 1s
    timeout client 10s
    timeout server 10s
frontend web
    bind "127.0.0.1:\${PROXY_PORT}"
${opts.tls ? `    bind 127.0.0.1:${opts.tls.port} ssl crt ${opts.tls.pem}` : ''}
    default_backend app
${
  opts.tcpPort
    ? `frontend raw
    mode tcp
    bind 127.0.0.1:${opts.tcpPort}
    default_backend app_tcp
backend app_tcp
    mode tcp
${bs.map((b) => `    server ${b.name} 127.0.0.1:${b.port}`).join('\n')}`
    : ''
}
backend app
    balance roundrobin
    ${opts.peers ? 'stick on src table mesh/sessions' : 'stick-table type ip size 100k expire 30m\n    stick on src'}
${bs.map((b) => `    server ${b.name} 127.0.0.1:${b.port}${opts.checks ? ' check inter 200ms fall 1 rise 1' : ''}`).join('\n')}
`;
}

async function cluster(names: string[], body: (p: string) => string): Promise<Cluster> {
  const c = await makeCluster(names, body);
  scope.defer(() => c.stopAll());
  return c;
}

/** Access-log lines of frontend `fe` a node wrote so far. */
function accessLines(n: ClusterNode, fe = 'web'): Array<Record<string, unknown>> {
  return n.logs.filter((l) => l.frontend === fe && l.client_ip !== undefined);
}

/** Runs `fn(i)` for i in 0..count-1, `width` at a time. */
async function pool<T>(count: number, width: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < count) {
        const i = next++;
        out[i] = await fn(i);
      }
    }),
  );
  return out;
}

function clientAddr(i: number): string {
  return `127.0.${1 + Math.floor(i / 250)}.${(i % 250) + 1}`;
}

/** One exchange over raw TCP through a `mode tcp` frontend: the backend's `x-served-by`. */
function tcpExchange(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
    let text = '';
    s.on('data', (d: Buffer) => (text += d.toString('latin1')));
    s.on('error', reject);
    s.on('close', () => resolve(/x-served-by: (\S+)/i.exec(text)?.[1] ?? ''));
  });
}

describe('nbthread 2', () => {
  it('serves HTTP and TCP, and both threads accept new connections', async () => {
    const bs = await scope.backends(2);
    const tcpPort = await freePort();
    const c = await cluster(['n1'], threadedCfg(bs, { tcpPort }));
    const n1 = c.nodes[0]!;
    await c.start(n1);
    const statuses = await pool(200, 8, async () => (await request(n1.proxyPort)).status);
    expect(statuses.every((s) => s === 200)).toBe(true);
    const tcp = await pool(20, 4, () => tcpExchange(tcpPort));
    expect(tcp.every((s) => s === 'web1' || s === 'web2')).toBe(true);
    await waitFor(() => accessLines(n1).length >= 200 && accessLines(n1, 'raw').length >= 20, 5000, 'every access-log line');
    const byThread = new Map<unknown, number>();
    for (const l of accessLines(n1)) byThread.set(l.thread, (byThread.get(l.thread) ?? 0) + 1);
    // Every request was served by a data-plane thread, and each of the two took a share.
    expect([...byThread.keys()].sort()).toEqual([1, 2]);
    expect(byThread.get(1)!).toBeGreaterThan(0);
    expect(byThread.get(2)!).toBeGreaterThan(0);
    expect(accessLines(n1, 'raw').every((l) => l.thread === 1 || l.thread === 2)).toBe(true);
    expect(n1.logs.find((l) => l.msg === 'stickmesh started')?.threads).toBe(2);
  });

  it('spreads a burst of keep-alive connections over both threads (a loaded thread stops accepting)', async () => {
    const bs = await scope.backends(2);
    const c = await cluster(['n1'], threadedCfg(bs));
    const n1 = c.nodes[0]!;
    await c.start(n1);
    /** stickmesh_thread_connections / _accept_pauses_total per thread from /metrics. */
    const perThread = async (name: string): Promise<number[]> => {
      const text = await (await fetch(`http://127.0.0.1:${n1.adminPort}/metrics`)).text();
      const out: number[] = [];
      for (const m of text.matchAll(new RegExp(`^${name}\\{thread="(\\d+)"\\} (\\d+)$`, 'gm'))) out[Number(m[1]) - 1] = Number(m[2]);
      return out;
    };
    expect(await (await fetch(`http://127.0.0.1:${n1.adminPort}/metrics`)).text()).toMatch(/^stickmesh_threads 2$/m);
    // 80 keep-alive connections opened one after the other and kept open, each carrying one
    // request: without balancing, the thread the kernel wakes first takes most or all of them.
    const socks: net.Socket[] = [];
    scope.defer(() => socks.forEach((s) => s.destroy()));
    for (let i = 0; i < 80; i++) {
      const s = net.connect(n1.proxyPort, '127.0.0.1');
      socks.push(s);
      await new Promise<void>((resolve, reject) => {
        s.on('error', reject);
        s.once('data', () => resolve());
        s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      });
    }
    let counts: number[] = [];
    await waitFor(async () => ((counts = await perThread('stickmesh_thread_connections')), (counts[0] ?? 0) + (counts[1] ?? 0) === 80), 5000, 'both threads to report their connections');
    // Slack: max(2, ceil(80 / 16)) = 5; a thread pauses above min + 5.
    expect(Math.abs(counts[0]! - counts[1]!)).toBeLessThanOrEqual(6);
    for (const s of socks) s.destroy();
    await waitFor(async () => ((counts = await perThread('stickmesh_thread_connections')), counts[0] === 0 && counts[1] === 0), 5000, 'the counts to fall back to 0');
  });

  it("shows a server's last connect error in the admin API, though only the threads connect", async () => {
    const bs = await scope.backends(2);
    const c = await cluster(['n1'], threadedCfg(bs));
    const n1 = c.nodes[0]!;
    await c.start(n1);
    await bs[1]!.close();
    const web2 = async (): Promise<Record<string, unknown>> => JSON.parse((await request(n1.adminPort, { path: '/api/servers/app/web2' })).body) as Record<string, unknown>;
    expect((await web2()).lastConnectError).toBeUndefined();
    // Round robin over new clients reaches web2, whose port is closed: a thread's connect fails.
    const statuses = await pool(20, 4, async (i) => (await request(n1.proxyPort, { localAddress: clientAddr(i) })).status);
    expect(statuses).toContain(503);
    await waitFor(async () => /ECONNREFUSED/.test(String((await web2()).lastConnectError)), 5000, "web2's connect error in the API");
  });

  it("follows the main thread's health checks in every thread, and /metrics counts every thread", async () => {
    const bs = await scope.backends(2);
    const c = await cluster(['n1'], threadedCfg(bs, { checks: true }));
    const n1 = c.nodes[0]!;
    await c.start(n1);
    const before = await pool(40, 8, async (i) => String((await request(n1.proxyPort, { localAddress: clientAddr(i) })).headers['x-served-by']));
    expect(new Set(before)).toEqual(new Set(['web1', 'web2']));
    await bs[1]!.close();
    // Main's check sees web2 down; both threads stop picking it (no thread runs checks of its own).
    await waitFor(() => n1.logs.some((l) => l.msg === 'server app/web2 is DOWN'), 5000, 'web2 DOWN');
    const after = await pool(100, 8, async (i) => {
      const r = await request(n1.proxyPort, { localAddress: clientAddr(i) });
      return `${r.status} ${String(r.headers['x-served-by'])}`;
    });
    expect(new Set(after)).toEqual(new Set(['200 web1']));
    await waitFor(() => accessLines(n1).length >= 140, 5000, 'every access-log line');
    expect(new Set(accessLines(n1).slice(40).map((l) => l.thread))).toEqual(new Set([1, 2]));
    // The first scrape loads the metrics library in every thread; a thread slower than the
    // scrape's deadline is left out of that one, so poll.
    const served = async (): Promise<number> => {
      const text = await (await fetch(`http://127.0.0.1:${n1.adminPort}/metrics`)).text();
      let n = 0;
      for (const m of text.matchAll(/^stickmesh_requests_total\{[^}]*\} (\d+)$/gm)) n += Number(m[1]);
      return n;
    };
    await waitFor(async () => (await served()) === 140, 10000, '/metrics to count the requests of both threads');
  });

  it('resumes a TLS session on either thread (the threads share the node ticket keys)', async () => {
    const bs = await scope.backends(1);
    const cert = makeCert(tempDir(), 'site', 'shop.test', ['shop.test']);
    const tlsPort = await freePort();
    const c = await cluster(['n1'], threadedCfg(bs, { tls: { port: tlsPort, pem: cert.pem } }));
    const n1 = c.nodes[0]!;
    await c.start(n1);
    /** One request on a new TLS connection offering `session`: whether it resumed, and the ticket it got. */
    const visit = (session?: Buffer): Promise<{ reused: boolean; ticket: Buffer | undefined }> =>
      new Promise((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port: tlsPort, servername: 'shop.test', rejectUnauthorized: false, minVersion: 'TLSv1.3', ...(session ? { session } : {}) });
        let ticket: Buffer | undefined;
        let reused = false;
        s.on('session', (b: Buffer) => (ticket = b));
        s.on('error', reject);
        s.once('secureConnect', () => {
          reused = s.isSessionReused();
          s.end('GET / HTTP/1.1\r\nhost: shop.test\r\nconnection: close\r\n\r\n');
        });
        s.resume();
        s.on('close', () => resolve({ reused, ticket }));
      });
    const first = await visit();
    expect(first.ticket).toBeDefined();
    const again = await pool(40, 4, () => visit(first.ticket));
    expect(again.filter((v) => !v.reused)).toHaveLength(0);
    await waitFor(() => accessLines(n1).length >= 41, 5000, 'every access-log line');
    expect(new Set(accessLines(n1).map((l) => l.thread))).toEqual(new Set([1, 2]));
  });

  it('keeps 300 clients x 20 new connections on their first server (stick on src, roundrobin)', async () => {
    const bs = await scope.backends(3);
    const c = await cluster(['n1'], threadedCfg(bs));
    const n1 = c.nodes[0]!;
    await c.start(n1);
    const first = new Map<number, string>();
    let moved = 0;
    let total = 0;
    for (let round = 0; round < 20; round++) {
      if (round === 1) {
        // Drain the server of client 0's first pick. A draining server keeps the clients its
        // entries name, and a new key never goes to it: so a client bound to it stays there only
        // if every thread finds its entry (rendezvous first picks alone agree across threads, so
        // without this the test could not tell one table per node from one per thread).
        const drained = first.get(0)!;
        const put = await request(n1.adminPort, { path: `/api/servers/app/${drained}`, method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ state: 'drain' }) });
        expect(put.status).toBe(200);
        let run = 0;
        let k = 0;
        await waitFor(async () => {
          const r = await request(n1.proxyPort, { localAddress: `127.0.200.${1 + (k++ % 250)}` });
          run = String(r.headers['x-served-by']) === drained ? 0 : run + 1;
          return run >= 12;
        }, 5000, 'the drain to reach both threads');
      }
      await pool(300, 16, async (i) => {
        const r = await request(n1.proxyPort, { localAddress: clientAddr(i) });
        expect(r.status).toBe(200);
        const srv = String(r.headers['x-served-by']);
        total++;
        const f = first.get(i);
        if (f === undefined) first.set(i, srv);
        else if (f !== srv) moved++;
      });
    }
    expect(total).toBe(6000);
    expect(moved).toBe(0);
    // Clients spread over the servers, and both threads served them.
    expect(new Set(first.values()).size).toBe(3);
    await waitFor(() => accessLines(n1).length >= 6000, 10000, 'every access-log line');
    const threads = new Set(accessLines(n1).map((l) => l.thread));
    expect([...threads].sort()).toEqual([1, 2]);
  }, 120_000);

  it('keeps returning clients on their server through another node after kill -9 (3 nodes x 2 threads)', async () => {
    const bs = await scope.backends(3);
    const c = await cluster(['n1', 'n2', 'n3'], threadedCfg(bs, { peers: true }));
    const [n1, n2, n3] = c.nodes as [ClusterNode, ClusterNode, ClusterNode];
    await Promise.all(c.nodes.map((n) => c.start(n)));
    await Promise.all(c.nodes.map((n) => c.waitReady(n)));
    const first = await pool(300, 16, async (i) => String((await request(n1.proxyPort, { localAddress: clientAddr(i) })).headers['x-served-by']));
    // The threads wrote the entries into the node's one shared table; its mesh sent them (sm:notify).
    for (const n of [n1, n2, n3]) await waitFor(async () => (await c.tables(n))[0]!.count === 300, 10000, `${n.name} to hold the 300 entries`);
    await c.kill(n1, 'SIGKILL');
    for (const via of [n2, n3]) {
      const again = await pool(300, 16, async (i) => String((await request(via.proxyPort, { localAddress: clientAddr(i) })).headers['x-served-by']));
      expect(again.filter((s, i) => s !== first[i]).length).toBe(0);
    }
  }, 120_000);

  it('goes down with one "thread N died" line when a data-plane thread dies', async () => {
    const bs = await scope.backends(1);
    const c = await cluster(['n1'], threadedCfg(bs));
    const n1 = c.nodes[0]!;
    // Test hook (cli/src/thread-main.ts): thread 2 throws 300 ms after the node is up.
    n1.env = { STICKMESH_THREAD_FAULT: '2:300' };
    await c.start(n1);
    const code = await new Promise<number | null>((resolve) => {
      const p = n1.proc!;
      if (p.exitCode !== null) resolve(p.exitCode);
      else p.once('exit', (c2) => resolve(c2));
    });
    expect(code).toBe(1);
    const died = n1.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('thread '));
    expect(died).toHaveLength(1);
    expect(died[0]).toMatchObject({ level: 'fatal', thread: 2 });
    expect(String(died[0]!.msg)).toMatch(/^thread 2 died: .*fault injected by STICKMESH_THREAD_FAULT/);
  });

  it('serves a bind a reload adds from every thread, and stops serving one a reload removes', async () => {
    const bs = await scope.backends(1);
    const tcpPort = await freePort();
    const c = await cluster(['n1'], threadedCfg(bs));
    const n1 = c.nodes[0]!;
    await c.start(n1);
    // The reload adds a 'mode tcp' frontend: main binds it and hands it to both threads.
    c.writeConfig(threadedCfg(bs, { tcpPort })(''));
    n1.proc!.kill('SIGHUP');
    await waitFor(() => n1.logs.some((l) => l.msg === 'reloaded'), 10000, 'reloaded');
    const got = await pool(60, 6, () => tcpExchange(tcpPort));
    expect(new Set(got)).toEqual(new Set(['web1']));
    await waitFor(() => accessLines(n1, 'raw').length >= 60, 5000, 'every access-log line');
    expect(new Set(accessLines(n1, 'raw').map((l) => l.thread))).toEqual(new Set([1, 2]));
    // And a reload without it closes it in every thread.
    c.writeConfig(threadedCfg(bs)(''));
    n1.proc!.kill('SIGHUP');
    await waitFor(() => n1.logs.filter((l) => l.msg === 'reloaded').length === 2, 10000, 'reloaded again');
    await expect(tcpExchange(tcpPort)).rejects.toThrow(/ECONNREFUSED/);
    expect((await request(n1.proxyPort)).status).toBe(200);
  });

  it('applies one rate limit across its threads: the counters are shared, so 2 threads admit what 1 thread would', async () => {
    const bs = await scope.backends(1);
    const cfg = (peersLines: string) =>
      threadedCfg(bs)(peersLines)
        .replace('    default_backend app\n', '    http-request track-sc0 src table app\n    http-request deny if { sc_http_req_rate(0) gt 3 }\n    default_backend app\n')
        .replace('stick-table type ip size 100k expire 30m', 'stick-table type ip size 100k expire 30m store http_req_rate(10s)');
    const c = await cluster(['n1'], cfg);
    const n1 = c.nodes[0]!;
    await c.start(n1);
    // New connections, one at a time: both threads take some (checked by the other tests).
    const statuses = await pool(40, 1, async () => (await request(n1.proxyPort, { localAddress: '127.0.9.9' })).status);
    // HAProxy: the request is counted when tracked, so the 4th is the first over 3. Counted per
    // thread, 2 threads would admit up to 6.
    expect(statuses.filter((x) => x === 200).length).toBe(3);
    expect(statuses.filter((x) => x === 403).length).toBe(37);
  });

  it("sends the counts its threads make to the peers: a client over the limit on one node is over it on the other", async () => {
    const bs = await scope.backends(1);
    const cfg = (peersLines: string) =>
      threadedCfg(bs, { peers: true })(peersLines)
        .replace('table sessions type ip size 100k expire 30m', 'table sessions type ip size 100k expire 30m\n    table rates type ip size 100k expire 30m store http_req_rate(10s)')
        .replace('    default_backend app\n', '    http-request track-sc0 src table mesh/rates\n    http-request deny if { sc_http_req_rate(0) gt 3 }\n    default_backend app\n');
    const c = await cluster(['n1', 'n2'], cfg);
    const [n1, n2] = c.nodes as [ClusterNode, ClusterNode];
    await Promise.all(c.nodes.map((n) => c.start(n)));
    await Promise.all(c.nodes.map((n) => c.waitReady(n)));
    const viaN1 = await pool(3, 1, async () => (await request(n1.proxyPort, { localAddress: '127.0.9.10' })).status);
    expect(viaN1).toEqual([200, 200, 200]);
    // n1's threads counted into the shared counters; main's mesh sends the dirty shares.
    // Read through n2's admin API (no request through n2 yet, so n2's own share is 0).
    await waitFor(async () => {
      const r = await request(n2.adminPort, { path: `/api/tables/${encodeURIComponent('mesh/rates')}/counters?key=127.0.9.10` });
      if (r.status !== 200) return false;
      const total = (JSON.parse(r.body.toString()) as { total: Record<string, number> }).total;
      return Object.values(total)[0] === 3;
    }, 5000, "n2 to hold n1's count of 3");
    expect((await request(n2.proxyPort, { localAddress: '127.0.9.10' })).status).toBe(403);
  }, 60_000);

  it('loses no request and no log line across reloads, then SIGTERM', async () => {
    const bs = await scope.backends(2);
    const c = await cluster(['n1'], threadedCfg(bs));
    const n1 = c.nodes[0]!;
    await c.start(n1);
    let ok = 0;
    let terminating = false;
    const failures: string[] = [];
    const load = pool(8, 8, async () => {
      while (!terminating || n1.proc!.exitCode === null) {
        try {
          const r = await request(n1.proxyPort);
          if (r.status === 200) ok++;
          else failures.push(`status ${r.status}`);
        } catch (err) {
          // Once SIGTERM closed the listeners, a new connection is refused, or reset by the kernel
          // while it waited in the closed socket's listen queue (no thread ever accepted it: the
          // same as with nbthread 1, and HAProxy without 'grace'). What the node accepted it
          // answers: the log check below counts one line per answer.
          const e = err as NodeJS.ErrnoException;
          if (terminating && (e.code === 'ECONNREFUSED' || e.code === 'ECONNRESET')) {
            if (n1.proc!.exitCode !== null || e.code === 'ECONNREFUSED') break;
            continue;
          }
          failures.push(`${terminating ? 'after SIGTERM' : 'while reloading'}: ${e.message}`);
        }
      }
    });
    for (let i = 0; i < 3; i++) {
      await waitFor(() => ok >= 100 * (i + 1), 10000, 'requests between reloads');
      n1.proc!.kill('SIGHUP');
      await waitFor(() => n1.logs.filter((l) => l.msg === 'reloaded').length === i + 1, 10000, 'reloaded');
    }
    await waitFor(() => ok >= 400, 10000, 'requests after the reloads');
    const exited = new Promise<number | null>((r) => n1.proc!.once('exit', (code) => r(code)));
    terminating = true;
    n1.proc!.kill('SIGTERM');
    expect(await exited).toBe(0);
    await load;
    expect(failures.join("; ")).toBe("");
    expect(n1.logs.filter((l) => l.msg === 'reload failed; keeping the running config')).toEqual([]);
    // One access-log line per answered request, every one from a data-plane thread.
    expect(accessLines(n1).length).toBe(ok);
    expect(accessLines(n1).every((l) => l.thread === 1 || l.thread === 2)).toBe(true);
    expect(n1.logs.at(-1)).toMatchObject({ msg: 'stopped' });
  }, 60_000);
});
