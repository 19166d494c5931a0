import net from 'node:net';
import { Worker } from 'node:worker_threads';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TimerWheel, type HttpCheckConfig } from '@stickmesh/core';
import { waitFor } from '../../../../test/helpers/wait.js';
import { HealthChecker, compileExpect, type CheckHandle, type CheckOptions } from './checker.js';

/** A backend on 127.0.0.1 that counts accepted connections and answers each one through `onConn`. */
interface Backend {
  port: number;
  accepts: number;
  requests: string[];
  close(): Promise<void>;
}

async function startBackend(onConn: (sock: net.Socket, b: Backend) => void = () => {}, port = 0): Promise<Backend> {
  const socks = new Set<net.Socket>();
  const srv = net.createServer((sock) => {
    b.accepts++;
    socks.add(sock);
    sock.on('close', () => socks.delete(sock));
    sock.on('error', () => {});
    onConn(sock, b);
  });
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', () => resolve());
  });
  const b: Backend = {
    port: (srv.address() as net.AddressInfo).port,
    accepts: 0,
    requests: [],
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of socks) s.destroy();
        srv.close(() => resolve());
      }),
  };
  return b;
}

/**
 * A listener whose accept queue is full: it lives in a worker thread that blocks without accepting,
 * and filler connections occupy the queue, so the kernel drops further SYNs and connects hang.
 */
async function fullListener(): Promise<{ port: number; close(): Promise<void> }> {
  const gate = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(
    `const net = require('node:net');
     const { parentPort, workerData } = require('node:worker_threads');
     const srv = net.createServer();
     srv.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
       parentPort.postMessage(srv.address().port);
       Atomics.wait(workerData, 0, 0);
       srv.close();
     });`,
    { eval: true, workerData: gate },
  );
  const port = await new Promise<number>((resolve) => worker.once('message', resolve));
  const fillers: net.Socket[] = [];
  // Open connections until one stays pending: that one proves the queue is full.
  for (let i = 0; i < 16; i++) {
    const s = net.connect({ host: '127.0.0.1', port });
    s.on('error', () => {});
    fillers.push(s);
    const connected = await new Promise<boolean>((resolve) => {
      const probe = setTimeout(() => resolve(false), 200);
      s.once('connect', () => {
        clearTimeout(probe);
        resolve(true);
      });
    });
    if (!connected) break;
  }
  return {
    port,
    close: async () => {
      for (const s of fillers) s.destroy();
      Atomics.store(gate, 0, 1);
      Atomics.notify(gate, 0);
      await worker.terminate();
    },
  };
}

/** Answers the first request chunk with `respond()` and closes, recording the request text. */
function httpBackend(respond: () => string, port = 0): Promise<Backend> {
  return startBackend((sock, b) => {
    sock.once('data', (d) => {
      b.requests.push(d.toString('latin1'));
      sock.end(respond());
    });
  }, port);
}

const status = (code: number): string => `HTTP/1.1 ${code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`;

const httpCfg = (expect?: HttpCheckConfig['expect']): HttpCheckConfig => ({ method: 'GET', uri: '/health', version: 'HTTP/1.1', host: 'example', expect });

let wheel: TimerWheel;
let checker: HealthChecker;
const backends: Backend[] = [];

beforeEach(() => {
  wheel = new TimerWheel(10, 512);
  wheel.start();
  checker = new HealthChecker(wheel);
});

afterEach(async () => {
  checker.close();
  wheel.stop();
  await Promise.all(backends.splice(0).map((b) => b.close()));
});

async function track(p: Promise<Backend>): Promise<Backend> {
  const b = await p;
  backends.push(b);
  return b;
}

interface Watched {
  handle: CheckHandle;
  changes: Array<{ up: boolean; reason: string; checks: number; failedChecks: number }>;
}

function watch(port: number, over: Partial<CheckOptions> = {}): Watched {
  const changes: Watched['changes'] = [];
  const w: Watched = { handle: undefined as unknown as CheckHandle, changes };
  w.handle = checker.add({
    name: 'be/s1',
    host: '127.0.0.1',
    port,
    inter: 50,
    fastinter: 30,
    downinter: 50,
    rise: 2,
    fall: 2,
    timeoutMs: 200,
    connectTimeoutMs: 200,
    http: undefined,
    onChange: (up, reason) => changes.push({ up, reason, checks: w.handle.checks, failedChecks: w.handle.failedChecks }),
    ...over,
  });
  return w;
}

