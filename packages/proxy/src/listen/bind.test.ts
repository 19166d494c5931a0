import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { BindConfig } from '@stickmesh/core';
import { freePort } from '../../../../test/helpers/backends.js';
import { waitFor } from '../../../../test/helpers/wait.js';
import { bindOn, takeOverListeners, type ListeningFrontend } from './bind.js';
import type { Listener } from './listener.js';

/** A frontend that records which connections reached it. */
class Fe implements ListeningFrontend {
  readonly listeners: Listener[] = [];
  readonly cfg: { binds: BindConfig[]; mode: 'http' | 'tcp' };
  accepted = 0;
  constructor(ports: number[]) {
    this.cfg = { binds: ports.map((port, i) => ({ host: '127.0.0.1', port, loc: { file: 'test.cfg', line: i + 1 } })), mode: 'http' };
  }
  readonly onConnection = (socket: net.Socket): void => {
    this.accepted++;
    socket.destroy();
  };
}

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

async function open(fe: Fe): Promise<void> {
  for (const b of fe.cfg.binds) fe.listeners.push(await bindOn(fe, b));
  cleanups.push(() => fe.listeners.forEach((l) => l.close()));
}

function connect(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve());
    s.on('error', reject);
    s.on('close', () => s.destroy());
  });
}

describe('takeOverListeners (reload)', () => {
  it('keeps the listener of an unchanged bind for the new frontend and opens the others', async () => {
    const [a, b] = [await freePort(), await freePort()];
    const cur = new Fe([a]);
    await open(cur);
    const next = new Fe([a, b]);
    cleanups.push(() => next.listeners.forEach((l) => l.close()));
    const kept = await takeOverListeners([cur], [next], 1);
    expect([...kept.keys()]).toEqual([cur.listeners[0]]);
    expect(kept.get(cur.listeners[0]!)).toBe(next);
    expect(next.listeners[0]).toBe(cur.listeners[0]);
    await connect(a);
    await connect(b);
    await waitFor(() => next.accepted === 2, 5000, 'both binds accepted by the new frontend');
    expect(cur.accepted).toBe(0);
  });

  it('on a bind that fails closes what it opened, gives kept listeners back and names the config line', async () => {
    const [a, b] = [await freePort(), await freePort()];
    const busy = net.createServer();
    await new Promise<void>((r) => busy.listen(b, '127.0.0.1', r));
    cleanups.push(() => busy.close());
    const c = await freePort();
    const cur = new Fe([a]);
    await open(cur);
    const next = new Fe([a, c, b]);
    const err = await takeOverListeners([cur], [next], 1).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'SM_BIND', message: expect.stringContaining('test.cfg:3: \'bind\': cannot listen on 127.0.0.1:' + b) });
    // The new listener on c was closed; the kept one on a serves the current frontend again.
    await expect(connect(c)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await connect(a);
    await waitFor(() => cur.accepted === 1, 5000, 'current frontend accepts again');
    expect(next.accepted).toBe(0);
  });
});
