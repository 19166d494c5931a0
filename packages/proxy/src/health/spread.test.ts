import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { TimerWheel } from '@stickmesh/core';
import { HealthChecker, type CheckOptions } from './checker.js';

/** A backend that counts accepted connections (each one a started check). */
async function counter(): Promise<{ port: number; accepts: number; close(): Promise<void> }> {
  const socks = new Set<net.Socket>();
  const c = { port: 0, accepts: 0, close: () => new Promise<void>((r) => { for (const s of socks) s.destroy(); srv.close(() => r()); }) };
  const srv = net.createServer((s) => {
    c.accepts++;
    socks.add(s);
    s.on('error', () => {});
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  c.port = (srv.address() as net.AddressInfo).port;
  return c;
}

const opts = (port: number, over: Partial<CheckOptions>): CheckOptions => ({
  name: 'be/s', host: '127.0.0.1', port, inter: 60_000, fastinter: 0, downinter: 0, rise: 2, fall: 3,
  timeoutMs: 0, connectTimeoutMs: 0, http: undefined, onChange: () => {}, ...over,
});

async function startedWithinOneSecond(firstSpreadMs: number | undefined): Promise<number> {
  const b = await counter();
  const wheel = new TimerWheel(100, 1024);
  const checker = new HealthChecker(wheel);
  for (let i = 0; i < 200; i++) checker.add(opts(b.port, firstSpreadMs === undefined ? {} : { firstSpreadMs }));
  wheel.advance(wheel.now + 1000);
  // Let the started checks' connections reach the counter.
  const deadline = Date.now() + 2000;
  let seen = -1;
  while (Date.now() < deadline && seen !== b.accepts) {
    seen = b.accepts;
    await new Promise((r) => setTimeout(r, 100));
  }
  checker.close();
  await b.close();
  return b.accepts;
}

describe('first health checks of many servers', () => {
  it('all start within 1 s by default, and over firstSpreadMs when given', async () => {
    expect(await startedWithinOneSecond(undefined)).toBe(200);
    // Spread over 20 s: about 10 of 200 in the first second.
    expect(await startedWithinOneSecond(20_000)).toBeLessThan(50);
  });
});
