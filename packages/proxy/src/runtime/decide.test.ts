/**
 * decide() and the retry policy on a bare backend (no sockets): the order of the rules, the
 * trace, that a traced decision changes nothing, and retries / `option redispatch`.
 */
import { describe, expect, it } from 'vitest';
import { CookieState, parseConfigText } from '@stickmesh/core';
import { RuntimeBackend } from './backend.js';
import { RuntimeServer } from './server.js';
import { StickState } from './stick.js';
import { decide, type DecideStep, type RouteSource } from './decide.js';
import { afterConnectFailure } from './retry.js';

function backend(extra: string[]): RuntimeBackend {
  const lines = ['backend be', '  mode http', ...extra, '  server s1 10.0.0.1:80 cookie s1', '  server s2 10.0.0.2:80 cookie s2', '  server s3 10.0.0.3:80 cookie s3', ''];
  const cfg = parseConfigText(lines.join('\n'), 'b.cfg', 'haproxy', {}).config.backends[0]!;
  return new RuntimeBackend(cfg, cfg.servers.map((sc, i) => new RuntimeServer(i, sc, sc.host)));
}

const src = (ip: string): RouteSource => ({ clientIp: ip, localIp: '10.9.9.9', sourceHash: () => 7 });

describe('decide()', () => {
  it('cookie first: V decides; D and I fall through to the balancer; the trace records each step', () => {
    const b = backend(['  balance roundrobin', '  cookie SRV insert indirect']);
    const cs = new CookieState();
    const out = { decidedBy: '' };
    const st = new StickState();
    cs.reset(true);
    b.cookie!.examine('s2', cs, 0);
    expect(decide(b, src('1.1.1.1'), cs, st, out)?.name).toBe('s2');
    expect([out.decidedBy, cs.reqFlag]).toEqual(['cookie', 'V']);

    b.serverByName('s2')!.checkUp = false;
    b.rebuild();
    cs.reset(true);
    b.cookie!.examine('s2', cs, 0);
    const trace: DecideStep[] = [];
    // A traced decision predicts: roundrobin is not advanced, so no server is named.
    expect(decide(b, src('1.1.1.1'), cs, st, out, trace)).toBeUndefined();
    expect([out.decidedBy, cs.reqFlag]).toEqual(['balance', 'D']);
    expect(trace.map((t) => t.kind)).toEqual(['cookie', 'balance']);
    expect(trace[1]).toMatchObject({ predicted: false, candidates: [b.serverByName('s1'), b.serverByName('s3')] });
    const picks = [0, 1, 2, 3].map(() => decide(b, src('1.1.1.1'), cs, st, out)?.name);
    expect(picks).toEqual(['s1', 's3', 's1', 's3']);
  });

  it('balance source is predicted by a traced decision, and equals the routed one', () => {
    const b = backend(['  balance source']);
    const out = { decidedBy: '' };
    const trace: DecideStep[] = [];
    const predicted = decide(b, src('1.1.1.1'), undefined, new StickState(), out, trace);
    expect(predicted).toBeDefined();
    expect(trace[0]).toMatchObject({ kind: 'balance', predicted: true, server: predicted });
    expect(decide(b, src('1.1.1.1'), undefined, new StickState(), out)).toBe(predicted);
  });
});

describe('afterConnectFailure()', () => {
  const state = () => ({ retries: 0, redispatched: false, decidedBy: 'cookie' });

  it('without redispatch: the same server until the retries are spent, then nothing', () => {
    const b = backend(['  retries 2']);
    const s1 = b.serverByName('s1')!;
    const r = state();
    expect(afterConnectFailure(b, s1, src('1.1.1.1'), r)).toBe(s1);
    expect(afterConnectFailure(b, s1, src('1.1.1.1'), r)).toBe(s1);
    expect(afterConnectFailure(b, s1, src('1.1.1.1'), r)).toBeUndefined();
    expect(s1.connectFailures).toBe(3);
    expect(r).toEqual({ retries: 3, redispatched: false, decidedBy: 'cookie' });
  });

  it('with redispatch: another server on the last retry, and the cookie client is flagged D', () => {
    const b = backend(['  retries 2', '  option redispatch', '  cookie SRV insert indirect']);
    const s1 = b.serverByName('s1')!;
    const cs = new CookieState();
    cs.reset(true);
    b.cookie!.examine('s1', cs, 0);
    b.cookie!.resolve(cs, true, true);
    const r = state();
    expect(afterConnectFailure(b, s1, src('1.1.1.1'), r, cs)).toBe(s1);
    const alt = afterConnectFailure(b, s1, src('1.1.1.1'), r, cs);
    expect(alt).not.toBe(s1);
    expect(r).toEqual({ retries: 2, redispatched: true, decidedBy: 'redispatch' });
    expect([cs.direct, cs.reqFlag]).toEqual([false, 'D']);
  });

  it('with redispatch: at once when the server is no longer usable; the same one when no other is left', () => {
    const b = backend(['  retries 3', '  option redispatch']);
    const [s1, s2, s3] = ['s1', 's2', 's3'].map((n) => b.serverByName(n)!) as [RuntimeServer, RuntimeServer, RuntimeServer];
    s1.checkUp = false;
    b.rebuild();
    const r = state();
    const alt = afterConnectFailure(b, s1, src('1.1.1.1'), r);
    expect([s2, s3]).toContain(alt);
    expect(r.retries).toBe(1);
    s2.checkUp = false;
    s3.checkUp = false;
    b.rebuild();
    const r2 = state();
    expect(afterConnectFailure(b, s1, src('1.1.1.1'), r2)).toBe(s1);
    expect(r2.redispatched).toBe(false);
  });
});
