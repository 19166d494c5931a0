import { CONVERTERS, FETCHES, findFetch } from '@stickmesh/core';
import { describe, expect, it } from 'vitest';
import { compileExpr, compileSample, FETCH_IMPLS, hasRuntimeFetch } from './sample.js';
import { FakeCounters, FakeHttp, FakeResponse, fakeEnv, fakeSource, stored } from './testing.js';
import { LOC, expr } from './rules-test-util.js';
import { RuleCompileError, type CompileEnv, type SampleSource } from './types.js';

const env0 = fakeEnv();
const get = (text: string, src: SampleSource, env: CompileEnv = env0) => compileSample(expr(text), env, LOC)(src);
/** Every value the ACL form visits. */
const all = (text: string, src: SampleSource, env: CompileEnv = env0) => {
  const seen: unknown[] = [];
  compileExpr(expr(text), env, LOC).any((v) => {
    seen.push(v);
    return false;
  })(src);
  return seen;
};

// The request HAProxy 2.6 answered in our comparison run (see the commit message of the rules work):
// GET /t/x?a=1&b=2;a=3&a=4 with `X: a, b`, `X: c`, an empty `e`, two Cookie lines.
const req = new FakeHttp('GET', '/t/x?a=1&b=2;a=3&a=4', [
  ['Host', '127.0.0.1:18301'],
  ['X', 'a, b'],
  ['X', 'c'],
  ['e', ''],
  ['Cookie', 'c=1; d=2'],
  ['Cookie', 'c=3'],
]);
const src = fakeSource({ http: req, clientIp: '127.0.0.1', clientPort: 55812, localIp: '127.0.0.1', localPort: 18301 });

describe('catalog', () => {
  it('every catalog fetch has a run-time implementation and every implementation is in the catalog', () => {
    for (const spec of FETCHES) expect(hasRuntimeFetch(spec), spec.name).toBe(true);
    for (const name of FETCH_IMPLS.keys()) expect(findFetch(name)?.name, name).toBe(name);
  });

  it('every catalog fetch compiles with arguments of its kinds, and every converter compiles', () => {
    const t = new FakeCounters('t', stored('gpc(3),gpc_rate(3,10s),gpt(3),conn_cnt,conn_cur,conn_rate(10s),sess_cnt,sess_rate(10s),http_req_cnt,http_req_rate(10s),http_err_cnt,http_err_rate(10s),http_fail_cnt,http_fail_rate(10s),bytes_in_rate(1s),bytes_out_rate(1s)'));
    const env = fakeEnv([t], 't');
    const sample = { int: '-1', str: 'x', sc: '0', idx: '1', table: 't' } as const;
    for (const spec of FETCHES) {
      const args = spec.args.map((k) => sample[k]);
      const e = { fetch: spec.name, args, converters: [], text: spec.name };
      expect(() => compileExpr(e, env, LOC), spec.name).not.toThrow();
      for (const a of spec.aliases) expect(() => compileExpr({ ...e, fetch: a }, env, LOC), a).not.toThrow();
    }
    for (const c of CONVERTERS.values()) {
      const args = c.args.map((k) => (k === 'mask' ? '24' : '64'));
      expect(() => compileExpr({ fetch: 'src', args: [], converters: [{ name: c.name, args }], text: c.name }, env, LOC), c.name).not.toThrow();
    }
  });

  it('refuses an unknown fetch, an unknown converter and wrong argument counts with the config location', () => {
    const check = (text: string, re: RegExp) => {
      try {
        compileSample(expr(text), env0, LOC);
        expect.unreachable(text);
      } catch (e) {
        expect(e).toBeInstanceOf(RuleCompileError);
        expect((e as RuleCompileError).loc).toEqual(LOC);
        expect((e as Error).message).toMatch(re);
        expect((e as RuleCompileError).code).toBe('SM_RULE_COMPILE');
      }
    };
    check('nosuch', /unknown sample fetch "nosuch"/);
    check('src,nosuch', /unknown converter "nosuch"/);
    check('int', /needs 1 argument/);
    check('src(1)', /at most 0 argument/);
    check('int(abc)', /must be an integer/);
    check('hdr(x,0)', /occurrence 0/);
    check('url_param(a,;;)', /one character/);
    check('src,ipmask(33)', /invalid IPv4 mask/);
    check('src,ipmask(24,129)', /invalid IPv6 mask/);
    check('src_http_req_rate', /needs a table/);
    check('sc_http_req_rate(0,nosuch)', /no stick table "nosuch"/);
    check('sc_http_req_rate(3)', /out of 0..2/);
    check('sc_get_gpc(100,0)', /out of 0..99/);
  });
});