describe('compileExpect', () => {
  it('defaults to 2xx and 3xx', () => {
    const t = compileExpect(undefined);
    expect([199, 200, 302, 399, 400, 500].map(t)).toEqual([false, true, true, true, false, false]);
  });
  it('matches codes, ranges and lists, optionally negated', () => {
    expect([200, 201].map(compileExpect({ kind: 'status', value: '200', negate: false }))).toEqual([true, false]);
    const list = compileExpect({ kind: 'status', value: '200-299,404', negate: false });
    expect([200, 250, 299, 300, 404, 405].map(list)).toEqual([true, true, true, false, true, false]);
    const neg = compileExpect({ kind: 'status', value: '200-299,404', negate: true });
    expect([200, 404, 500].map(neg)).toEqual([false, false, true]);
  });
  it('tests rstatus against the three-digit code', () => {
    const t = compileExpect({ kind: 'rstatus', value: '^(2|30)', negate: false });
    expect([204, 301, 310, 500].map(t)).toEqual([true, true, false, false]);
    // Codes under 100 are matched as written in the status line: `000`, `099`.
    const three = compileExpect({ kind: 'rstatus', value: '^...$', negate: false });
    expect([0, 99, 200].map(three)).toEqual([true, true, true]);
    expect(compileExpect({ kind: 'rstatus', value: '^0', negate: false })(99)).toBe(true);
  });
});

describe('HealthChecker TCP checks', () => {
  it('keeps a reachable server up without reporting', async () => {
    const b = await track(startBackend());
    const w = watch(b.port);
    await waitFor(() => w.handle.checks >= 4, 5000, '4 checks');
    expect(w.handle.up).toBe(true);
    expect(w.handle.lastStatus).toBe('L4OK');
    expect(w.handle.failedChecks).toBe(0);
    expect(w.changes).toEqual([]);
    expect(b.accepts).toBeGreaterThanOrEqual(4);
  });

  it('goes down after `fall` refused connects and up again after `rise` successes', async () => {
    const b = await track(startBackend());
    const port = b.port;
    const w = watch(port, { rise: 2, fall: 3 });
    await waitFor(() => w.handle.checks >= 1, 5000, 'first check');
    await b.close();
    backends.splice(backends.indexOf(b), 1);
    const okBefore = w.handle.checks - w.handle.failedChecks;

    await waitFor(() => w.changes.length === 1, 5000, 'DOWN');
    expect(w.changes[0]).toMatchObject({ up: false, failedChecks: 3 });
    expect(w.changes[0]!.reason).toMatch(/^L4CON/);
    expect(w.handle.up).toBe(false);
    expect(w.handle.lastStatus).toBe('L4CON');
    // Nothing passed in between: the server stayed up through exactly `fall` failures.
    expect(w.changes[0]!.checks - w.changes[0]!.failedChecks).toBe(okBefore);

    const again = await track(startBackend(() => {}, port));
    const okAtRestart = w.handle.checks - w.handle.failedChecks;
    await waitFor(() => w.changes.length === 2, 5000, 'UP again');
    const up = w.changes[1]!;
    expect(up).toMatchObject({ up: true, reason: 'L4OK' });
    expect(up.checks - up.failedChecks - okAtRestart).toBe(2);
    expect(w.handle.up).toBe(true);
    await waitFor(() => again.accepts >= 2, 5000, 'accepts seen by the restarted server');
  });

  it('reports L4TOUT when the connect does not complete in time', async () => {
    const full = await fullListener();
    try {
      const w = watch(full.port, { fall: 1, timeoutMs: 200, connectTimeoutMs: 60 });
      await waitFor(() => w.changes.length === 1, 5000, 'DOWN');
      expect(w.changes[0]).toMatchObject({ up: false, reason: 'L4TOUT' });
      // The connect limit, not the whole-check timeout, ends the attempt.
      expect(w.handle.lastDurationMs).toBeGreaterThanOrEqual(50);
      expect(w.handle.lastDurationMs).toBeLessThan(180);
    } finally {
      await full.close();
    }
  });

  it('remove() stops connecting', async () => {
    const b = await track(startBackend());
    const clockB = await track(startBackend());
    const w = watch(b.port);
    await waitFor(() => b.accepts >= 2, 5000, '2 accepts');
    w.handle.remove();
    const clock = watch(clockB.port);
    const acceptsAtRemove = b.accepts;
    const checksAtRemove = w.handle.checks;
    // Several intervals of the same length pass on another check before asserting nothing happened.
    await waitFor(() => clock.handle.checks >= 5, 5000, 'clock checks');
    // A connection already in flight at remove() may still reach the server; nothing after it.
    expect(b.accepts - acceptsAtRemove).toBeLessThanOrEqual(1);
    expect(w.handle.checks).toBe(checksAtRemove);
    expect(w.changes).toEqual([]);
  });
});

