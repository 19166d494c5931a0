#!/usr/bin/env node
// Demo application for the compose and VIP deployments: the CLI's demo backend (answers with its
// name and a per-session visit counter, `/health` = ok).
// usage: node deploy/demo-backend.mjs NAME [PORT=8080] [HOST=0.0.0.0]; env NAME/PORT/HOST also work.
import { startDemoBackend } from '../packages/cli/dist/commands/demo-backend.js';

const [name = process.env.NAME, port = process.env.PORT ?? '8080', host = process.env.HOST ?? '0.0.0.0'] = process.argv.slice(2);
if (!name) {
  console.error('usage: demo-backend.mjs NAME [PORT] [HOST]');
  process.exit(2);
}
const server = await startDemoBackend(name, host, Number(port));
console.log(JSON.stringify({ msg: 'demo backend listening', name, host, port: Number(port) }));
// Docker sends SIGTERM on stop; close idle connections and exit instead of waiting for the kill.
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}