describe('layer 4 and constants', () => {
  it('src, src_port, dst, dst_port, ssl_fc, ssl_fc_sni, always_*, int, str', () => {
    expect(get('src', src)).toBe('127.0.0.1');
    expect(get('src_port', src)).toBe(55812);
    expect(get('dst', src)).toBe('127.0.0.1');
    expect(get('dst_port', src)).toBe(18301);
    expect(get('ssl_fc', src)).toBe(false);
    expect(get('ssl_fc_sni', src)).toBeUndefined();
    expect(get('ssl_fc', fakeSource({ ssl: true, sni: 'a.example' }))).toBe(true);
    expect(get('ssl_fc_sni', fakeSource({ ssl: true, sni: 'a.example' }))).toBe('a.example');
    expect(get('ssl_fc_sni', fakeSource({ ssl: true }))).toBeUndefined();
    expect(get('always_true', src)).toBe(true);
    expect(get('always_false', src)).toBe(false);
    expect(get('int(-42)', src)).toBe(-42);
    expect(get('str(hello)', src)).toBe('hello');
    expect(get('req.len', src)).toBe(0);
    expect(get('req.len', fakeSource({ reqBytes: 120 }))).toBe(120);
    expect(get('wait_end', src)).toBe(true);
  });
});

describe('HTTP request fetches (values as HAProxy 2.6 gave them for the same request)', () => {
  it('path, url, query, base, method, req.ver, req.proto_http', () => {
    expect(get('path', src)).toBe('/t/x');
    expect(get('url', src)).toBe('/t/x?a=1&b=2;a=3&a=4');
    expect(get('query', src)).toBe('a=1&b=2;a=3&a=4');
    expect(get('base', src)).toBe('127.0.0.1:18301/t/x');
    expect(get('method', src)).toBe('GET');
    expect(get('req.ver', src)).toBe('1.1');
    expect(get('req.ver', fakeSource({ http: new FakeHttp('GET', '/', [], 0) }))).toBe('1.0');
    expect(get('req.proto_http', src)).toBe(true);
    expect(get('req.proto_http', fakeSource())).toBe(false);
  });

  it('path of absolute-form and special targets; query presence; base without Host', () => {
    const at = (t: string, f: string, h: [string, string][] = []) => get(f, fakeSource({ http: new FakeHttp('GET', t, h) }));
    expect(at('http://example.com/a/b?x=1', 'path')).toBe('/a/b');
    expect(at('http://example.com', 'path')).toBeUndefined();
    expect(at('*', 'path')).toBeUndefined();
    expect(at('/p', 'query')).toBeUndefined();
    expect(at('/p?', 'query')).toBe('');
    expect(at('/p?x', 'base')).toBe('/p');
    expect(at('/p?x', 'base', [['host', 'h.example']])).toBe('h.example/p');
  });

  it('every HTTP fetch is absent outside HTTP', () => {
    const tcp = fakeSource();
    for (const f of ['path', 'url', 'query', 'base', 'method', 'req.ver', 'hdr(x)', 'req.fhdr(x)', 'hdr_cnt(x)', 'req.cook(c)', 'req.cook_cnt', 'url_param(a)', 'req.hdr_ip(x)', 'req.hdr_val(x)', 'status', 'res.hdr(x)', 'res.hdr_cnt']) {
      expect(get(f, tcp), f).toBeUndefined();
    }
  });

  it('hdr: last comma-separated value by default; occurrences from the first (1) or the last (-1)', () => {
    expect(get('hdr(x)', src)).toBe('c');
    expect(get('req.hdr(x)', src)).toBe('c');
    expect(get('hdr(X)', src)).toBe('c');
    expect(get('hdr(x,1)', src)).toBe('a');
    expect(get('hdr(x,2)', src)).toBe('b');
    expect(get('hdr(x,-1)', src)).toBe('c');
    expect(get('hdr(x,-3)', src)).toBe('a');
    expect(get('hdr(x,4)', src)).toBeUndefined();
    expect(get('hdr(x,-4)', src)).toBeUndefined();
    expect(get('hdr(missing)', src)).toBeUndefined();
    expect(get('hdr(e)', src)).toBe('');
    expect(get('req.fhdr(x)', src)).toBe('c');
    expect(get('req.fhdr(x,1)', src)).toBe('a, b');
    expect(get('hdr_cnt(x)', src)).toBe(3);
    expect(get('req.hdr_cnt(missing)', src)).toBe(0);
  });

  it('hdr: quoted commas do not split; spaces and tabs around values are trimmed', () => {
    const s = fakeSource({ http: new FakeHttp('GET', '/', [['A', ' "x, y" ,\tz\t']]) });
    expect(get('hdr(a,1)', s)).toBe('"x, y"');
    expect(get('hdr(a)', s)).toBe('z');
    expect(get('hdr_cnt(a)', s)).toBe(2);
  });

  it('hdr in an ACL visits every value of every occurrence, or only the one named', () => {
    expect(all('hdr(x)', src)).toEqual(['a', 'b', 'c']);
    expect(all('req.fhdr(x)', src)).toEqual(['a, b', 'c']);
    expect(all('hdr(x,2)', src)).toEqual(['b']);
    expect(all('hdr(missing)', src)).toEqual([]);
    expect(all('hdr(x),upper', src)).toEqual(['A', 'B', 'C']);
    expect(all('hdr', fakeSource({ http: new FakeHttp('GET', '/', [['a', '1'], ['b', '2,3']]) }))).toEqual(['1', '2', '3']);
  });

  it('req.hdr_ip and req.hdr_val', () => {
    const s = fakeSource({
      http: new FakeHttp('GET', '/', [
        ['X-Forwarded-For', '10.0.0.1, 192.168.1.2:8080'],
        ['X-Real', '[2001:DB8::1]:443'],
        ['Bad', 'nope'],
        ['Content-Length', '42'],
        ['N', '12abc'],
      ]),
    });
    expect(get('req.hdr_ip(x-forwarded-for)', s)).toBe('192.168.1.2');
    expect(get('req.hdr_ip(x-forwarded-for,1)', s)).toBe('10.0.0.1');
    expect(get('req.hdr_ip(x-real)', s)).toBe('2001:db8::1');
    expect(get('req.hdr_ip(bad)', s)).toBeUndefined();
    expect(all('req.hdr_ip(x-forwarded-for)', s)).toEqual(['10.0.0.1', '192.168.1.2']);
    expect(get('req.hdr_val(content-length)', s)).toBe(42);
    expect(get('req.hdr_val(n)', s)).toBe(12);
    expect(all('req.hdr_val(content-length)', s)).toEqual([42]);
  });

  it('req.cook: last occurrence of a name, first cookie without a name, every match in an ACL; counts', () => {
    expect(get('req.cook(c)', src)).toBe('3');
    expect(get('cook(c)', src)).toBe('3');
    expect(get('req.cook', src)).toBe('1');
    expect(get('req.cook(d)', src)).toBe('2');
    expect(get('req.cook(zz)', src)).toBeUndefined();
    expect(all('req.cook(c)', src)).toEqual(['1', '3']);
    expect(all('req.cook', src)).toEqual(['1', '2', '3']);
    expect(get('req.cook_cnt(c)', src)).toBe(2);
    expect(get('req.cook_cnt', src)).toBe(3);
    expect(get('cook_cnt(zz)', src)).toBe(0);
    const s = fakeSource({ http: new FakeHttp('GET', '/', [['cookie', ' sid = abc ;empty=; noeq ; C=upper']]) });
    expect(get('req.cook(sid)', s)).toBe('abc');
    expect(get('req.cook(empty)', s)).toBe('');
    expect(get('req.cook(noeq)', s)).toBeUndefined();
    expect(get('req.cook(c)', s)).toBeUndefined();
    expect(get('req.cook(C)', s)).toBe('upper');
  });

  it('url_param: first occurrence after ?, or after the delimiter; & ; and the delimiter separate', () => {
    expect(get('url_param(a)', src)).toBe('1');
    expect(get('urlp(b)', src)).toBe('2');
    expect(get('url_param(a,;)', src)).toBe('3');
    expect(get('url_param', src)).toBe('1');
    expect(get('url_param(zz)', src)).toBeUndefined();
    expect(all('url_param(a)', src)).toEqual(['1', '3', '4']);
    const at = (t: string, f: string) => get(f, fakeSource({ http: new FakeHttp('GET', t) }));
    expect(at('/foo;JSESSIONID=some_id', 'url_param(JSESSIONID,;)')).toBe('some_id');
    expect(at('/foo?PHPSESSIONID=some_id', 'url_param(PHPSESSIONID)')).toBe('some_id');
    expect(at('/foo?ab=1&a=2', 'url_param(a)')).toBe('2');
    expect(at('/foo?a&a=', 'url_param(a)')).toBe('');
    expect(at('/foo', 'url_param(a)')).toBeUndefined();
  });
});

