// Upstreams and the load balancers under test: how each is configured, started and stopped.
// Every process writes its logs under the run's temporary directory; proxies run on core 0 and
// the upstreams on core 1 (beside wrk) when pinning is on, so the proxy under test has a core of
// its own and the `direct` row shows the ceiling of the load-generating core.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, pinned, spawnLogged, stop, tail, waitHttp200, which } from './proc.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '..', '..');
const stickmeshBin = path.join(repoRoot, 'packages/cli/bin/stickmesh.js');

/** The 100-byte body every upstream serves at every path (so both `/` and `/health`). */
export const BODY = 'stickmesh bench upstream '.padEnd(99, '.') + '\n';

const TIMEOUTS = ['timeout connect 5s', 'timeout client 30s', 'timeout server 30s'];

/**
 * The rules of the `*-http-rules` targets: every request tracked by source address in a table
 * storing `http_req_rate(10s)`, then denied if that rate passes a limit no run reaches, or if its
 * path matches a named ACL wrk never requests. So the request path pays for tracking, one counter
 * read, one ACL over the path and two conditions, and every response is still a 200. wrk sends
 * from one address: the key is one hot entry.
 */
export const RULES_FRONTEND = [
  '    acl private path_beg /private',
  '    http-request track-sc0 src table be',
  '    http-request deny deny_status 429 if { sc_http_req_rate(0) gt 1000000000 }',
  '    http-request deny if private',
];
export const RULES_TABLE = '    stick-table type ip size 1m expire 30s store http_req_rate(10s)';

/**
 * The defaults/frontend/backend part shared by haproxy and stickmesh for one mode: `http` is
 * round robin with inserted cookie persistence, `tcp` is round robin with source-address stick
 * table; `rules` adds RULES_FRONTEND and the backend's counting table (http). Returned as lines so
 * each caller prepends its own `global` section. With `crt` (a PEM with certificate and key) the
 * frontend terminates TLS 1.3 with it, offering http/1.1.
 */
export function proxySections(mode, port, upstreamPorts, { rules = false, crt } = {}) {
  const servers = upstreamPorts.map((p, i) => `    server s${i + 1} 127.0.0.1:${p}${mode === 'http' ? ` cookie s${i + 1}` : ''}`);
  const lines = ['defaults', `    mode ${mode}`, '    maxconn 10000', ...TIMEOUTS.map((t) => `    ${t}`)];
  if (mode === 'http') lines.push('    timeout http-keep-alive 30s', '    option http-keep-alive');
  const tls = crt ? ` ssl crt ${crt} alpn http/1.1 ssl-min-ver TLSv1.3` : '';
  lines.push('', 'frontend fe', `    bind 127.0.0.1:${port}${tls}`, ...(rules ? RULES_FRONTEND : []), '    default_backend be', '', 'backend be', '    balance roundrobin');
  if (mode === 'http') lines.push('    cookie SERVERID insert indirect nocache', ...(rules ? [RULES_TABLE] : []));
  else lines.push('    stick-table type ip size 1m', '    stick on src');
  lines.push(...servers, '');
  return lines;
}

/**
 * Waits for `port` to answer 200 and returns a handle {port, pid, child, stop()}; if it never
 * does, stops the child and throws with the tail of its stderr.
 */
async function ready(name, child, errPath, port, tls = false) {
  try {
    await waitHttp200(port, { child, tls });
  } catch (e) {
    await stop(child, { signal: 'SIGKILL' });
    const log = tail(errPath).trim();
    throw new Error(`${name}: ${e.message}${log ? `\n${log}` : ''}`);
  }
  return { port, pid: child.pid, child, errPath, stop: (opts) => stop(child, opts) };
}

/**
 * Starts one upstream on `port` pinned to core 1: nginx with a generated config when `nginx` is
 * set, otherwise the raw net responder. Resolves once it answers GET /health.
 */
