/**
 * One retry/redispatch policy (runtime/retry.ts) for HTTP and TCP: a client bound to a server
 * that refuses connections (by cookie in HTTP, by stick entry in TCP) is retried `retries` times
 * and moved to another server on the last retry with `option redispatch`, and both logs say so.
 */
import { describe, expect, it } from 'vitest';
import { freePort, startBackend, type TestBackend } from './helpers/backends.js';
import { request } from './helpers/client.js';
import { startProxy, type RunningProxy } from './helpers/proxy.js';
import { waitFor } from './helpers/wait.js';
import { useScope } from './helpers/scope.js';

const scope = useScope();

const CFG = `
defaults
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    retries 2
    option redispatch
frontend fh
    mode http
    bind 127.0.0.1:{{port}}
    default_backend bh
backend bh
    mode http
    balance roundrobin
    cookie SRV insert indirect
    server dead 127.0.0.1:{{dead}} cookie dead
    server live 127.0.0.1:{{live}} cookie live
frontend ft
    mode tcp
    bind 127.0.0.1:{{tport}}
    default_backend bt
backend bt
    mode tcp
    balance roundrobin
    stick-table type ip size 1k expire 10m
    stick on src
    server dead 127.0.0.1:{{dead}}
    server live 127.0.0.1:{{live}}
`;

describe('retry and redispatch, HTTP and TCP alike', () => {
  it('retries the bound server, then redispatches on the last retry; the log counts retries and says redispatch', async () => {
    const live: TestBackend = await startBackend('live');
    scope.defer(() => live.close());
    const tport = await freePort();
    const p: RunningProxy = await startProxy(CFG, { dead: await freePort(), live: live.port, tport });
    scope.defer(() => p.close());

    const h = await request(p.port, { localAddress: '127.42.0.1', headers: { cookie: 'SRV=dead' } });
    expect(h.status).toBe(200);
    expect(h.headers['x-served-by']).toBe('live');
    const hl = await waitFor(() => p.logs.find((l) => l.msg === 'request' && l.client_ip === '127.42.0.1'), 5000, 'http log');
    expect({ server: hl.server, retries: hl.retries, redispatched: hl.redispatched, decided_by: hl.decided_by, flag: String(hl.termination_state)[2] }).toEqual({
      server: 'live',
      retries: 2,
      redispatched: true,
      decided_by: 'redispatch',
      flag: 'D',
    });
    expect(p.proxy.backends.get('bh')!.serverByName('dead')!.connectFailures).toBe(2);

    p.proxy.tables.get('bt')!.setLocal('127.42.0.2', 'dead');
    const t = await request(tport, { localAddress: '127.42.0.2', headers: { connection: 'close' } });
    expect(t.status).toBe(200);
    expect(t.headers['x-served-by']).toBe('live');
    const tl = await waitFor(() => p.logs.find((l) => l.msg === 'connection' && l.client_ip === '127.42.0.2'), 5000, 'tcp log');
    expect({ server: tl.server, retries: tl.retries, decided_by: tl.decided_by }).toEqual({ server: 'live', retries: 2, decided_by: 'redispatch' });
    expect(p.proxy.backends.get('bt')!.serverByName('dead')!.connectFailures).toBe(2);
    // The table now records the server actually used.
    await waitFor(() => p.proxy.tables.get('bt')!.lookup('127.42.0.2') === 'live', 5000, 'stick store');
  });
});
