// node-http-proxy (npm `http-proxy`) as a round-robin HTTP load balancer, the usual way it is
// deployed: one http.Server, proxy.web() per request, a keep-alive agent to the upstreams (without
// an agent http-proxy opens a new upstream connection per request and sends `Connection: close`).
// Usage: node node-http-proxy-server.mjs LISTEN_PORT UPSTREAM_PORT...
import http from 'node:http';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const httpProxy = require('http-proxy');

const [listenPort, ...upstreamPorts] = process.argv.slice(2).map(Number);
const targets = upstreamPorts.map((p) => `http://127.0.0.1:${p}`);
const agent = new http.Agent({ keepAlive: true, maxSockets: 1024 });
const proxy = httpProxy.createProxyServer({ agent, xfwd: false });
let next = 0;

proxy.on('error', (err, _req, res) => {
  if (res && !res.headersSent && typeof res.writeHead === 'function') res.writeHead(502);
  res?.end?.();
});

const server = http.createServer((req, res) => {
  const target = targets[next];
  next = (next + 1) % targets.length;
  proxy.web(req, res, { target });
});
server.keepAliveTimeout = 30_000;
server.listen(listenPort, '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