describe('HTTP response fetches', () => {
  it('status, res.hdr, res.hdr_cnt', () => {
    const s = fakeSource({ http: req, res: new FakeResponse(503, [['Cache-Control', 'no-cache, private'], ['X', '1']]) });
    expect(get('status', s)).toBe(503);
    expect(get('res.hdr(cache-control)', s)).toBe('private');
    expect(get('shdr(cache-control,1)', s)).toBe('no-cache');
    expect(get('res.hdr_cnt(cache-control)', s)).toBe(2);
    expect(get('res.hdr_cnt', s)).toBe(3);
    expect(get('status', src)).toBeUndefined();
  });
});

describe('converters', () => {
  it('lower and upper, on strings and on other types', () => {
    expect(get('hdr(host),upper', src)).toBe('127.0.0.1:18301');
    expect(get('str(AbC),lower', src)).toBe('abc');
    expect(get('str(AbC),upper', src)).toBe('ABC');
    expect(get('int(12),upper', src)).toBe('12');
    expect(get('hdr(missing),lower', src)).toBeUndefined();
  });

  it('ipmask: IPv4 by bits or dotted mask, IPv6 only with a mask6 (HAProxy 2.6 outputs)', () => {
    const s = (ip: string) => fakeSource({ clientIp: ip });
    expect(get('src,ipmask(8)', s('127.0.0.1'))).toBe('127.0.0.0');
    expect(get('src,ipmask(255.255.0.0)', s('10.1.2.3'))).toBe('10.1.0.0');
    expect(get('src,ipmask(0)', s('10.1.2.3'))).toBe('0.0.0.0');
    expect(get('src,ipmask(32)', s('10.1.2.3'))).toBe('10.1.2.3');
    expect(get('src,ipmask(8)', s('2001:db8::1'))).toBeUndefined();
    expect(get('src,ipmask(8,64)', s('::1'))).toBe('::');
    expect(get('src,ipmask(8,32)', s('2001:db8:aa:bb::1'))).toBe('2001:db8::');
    expect(get('src,ipmask(24,20)', s('2001:fdb8:ffff::1'))).toBe('2001:f000::');
    // A dual-stack listener's IPv4 client is masked as IPv4.
    expect(get('src,ipmask(24)', s('::ffff:192.0.2.77'))).toBe('192.0.2.0');
    expect(get('str(10.9.8.7),ipmask(16)', s('1.1.1.1'))).toBe('10.9.0.0');
    expect(get('str(not-an-ip),ipmask(16)', s('1.1.1.1'))).toBeUndefined();
    expect(compileExpr(expr('src,ipmask(24)'), env0, LOC).type).toBe('ip');
  });
});