export async function startUpstream({ nginx, plan, tmp, index, port }) {
  const name = `upstream${index}`;
  if (!nginx) {
    const argv = pinned(plan, 1, [process.execPath, path.join(here, 'raw-upstream.mjs'), String(port)]);
    const { child, errPath } = spawnLogged(argv, { name, logDir: tmp });
    return ready(name, child, errPath, port);
  }
  const dir = path.join(tmp, name);
  fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true });
  const conf = `daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 100000;
    keepalive_timeout 65s;
    client_body_temp_path ${dir}/tmp/body;
    proxy_temp_path ${dir}/tmp/proxy;
    fastcgi_temp_path ${dir}/tmp/fastcgi;
    uwsgi_temp_path ${dir}/tmp/uwsgi;
    scgi_temp_path ${dir}/tmp/scgi;
    server {
        listen 127.0.0.1:${port};
        location / {
            default_type text/plain;
            return 200 "${BODY.replace(/\n/g, '\\n')}";
        }
    }
}
`;
  fs.writeFileSync(path.join(dir, 'nginx.conf'), conf);
  const argv = pinned(plan, 1, [nginx, '-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'error.log')]);
  const { child, errPath } = spawnLogged(argv, { name, logDir: tmp });
  return ready(name, child, errPath, port);
}

function hasHttpProxy() {
  try {
    createRequire(import.meta.url).resolve('http-proxy');
    return true;
  } catch {
    return false;
  }
}

/**
 * A target run by a Node script of bench/lib (`node SCRIPT ...ARGS LISTEN_PORT UPSTREAM_PORT...`,
 * pinned to core 0 like the proxies): node-http-proxy, the bare relay and the Node floor. Its
 * anchor is `haproxy-<mode>`.
 */
function nodeScriptTarget(name, mode, script, skip = null, args = []) {
  return {
    name,
    mode,
    skip,
    async start({ plan, tmp, upstreams, profileDir }) {
      const port = await freePort();
      const nodeArgs = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
      const argv = pinned(plan, 0, [process.execPath, ...nodeArgs, path.join(here, script), ...args, String(port), ...upstreams.map((u) => String(u.port))]);
      const { child, errPath } = spawnLogged(argv, { name, logDir: tmp, cwd: repoRoot });
      return ready(name, child, errPath, port);
    },
  };
}

/**
 * The target makers: `haproxyTarget(name, mode, opts)` and `stickmeshTarget(name, mode, opts)`,
 * opts {tls, rules, log (stickmesh), nbthread (default 1, written into `global`), anchor}.
 */
function factories() {
  const haproxy = which('haproxy');
  const noHaproxy = haproxy ? null : 'haproxy not installed (apt-get install -y haproxy)';

  const noOpenssl = which('openssl') ? null : 'openssl not installed (it makes the benchmark certificate)';

  // `tls` targets: mode http behind a TLS 1.3 listener with the run's ECDSA P-256 certificate
  // (env.tlsCert); their `mode` is `https`, so they are compared with haproxy-https. `rules`
  // targets compare with haproxy-http-rules (their `anchor`).
  const haproxyTarget = (name, mode, { tls = false, rules = false, nbthread = 1, anchor } = {}) => ({
    name,
    mode: tls ? 'https' : mode,
    anchor: anchor ?? (rules ? 'haproxy-http-rules' : `haproxy-${tls ? 'https' : mode}`),
    tls,
    nbthread,
    skip: noHaproxy ?? (tls ? noOpenssl : null),
    async start({ plan, tmp, upstreams, tlsCert }) {
      const port = await freePort();
      const cfg = path.join(tmp, `${name}.cfg`);
      const lines = ['global', `    nbthread ${nbthread}`, '', ...proxySections(mode, port, upstreams.map((u) => u.port), { rules, crt: tls ? tlsCert : undefined })];
      fs.writeFileSync(cfg, lines.join('\n'));
      // -db: foreground, no daemon; -W is not used so the pid is the single worker process.
      const { child, errPath } = spawnLogged(pinned(plan, 0, [haproxy, '-db', '-f', cfg]), { name, logDir: tmp });
      return ready(name, child, errPath, port, tls);
    },
  });

  const stickmeshTarget = (name, mode, { log = false, tls = false, rules = false, nbthread = 1, anchor } = {}) => ({
    name,
    mode: tls ? 'https' : mode,
    anchor: anchor ?? (rules ? 'haproxy-http-rules' : `haproxy-${tls ? 'https' : mode}`),
    tls,
    nbthread,
    skip: fs.existsSync(path.join(repoRoot, 'packages/cli/dist/main.js')) ? (tls ? noOpenssl : null) : 'packages/cli/dist missing (build failed)',
    async start({ plan, tmp, upstreams, profileDir, tlsCert }) {
      const [port, admin] = [await freePort(), await freePort()];
      const cfg = path.join(tmp, `${name}.cfg`);
      // `nbthread` always written, so these targets keep their thread count if the default changes.
      const global = ['global', `    nbthread ${nbthread}`, `    admin-bind 127.0.0.1:${admin}`, `    log-level ${log ? 'info' : 'warn'}`, ''];
      fs.writeFileSync(cfg, [...global, ...proxySections(mode, port, upstreams.map((u) => u.port), { rules, crt: tls ? tlsCert : undefined })].join('\n'));
      const nodeArgs = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
      const argv = pinned(plan, 0, [process.execPath, ...nodeArgs, stickmeshBin, 'start', '--config', cfg, '--node', 'bench']);
      // With info logging every request is a JSON line on stdout. It goes into a pipe read by
      // `cat` on core 1 (as a log collector such as journald or a container runtime reads it),
      // so the row measures producing and writing the log, not a disk.
      const reader = log ? spawnLogged(pinned(plan, 1, ['cat']), { name: `${name}-log-reader`, logDir: tmp, stdin: 'pipe', stdoutNull: true }) : null;
      const { child, errPath } = spawnLogged(argv, { name, logDir: tmp, cwd: repoRoot, stdout: reader?.child.stdin });
      const h = await ready(name, child, errPath, port, tls);
      if (!reader) return { ...h, adminPort: admin };
      return {
        ...h,
        adminPort: admin,
        stop: async (opts) => {
          const r = await h.stop(opts);
          await stop(reader.child, { signal: 'SIGKILL' });
          return r;
        },
      };
    },
  });
  return { haproxyTarget, stickmeshTarget };
}

/**
 * The targets of the threads section (issue #23, bench/threads.mjs): mode http with cookie
 * persistence as stickmesh-http/haproxy-http, at `nbthread 1` and `nbthread N`, in the order the
 * paired ratios want (each 2-thread target beside its HAProxy peer, each 1-thread one beside its
 * own 2-thread one once the order reverses). The N-thread stickmesh target's anchor is HAProxy at N.
 */
export function threadTargets(n = 2) {
  const { haproxyTarget, stickmeshTarget } = factories();
  return [
    stickmeshTarget('stickmesh-http-1t', 'http', { nbthread: 1, anchor: 'haproxy-http-1t' }),
    haproxyTarget('haproxy-http-1t', 'http', { nbthread: 1, anchor: 'haproxy-http-1t' }),
    haproxyTarget(`haproxy-http-${n}t`, 'http', { nbthread: n, anchor: `haproxy-http-${n}t` }),
    stickmeshTarget(`stickmesh-http-${n}t`, 'http', { nbthread: n, anchor: `haproxy-http-${n}t` }),
  ];
}

/**
 * The targets in table (and run) order. Each has `name`, `mode` (`direct`, `http` or `tcp`),
 * `anchor` (the HAProxy target its `vs HAProxy` column divides by: `haproxy-<mode>`, or
 * `haproxy-http-rules` for the rules pair), `skip` (null, or why it cannot run here) and
 * `start(env)` resolving to a running, answering handle (stickmesh handles also carry `adminPort`).
 * env: {plan, tmp, upstreams: [handle], profileDir?}.
 */
export function targets() {
  const { haproxyTarget, stickmeshTarget } = factories();

  // Each stickmesh target runs next to its HAProxy anchor (the rules pair comes first, so
  // stickmesh-http-rules also runs next to stickmesh-http; node-http-proxy follows haproxy-http,
  // one run after stickmesh-http), so the pairs the ratios compare are measured seconds apart.
  return [
    {
      name: 'direct',
      mode: 'direct',
      skip: null,
      // The first upstream itself: no process of its own to start or stop.
      async start({ upstreams }) {
        const u = upstreams[0];
        return { port: u.port, pid: u.pid, child: u.child, errPath: u.errPath, shared: true, stop: async () => {} };
      },
    },
    haproxyTarget('haproxy-http-rules', 'http', { rules: true }),
    stickmeshTarget('stickmesh-http-rules', 'http', { rules: true }),
    stickmeshTarget('stickmesh-http', 'http'),
    haproxyTarget('haproxy-http', 'http'),
    nodeScriptTarget('node-http-proxy', 'http', 'node-http-proxy-server.mjs', hasHttpProxy() ? null : 'npm package http-proxy not installed (npm install -D http-proxy)'),
    stickmeshTarget('stickmesh-http-log', 'http', { log: true }),
    haproxyTarget('haproxy-tcp', 'tcp'),
    stickmeshTarget('stickmesh-tcp', 'tcp'),
    // A bare net.Socket relay: what Node alone costs for the tcp mode's work, beside HAProxy, so the
    // table shows which gap is the runtime's.
    nodeScriptTarget('node-relay', 'tcp', 'node-relay-server.mjs'),
    // The least a Node data plane costs with stickmesh's own socket tricks and none of its work
    // (bench/lib/node-floor-server.mjs): the distance to it is stickmesh's JavaScript.
    nodeScriptTarget('node-floor-http', 'http', 'node-floor-server.mjs', null, ['http']),
    nodeScriptTarget('node-floor-tcp', 'tcp', 'node-floor-server.mjs', null, ['tcp']),
    haproxyTarget('haproxy-https', 'http', { tls: true }),
    stickmeshTarget('stickmesh-https', 'http', { tls: true }),
  ];
}
