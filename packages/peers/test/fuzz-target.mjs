/**
 * Fuzz target: one PeersService (node 'b', from the build in dist/) in its own process, so a crash
 * of the service is a dead process the fuzzer can see. Driven over IPC by test/fuzz-peers.ts:
 * it answers one request at a time ({id, cmd, ...} -> {id, ...}) and writes nothing else.
 * Peers: 'a' (the legitimate dialer) and 'a0' (the identity authenticated fuzz cases use); both
 * sort below 'b', so this node only accepts and never dials them.
 */
import { pino } from 'pino';
import { StickTable } from '@stickmesh/core';
import { PeersService } from '../dist/index.js';

const opts = JSON.parse(process.argv[2] ?? '{}');
const table = new StickTable(
  { id: 't1', name: 't1', type: 'string', keyLen: 32, size: 10_000, expire: 0, store: [], srvkey: 'name', loc: { file: 'fuzz', line: 1 } },
  { node: 'b' },
);
const svc = new PeersService({
  node: 'b',
  cluster: 'fuzz',
  bind: { host: '127.0.0.1', port: 0 },
  peers: [
    { name: 'a', host: '127.0.0.1', port: 1 },
    { name: 'a0', host: '127.0.0.1', port: 1 },
  ],
  tables: [table],
  logger: pino({ level: 'silent' }),
  heartbeatMs: 200,
  deadAfterMs: 3000,
  antiEntropyMs: 200,
  ...opts,
});

function heap() {
  for (let i = 0; i < 3; i++) globalThis.gc?.();
  return process.memoryUsage().heapUsed;
}

process.on('message', (m) => {
  let r;
  switch (m.cmd) {
    case 'digest': r = { digest: table.digest(), count: table.count }; break;
    case 'set': table.setLocal(m.key, m.server); svc.notify(); r = {}; break;
    case 'get': r = { server: table.lookup(m.key) ?? null }; break;
    // `conns` is the service's set of open connections (private in TS, readable here): its size shows leaks.
    case 'state': r = { heap: heap(), conns: svc.conns.size, raw: svc.rawConnections, refusals: svc.refusals, peers: svc.status(), rss: process.memoryUsage().rss }; break;
    default: r = { error: `unknown command ${m.cmd}` };
  }
  process.send({ id: m.id, ...r });
});

await svc.start();
process.send({ id: 0, port: svc.address.port });
