import { afterEach, describe, expect, it } from 'vitest';
import type net from 'node:net';
import { TimerWheel } from '@stickmesh/core';
import { IDLE_TTL_MS, UpstreamConn, type UpstreamOwner } from './upstream.js';
import type { RuntimeServer } from '../runtime/server.js';
import { startRawBackend } from '../../../../test/helpers/backends.js';
import { waitFor } from '../../../../test/helpers/wait.js';

let cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

function owner(onConnect: () => void): UpstreamOwner {
  return {
    onUpstreamConnect: onConnect,
    onUpstreamData: () => {},
    onUpstreamDrain: () => {},
    onUpstreamClose: () => {},
  };
}

/** An upstream connection to a silent server, connected, on a private wheel. */
async function connectedUpstream(onConn: (s: net.Socket) => void = () => {}): Promise<{ server: RuntimeServer; wheel: TimerWheel; up: UpstreamConn }> {
  const backend = await startRawBackend(onConn);
  cleanups.push(() => backend.close());
  const server = { address: '127.0.0.1', port: backend.port, idle: [] as UpstreamConn[], totalConns: 0, lastConnectError: '', connectOk() {} } as unknown as RuntimeServer;
  const wheel = new TimerWheel(100, 64);
  let connected = false;
  const up = new UpstreamConn(server, owner(() => (connected = true)), wheel);
  cleanups.push(() => up.destroy());
  await waitFor(() => connected, 2000);
  return { server, wheel, up };
}

describe('upstream idle pool', () => {
  it('closes instead of parking a connection whose server discovery moved to another address while it was in use', async () => {
    const { server, up } = await connectedUpstream();
    (server as { address: string }).address = '127.0.0.2';
    up.release();
    expect(server.idle).toEqual([]);
    expect(up.socket.destroyed).toBe(true);
  });

  it(`closes a connection ${IDLE_TTL_MS} ms after it last became idle, counting from its latest release`, async () => {
    const { server, wheel, up } = await connectedUpstream();

    const t0 = wheel.now;
    up.release();
    expect(server.idle).toEqual([up]);
    wheel.advance(t0 + IDLE_TTL_MS - 1000);
    expect(up.socket.destroyed).toBe(false);

    // Reused and released again 1 s before expiry: the clock restarts from this release.
    expect(UpstreamConn.takeIdle(server, owner(() => {}))).toBe(up);
    up.release();
    wheel.advance(t0 + IDLE_TTL_MS + 500);
    expect(up.socket.destroyed).toBe(false);
    wheel.advance(t0 + 2 * IDLE_TTL_MS - 1100);
    expect(up.socket.destroyed).toBe(false);
    wheel.advance(t0 + 2 * IDLE_TTL_MS);
    expect(up.socket.destroyed).toBe(true);
    await waitFor(() => server.idle.length === 0, 2000);
  });

  it('keeps a connection that is in use when its idle deadline passes', async () => {
    const { server, wheel, up } = await connectedUpstream();
    const t0 = wheel.now;
    up.release();
    expect(UpstreamConn.takeIdle(server, owner(() => {}))).toBe(up);
    wheel.advance(t0 + 3 * IDLE_TTL_MS);
    expect(up.socket.destroyed).toBe(false);
  });

  it('drops an idle connection the server closes, including one its last owner had paused', async () => {
    let serverSide: net.Socket | undefined;
    const { server, up } = await connectedUpstream((s) => (serverSide = s));
    await waitFor(() => serverSide !== undefined, 2000);
    up.socket.pause(); // backpressure from the last exchange
    up.release();
    expect(server.idle).toEqual([up]);
    expect(up.socket.isPaused()).toBe(false);
    serverSide!.end();
    await waitFor(() => server.idle.length === 0 && up.closed, 2000);
  });
});
