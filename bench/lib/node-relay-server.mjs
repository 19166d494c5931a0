// The floor of any Node.js TCP data plane: a bare relay written the plain way (net.createServer,
// net.connect, pipe both ways, round robin, TCP_NODELAY on both sides), with no stick table, no
// timers, no logging, no metrics and no limits. It is the `node-relay` target of the bench: what
// Node and libuv alone cost for what stickmesh's tcp mode does, so a bar that this relay misses
// against HAProxy is out of reach of the runtime, not of stickmesh's code.
// Usage: node node-relay-server.mjs LISTEN_PORT UPSTREAM_PORT...
import net from 'node:net';
import v8 from 'node:v8';

// The young-generation cap a stickmesh node runs with (packages/cli/src/young-gen.ts), so the RSS
// rows compare like with like.
v8.setFlagsFromString('--semi-space-growth-factor=1');

const [listenPort, ...upstreamPorts] = process.argv.slice(2).map(Number);
let next = 0;

function relay(client) {
  const port = upstreamPorts[next];
  next = (next + 1) % upstreamPorts.length;
  const server = net.connect({ port, host: '127.0.0.1', noDelay: true });
  const fail = () => {
    client.destroy();
    server.destroy();
  };
  client.on('error', fail);
  server.on('error', fail);
  client.pipe(server);
  server.pipe(client);
}

const listener = net.createServer({ noDelay: true }, relay);
listener.listen(listenPort, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
