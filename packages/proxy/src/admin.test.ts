import { afterEach, describe, expect, it } from 'vitest';
import { AdminError, AdminServer, isLoopback } from './admin.js';

let servers: AdminServer[] = [];
afterEach(() => {
  for (const s of servers) s.close();
  servers = [];
});

async function start(host: string, token?: string): Promise<string> {
  const s = new AdminServer({
    host,
    port: 0,
    ...(token ? { token } : {}),
    readiness: () => ({ ready: true, reason: 'ok' }),
    api: [
      { method: 'GET', path: '/api/things/:id', handler: (r) => ({ id: r.params.id }) },
      { method: 'PUT', path: '/api/things/:id', handler: (r) => { if (!r.body) throw new AdminError(400, 'empty'); return r.body; } },
    ],
  });
  servers.push(s);
  const a = await s.listen();
  return `http://127.0.0.1:${a.port}`;
}

describe('AdminServer access rules', () => {
  it('knows loopback addresses', () => {
    expect(isLoopback('127.0.0.2')).toBe(true);
    expect(isLoopback('::1')).toBe(true);
    expect(isLoopback('0.0.0.0')).toBe(false);
    expect(isLoopback('10.0.0.1')).toBe(false);
  });

  it('on loopback: reads open, writes need the configured token, params decoded, errors as JSON', async () => {
    const u = await start('127.0.0.1', 'tok');
    expect(await (await fetch(`${u}/api/things/a%2Fb`)).json()).toEqual({ id: 'a/b' });
    expect((await fetch(`${u}/api/things/x`, { method: 'PUT', body: '{"v":1}' })).status).toBe(401);
    const ok = await fetch(`${u}/api/things/x`, { method: 'PUT', body: '{"v":1}', headers: { authorization: 'Bearer tok' } });
    expect(await ok.json()).toEqual({ v: 1 });
    const bad = await fetch(`${u}/api/things/x`, { method: 'PUT', body: '', headers: { authorization: 'Bearer tok' } });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: 'empty' });
    expect((await fetch(`${u}/api/things/x`, { method: 'DELETE' })).status).toBe(405);
  });

  it('bound beyond loopback: everything but healthz/ready needs a token, and is refused without one configured', async () => {
    const open = await start('0.0.0.0');
    expect((await fetch(`${open}/healthz`)).status).toBe(200);
    expect((await fetch(`${open}/ready`)).status).toBe(200);
    const r = await fetch(`${open}/api/things/a`);
    expect(r.status).toBe(403);
    expect(((await r.json()) as { error: string }).error).toMatch(/admin-token/);
    const locked = await start('0.0.0.0', 'tok');
    expect((await fetch(`${locked}/api/things/a`)).status).toBe(401);
    expect((await fetch(`${locked}/api/things/a`, { headers: { authorization: 'Bearer tok' } })).status).toBe(200);
  });
});
