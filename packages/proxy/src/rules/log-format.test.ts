import type { LogFormatPart } from '@stickmesh/core';
import { describe, expect, it } from 'vitest';
import { compileLogFormat } from './log-format.js';
import { FakeCounters, FakeHttp, fakeEnv, fakeSource, stored } from './testing.js';
import { LOC, expr } from './rules-test-util.js';
import { RuleCompileError } from './types.js';

const lit = (s: string): LogFormatPart => ({ lit: s });
const smp = (s: string): LogFormatPart => ({ sample: expr(s) });
const v = (s: string): LogFormatPart => ({ var: s });

describe('compileLogFormat', () => {
  const src = fakeSource({
    clientIp: '127.0.0.1',
    clientPort: 55812,
    localIp: '127.0.0.1',
    localPort: 18302,
    frontendName: 'f',
    backendName: 'f',
    http: new FakeHttp('GET', '/p?q=1', [['Host', 'h.example'], ['X', 'a, b']]),
  });
  const env = fakeEnv();

  it('literal, samples and the %ci %cp %fi %fp %f %b variables (as HAProxy 2.6 wrote them)', () => {
    const f = compileLogFormat([lit('ci='), v('ci'), lit(' cp='), v('cp'), lit(' fi='), v('fi'), lit(' fp='), v('fp'), lit(' f='), v('f'), lit(' b='), v('b'), lit(' h='), smp('hdr(host)')], env, LOC);
    expect(f(src)).toBe('ci=127.0.0.1 cp=55812 fi=127.0.0.1 fp=18302 f=f b=f h=h.example');
  });

  it('an absent sample writes nothing (HAProxy 2.6: set-header Y a%[hdr(missing)]b sets "ab")', () => {
    expect(compileLogFormat([lit('a'), smp('hdr(missing)'), lit('b')], env, LOC)(src)).toBe('ab');
    expect(compileLogFormat([smp('hdr(missing)')], env, LOC)(src)).toBe('');
  });

  it('typed samples: integers in decimal, booleans as 1 and 0, converters applied', () => {
    const t = new FakeCounters('t', stored('http_req_rate(10s)'));
    const slot = t.track('k');
    t.add(slot.slot, 0, 3);
    const e = fakeEnv([t], 't');
    const s = { ...src, sc: [slot] };
    expect(compileLogFormat([smp('sc_http_req_rate(0)'), lit(','), smp('ssl_fc'), lit(','), smp('always_true'), lit(','), smp('hdr(host),upper')], e, LOC)(s)).toBe('3,0,1,H.EXAMPLE');
    expect(compileLogFormat([lit('https://'), smp('hdr(host)'), smp('path')], e, LOC)(s)).toBe('https://h.example/p');
  });

  it('literal-only and empty formats', () => {
    expect(compileLogFormat([lit('a'), lit('b')], env, LOC)(src)).toBe('ab');
    expect(compileLogFormat([], env, LOC)(src)).toBe('');
  });

  it('an unsupported variable or an unknown fetch is a compile error with the location', () => {
    expect(() => compileLogFormat([v('Tq')], env, LOC)).toThrow(/%Tq is not supported/);
    try {
      compileLogFormat([smp('nosuch')], env, LOC);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(RuleCompileError);
      expect((e as RuleCompileError).loc).toEqual(LOC);
    }
  });
});