describe('stick counters', () => {
  const mk = () => {
    const st = new FakeCounters('st', stored('gpc0'));
    const st3 = new FakeCounters('st3', stored('gpc(2),gpt(2),gpc_rate(2,10s),http_req_rate(10s),http_req_cnt,conn_cur'), 1024);
    const env = fakeEnv([st, st3], 'st3');
    return { st, st3, env };
  };

  it('sc fetches: absent when untracked or when the table does not store the type (as HAProxy 2.6)', () => {
    const { st, st3, env } = mk();
    const s = fakeSource({ sc: [undefined, st.track('127.0.0.1'), st3.track('127.0.0.1')] });
    const rate = st3.column('http_req_rate');
    st3.add(s.sc[2]!.slot, rate, 7);
    expect(get('sc_http_req_rate(0)', s, env)).toBeUndefined();
    expect(get('sc0_http_req_rate', s, env)).toBeUndefined();
    expect(get('sc_http_req_rate(1)', s, env)).toBeUndefined();
    expect(get('sc_http_req_rate(2)', s, env)).toBe(7);
    expect(get('sc2_http_req_rate', s, env)).toBe(7);
    expect(get('sc_http_req_rate(1,st3)', s, env)).toBe(7); // sc1's key looked up in st3
    expect(get('sc_http_req_rate(0,st3)', s, env)).toBeUndefined();
    expect(get('sc_get_gpc0(1)', s, env)).toBe(0);
    expect(get('sc_get_gpc(0,1)', s, env)).toBe(0); // gpc0 is element 0 of the gpc array in stickmesh
    expect(get('sc_get_gpc(5,2)', s, env)).toBeUndefined();
    expect(get('sc_get_gpt0(1)', s, env)).toBeUndefined();
    expect(get('sc_get_gpt(1,2)', s, env)).toBe(0);
    expect(get('sc_gpc_rate(0,1)', s, env)).toBeUndefined();
    expect(get('sc_tracked(0)', s, env)).toBe(false);
    expect(get('sc_tracked(1)', s, env)).toBe(true);
    expect(get('sc2_tracked', s, env)).toBe(true);
    expect(get('sc_conn_cur(2)', s, env)).toBe(0);
    expect(get('sc_http_req_cnt(2)', s, env)).toBe(0);
  });

  it('every sc/src read fetch reads its own stored type', () => {
    const all = stored('gpc(2),gpc_rate(2,1s),gpt(1),conn_cnt,conn_cur,conn_rate(1s),sess_cnt,sess_rate(1s),http_req_cnt,http_req_rate(1s),http_err_cnt,http_err_rate(1s),http_fail_cnt,http_fail_rate(1s),bytes_in_rate(1s),bytes_out_rate(1s)');
    const t = new FakeCounters('t', all);
    const env = fakeEnv([t], 't');
    const slot = t.track('192.0.2.10');
    all.forEach((d, col) => t.set(slot.slot, col, 100 + col));
    const s = fakeSource({ sc: [slot, slot, slot] });
    const want = (kind: string, idx = 0) => 100 + all.findIndex((d) => d.kind === kind && d.idx === idx);
    for (const spec of FETCHES) {
      const cf = spec.counter;
      if (cf === undefined || cf.op !== 'get' || cf.idx === undefined) continue;
      const args = spec.sc !== undefined || cf.family !== 'sc' ? [] : ['1'];
      expect(get(`${spec.name}${args.length ? `(${args.join(',')})` : ''}`, s, env), spec.name).toBe(want(cf.data!, cf.idx));
    }
    for (const kind of ['http_req_rate', 'http_err_rate', 'conn_cur', 'conn_cnt', 'conn_rate', 'sess_cnt', 'sess_rate', 'bytes_in_rate', 'bytes_out_rate', 'http_req_cnt', 'http_err_cnt']) {
      expect(get(`sc_${kind}(0)`, s, env), kind).toBe(want(kind));
      expect(get(`sc1_${kind}`, s, env), kind).toBe(want(kind));
      expect(get(`src_${kind}`, s, env), kind).toBe(want(kind));
      expect(get(`src_${kind}(t)`, s, env), kind).toBe(want(kind));
    }
    expect(get('sc_get_gpc(1,0)', s, env)).toBe(want('gpc', 1));
    expect(get('sc_gpc_rate(1,2)', s, env)).toBe(want('gpc_rate', 1));
    expect(get('src_get_gpc(1)', s, env)).toBe(want('gpc', 1));
    expect(get('src_get_gpt(0,t)', s, env)).toBe(want('gpt', 0));
    expect(get('sc_gpc1_rate(0)', s, env)).toBe(want('gpc_rate', 1));
    expect(get('sc_get_gpc1(0)', s, env)).toBe(want('gpc', 1));
  });

  it('rates are integers (floored) as HAProxy frequency counters read', () => {
    const t = new FakeCounters('t', stored('http_req_rate(10s)'));
    const slot = t.track('k');
    t.set(slot.slot, 0, 100.9);
    expect(get('sc_http_req_rate(0)', fakeSource({ sc: [slot] }), fakeEnv([t]))).toBe(100);
  });

  it('sc_inc_gpc0 increments and returns the new value; gpc_rate counts too; untracked is absent', () => {
    const { st, st3, env } = mk();
    const s = fakeSource({ sc: [undefined, st.track('127.0.0.1'), st3.track('127.0.0.1')] });
    expect(get('sc_inc_gpc0(1)', s, env)).toBe(1);
    expect(get('sc1_inc_gpc0', s, env)).toBe(2);
    expect(get('sc_get_gpc0(1)', s, env)).toBe(2);
    expect(get('sc_inc_gpc0(0)', s, env)).toBeUndefined();
    expect(get('sc_inc_gpc(1,2)', s, env)).toBe(1);
    expect(st3.read(s.sc[2]!.slot, st3.column('gpc_rate', 1))).toBe(1);
    expect(get('sc_inc_gpc1(1)', s, env)).toBeUndefined(); // st stores no gpc1
  });

  it('src_* look the client address up without creating it (0 when absent); src_inc_gpc0 creates it', () => {
    const { st, env } = mk();
    const s = fakeSource({ clientIp: '198.51.100.1' });
    expect(get('src_get_gpc0(st)', s, env)).toBe(0);
    expect(get('src_http_req_rate(st)', s, env)).toBe(0);
    expect(st.count).toBe(0);
    expect(get('src_inc_gpc0(st)', s, env)).toBe(1);
    expect(get('src_inc_gpc0(st)', s, env)).toBe(2);
    expect(st.count).toBe(1);
    expect(st.references(st.find('198.51.100.1'))).toBe(0); // the reference taken to create it is released
    expect(get('src_get_gpc0(st)', s, env)).toBe(2);
    expect(get('src_http_req_rate(st)', s, env)).toBeUndefined(); // present but not stored
    expect(get('src_get_gpc0', s, env)).toBe(0); // own table st3: not there
  });

  it('table_cnt and table_avl', () => {
    const { st, st3, env } = mk();
    st.track('a');
    st.track('b');
    expect(get('table_cnt(st)', fakeSource(), env)).toBe(2);
    expect(get('table_avl(st)', fakeSource(), env)).toBe(998);
    expect(get('table_cnt', fakeSource(), env)).toBe(0);
    st3.track('c');
    expect(get('table_avl', fakeSource(), env)).toBe(1023);
  });
});