describe('HealthChecker HTTP checks', () => {
  it('sends the configured request and passes on 200', async () => {
    const b = await track(httpBackend(() => status(200)));
    const w = watch(b.port, { http: httpCfg() });
    await waitFor(() => w.handle.checks >= 3, 5000, '3 checks');
    expect(w.handle.lastStatus).toBe('L7OK');
    expect(w.handle.up).toBe(true);
    expect(w.changes).toEqual([]);
    expect(b.requests[0]).toBe('GET /health HTTP/1.1\r\nHost: example\r\nConnection: close\r\n\r\n');
  });

  it('omits Host when not configured', async () => {
    const b = await track(httpBackend(() => status(200)));
    watch(b.port, { http: { method: 'OPTIONS', uri: '/', version: 'HTTP/1.0' } });
    await waitFor(() => b.requests.length >= 1, 5000, 'a request');
    expect(b.requests[0]).toBe('OPTIONS / HTTP/1.0\r\nConnection: close\r\n\r\n');
  });

  it('marks a server answering 500 down after `fall` checks, and up after `rise` 200s', async () => {
    let code = 500;
    const b = await track(httpBackend(() => status(code)));
    const w = watch(b.port, { http: httpCfg() });
    await waitFor(() => w.changes.length === 1, 5000, 'DOWN');
    expect(w.changes[0]).toMatchObject({ up: false, reason: 'L7STS 500', checks: 2, failedChecks: 2 });
    expect(w.handle.lastStatus).toBe('L7STS');
    code = 200;
    await waitFor(() => w.changes.length === 2, 5000, 'UP');
    expect(w.changes[1]).toMatchObject({ up: true, reason: 'L7OK 200' });
  });

  it('expect status 500 makes 500 pass', async () => {
    const b = await track(httpBackend(() => status(500)));
    const w = watch(b.port, { http: httpCfg({ kind: 'status', value: '500', negate: false }) });
    await waitFor(() => w.handle.checks >= 3, 5000, '3 checks');
    expect(w.handle.lastStatus).toBe('L7OK');
    expect(w.changes).toEqual([]);
  });

  it('expect status with a range list', async () => {
    let code = 404;
    const b = await track(httpBackend(() => status(code)));
    const w = watch(b.port, { http: httpCfg({ kind: 'status', value: '200-299,404', negate: false }) });
    await waitFor(() => w.handle.checks >= 2, 5000, '2 checks');
    expect(w.handle.lastStatus).toBe('L7OK');
    code = 302;
    await waitFor(() => w.changes.length === 1, 5000, 'DOWN');
    expect(w.changes[0]).toMatchObject({ up: false, reason: 'L7STS 302' });
  });

  it('negated expect fails on a matching code', async () => {
    let code = 503;
    const b = await track(httpBackend(() => status(code)));
    const w = watch(b.port, { http: httpCfg({ kind: 'status', value: '200', negate: true }) });
    await waitFor(() => w.handle.checks >= 2, 5000, '2 checks');
    expect(w.handle.lastStatus).toBe('L7OK');
    code = 200;
    await waitFor(() => w.changes.length === 1, 5000, 'DOWN');
    expect(w.changes[0]).toMatchObject({ up: false, reason: 'L7STS 200' });
  });

  it('rstatus matches the code text', async () => {
    const b = await track(httpBackend(() => status(418)));
    const w = watch(b.port, { http: httpCfg({ kind: 'rstatus', value: '^4[0-9]8$', negate: false }) });
    await waitFor(() => w.handle.checks >= 2, 5000, '2 checks');
    expect(w.handle.lastStatus).toBe('L7OK');
  });

  it('a malformed status line is L7RSP', async () => {
    const b = await track(httpBackend(() => 'SSH-2.0-OpenSSH_9.6\r\n'));
    const w = watch(b.port, { http: httpCfg() });
    await waitFor(() => w.changes.length === 1, 5000, 'DOWN');
    expect(w.changes[0]!.reason).toMatch(/^L7RSP/);
    expect(w.handle.lastStatus).toBe('L7RSP');
  });

  it('a connection closed without a response is L7RSP', async () => {
    const b = await track(startBackend((sock) => sock.once('data', () => sock.end())));
    const w = watch(b.port, { http: httpCfg() });
    await waitFor(() => w.changes.length === 1, 5000, 'DOWN');
    expect(w.changes[0]!.reason).toMatch(/^L7RSP/);
  });

  it('a status line longer than 16 KiB is L7RSP', async () => {
    const b = await track(httpBackend(() => 'HTTP/1.1 200 ' + 'x'.repeat(20 * 1024)));
    const w = watch(b.port, { http: httpCfg() });
    await waitFor(() => w.changes.length === 1, 5000, 'DOWN');
    expect(w.changes[0]!.reason).toBe('L7RSP status line too long');
  });

  it('reads a status line dripped one byte per packet', async () => {
    const line = 'HTTP/1.1 200 ' + 'x'.repeat(500) + '\r\n\r\n';
    const b = await track(
      startBackend((sock) => {
        sock.once('data', () => {
          let i = 0;
          const t = setInterval(() => {
            if (i < line.length && !sock.destroyed) sock.write(line[i++]!);
            else clearInterval(t);
          }, 0);
          sock.on('close', () => clearInterval(t));
        });
      }),
    );
    const w = watch(b.port, { http: httpCfg(), timeoutMs: 20_000, inter: 60_000 });
    await waitFor(() => w.handle.checks >= 1, 20_000, 'the dripped check');
    expect(w.handle.lastReason).toBe('L7OK 200');
  });

  it('a server that accepts but never answers is L7TOUT within the check timeout', async () => {
    const b = await track(startBackend());
    const w = watch(b.port, { http: httpCfg(), timeoutMs: 80 });
    await waitFor(() => w.changes.length === 1, 5000, 'DOWN');
    expect(w.changes[0]).toMatchObject({ up: false, reason: 'L7TOUT' });
    expect(w.handle.lastDurationMs).toBeGreaterThanOrEqual(70);
    expect(w.handle.lastDurationMs).toBeLessThan(500);
  });

  it('abandons a check in flight at remove() without reporting', async () => {
    const silent = await track(startBackend());
    const clockB = await track(startBackend());
    const w = watch(silent.port, { http: httpCfg(), fall: 1, timeoutMs: 60 });
    await waitFor(() => silent.accepts >= 1, 5000, 'check in flight');
    w.handle.remove();
    const clock = watch(clockB.port);
    await waitFor(() => clock.handle.checks >= 3, 5000, 'clock checks');
    expect(w.changes).toEqual([]);
    expect(w.handle.checks).toBe(0);
    expect(w.handle.up).toBe(true);
  });
});

describe('HealthChecker.close', () => {
  it('stops every check', async () => {
    const b1 = await track(startBackend());
    const b2 = await track(startBackend());
    watch(b1.port);
    watch(b2.port);
    await waitFor(() => b1.accepts >= 1 && b2.accepts >= 1, 5000, 'both checked');
    checker.close();
    const a1 = b1.accepts;
    const a2 = b2.accepts;
    // Time passes on a second checker sharing the wheel before asserting the closed one is silent.
    const other = new HealthChecker(wheel);
    const clockB = await track(startBackend());
    other.add({
      name: 'clock', host: '127.0.0.1', port: clockB.port, inter: 50, fastinter: 0, downinter: 0, rise: 2, fall: 2,
      timeoutMs: 200, connectTimeoutMs: 0, http: undefined, onChange: () => {},
    });
    await waitFor(() => clockB.accepts >= 4, 5000, 'clock checks');
    other.close();
    expect(b1.accepts - a1).toBeLessThanOrEqual(1);
    expect(b2.accepts - a2).toBeLessThanOrEqual(1);
  });
});
