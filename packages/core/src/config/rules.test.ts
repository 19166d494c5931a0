import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../errors.js';
import { parseConfigText } from './load.js';
import { parseHaproxyConfig } from './haproxy.js';
import { validateConfig } from './validate.js';
import { ACL_KEYWORDS, FETCHES, FETCH_BY_NAME, PREDEFINED_ACLS, PREDEFINED_ACL_NAMES } from './fetches.js';
import type { FrontendConfig, StickmeshConfig } from './model.js';
import { requireHaproxy } from '../../../../test/helpers/haproxy.js';

const manualFixture = fileURLToPath(new URL('../../test/fixtures/haproxy-manual-rules.cfg', import.meta.url));

const HEAD = ['defaults', '  mode http', '  timeout connect 1s', '  timeout client 1s', '  timeout server 1s', 'backend b', '  server s 127.0.0.1:1'];

/** A config of HEAD, then a frontend `f` with `lines`, then `after`. */
function fe(lines: string[], after: string[] = []): string {
  return [...HEAD, 'frontend f', '  bind 127.0.0.1:18080', '  default_backend b', ...lines.map((l) => `  ${l}`), ...after].join('\n') + '\n';
}

function load(text: string): StickmeshConfig {
  return parseConfigText(text, 'x.cfg', 'haproxy', {}).config;
}

function frontend(lines: string[], after: string[] = []): FrontendConfig {
  return load(fe(lines, after)).frontends[0]!;
}

/** Problems of a config as `line: message` (parse errors and cross-section errors). */
function errors(text: string): string[] {
  try {
    parseConfigText(text, 'x.cfg', 'haproxy', {});
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map((i) => `${i.loc.line}: ${i.message}`);
    throw err;
  }
  return [];
}

function warnings(text: string): string[] {
  const p = parseHaproxyConfig(text, 'x.cfg', {});
  return [...p.warnings.items, ...validateConfig(p.config).warnings.items].map((w) => `${w.loc.line}: ${w.message}`);
}

/** The line of `frontend f`'s first rule line in `fe()`. */
const L = HEAD.length + 4;

describe('fetch catalog', () => {
  it('names each fetch once, and every ACL keyword and predefined ACL points at a catalog fetch', () => {
    const names = new Set<string>();
    for (const f of FETCHES) {
      for (const n of [f.name, ...f.aliases]) {
        expect(names.has(n), n).toBe(false);
        names.add(n);
      }
      expect(f.minArgs).toBeLessThanOrEqual(f.args.length);
      expect(f.where.length).toBeGreaterThan(0);
    }
    for (const [k, v] of ACL_KEYWORDS) expect(FETCH_BY_NAME.get(v.fetch)?.name, k).toBe(v.fetch);
    for (const [k, v] of PREDEFINED_ACLS) expect(FETCH_BY_NAME.get(v.fetch)?.name, k).toBe(v.fetch);
    expect(PREDEFINED_ACL_NAMES).toEqual(expect.arrayContaining(['TRUE', 'FALSE', 'LOCALHOST', 'HTTP', 'HTTP_1.0', 'HTTP_1.1', 'HTTP_CONTENT', 'HTTP_URL_ABS', 'HTTP_URL_SLASH', 'HTTP_URL_STAR', 'METH_CONNECT', 'METH_DELETE', 'METH_GET', 'METH_HEAD', 'METH_OPTIONS', 'METH_POST', 'METH_PUT', 'METH_TRACE', 'REQ_CONTENT', 'WAIT_END']));
  });

  it('has the fetches the issue names, with HAProxy shapes', () => {
    for (const n of ['src', 'src_port', 'dst', 'dst_port', 'path', 'url', 'query', 'url_param', 'method', 'base', 'hdr', 'req.hdr', 'req.fhdr', 'hdr_cnt', 'req.hdr_cnt', 'req.cook', 'cook', 'req.cook_cnt', 'ssl_fc', 'ssl_fc_sni', 'req.ver', 'status', 'res.hdr', 'res.hdr_cnt', 'sc_http_req_rate', 'sc0_http_req_rate', 'sc2_conn_cur', 'sc_get_gpc', 'sc_gpc_rate', 'sc_get_gpt', 'sc_tracked', 'sc_inc_gpc0', 'src_http_req_rate', 'src_get_gpt0', 'table_cnt', 'table_avl', 'always_true', 'always_false', 'int', 'str']) {
      expect(FETCH_BY_NAME.has(n), n).toBe(true);
    }
    expect(FETCH_BY_NAME.get('hdr')).toBe(FETCH_BY_NAME.get('req.hdr'));
    expect(FETCH_BY_NAME.get('sc1_get_gpc0')).toMatchObject({ sc: 1, args: ['table'], counter: { family: 'sc', op: 'get', data: 'gpc', idx: 0 } });
    expect(FETCH_BY_NAME.get('sc_http_req_rate')).toMatchObject({ args: ['sc', 'table'], minArgs: 1, type: 'int', match: 'int' });
    expect(FETCH_BY_NAME.get('status')!.where).toEqual(['http-response']);
    expect(FETCH_BY_NAME.get('path')!.where).toEqual(['http-request']);
    expect(FETCH_BY_NAME.get('ssl_fc')!.where).not.toContain('tcp-request connection');
  });
});

describe('stored data types', () => {
  const table = (store: string): StickmeshConfig => load([...HEAD, `  stick-table type ip size 1k ${store}`].join('\n') + '\n');

  it('expands every type, keeps store raw, reads several store words and comma lists', () => {
    const t = table('store gpc(2),gpc_rate(2,10s) store gpt(1),conn_cnt,conn_cur,conn_rate(1m) store sess_cnt,sess_rate(2s),http_req_cnt,http_req_rate(10s),http_err_cnt,http_err_rate(5s),http_fail_cnt,http_fail_rate(5s),bytes_in_cnt,bytes_out_cnt,bytes_in_rate(1s),bytes_out_rate(1s),server_id').backends[0]!.stickTable!;
    expect(t.store[0]).toBe('gpc(2)');
    expect(t.store).toContain('server_id');
    expect(t.data).toEqual([
      { kind: 'gpc', idx: 0, period: 0 }, { kind: 'gpc', idx: 1, period: 0 },
      { kind: 'gpc_rate', idx: 0, period: 10000 }, { kind: 'gpc_rate', idx: 1, period: 10000 },
      { kind: 'gpt', idx: 0, period: 0 }, { kind: 'conn_cnt', idx: 0, period: 0 }, { kind: 'conn_cur', idx: 0, period: 0 },
      { kind: 'conn_rate', idx: 0, period: 60000 }, { kind: 'sess_cnt', idx: 0, period: 0 }, { kind: 'sess_rate', idx: 0, period: 2000 },
      { kind: 'http_req_cnt', idx: 0, period: 0 }, { kind: 'http_req_rate', idx: 0, period: 10000 },
      { kind: 'http_err_cnt', idx: 0, period: 0 }, { kind: 'http_err_rate', idx: 0, period: 5000 },
      { kind: 'http_fail_cnt', idx: 0, period: 0 }, { kind: 'http_fail_rate', idx: 0, period: 5000 },
      { kind: 'bytes_in_cnt', idx: 0, period: 0 }, { kind: 'bytes_out_cnt', idx: 0, period: 0 },
      { kind: 'bytes_in_rate', idx: 0, period: 1000 }, { kind: 'bytes_out_rate', idx: 0, period: 1000 },
    ]);
  });

  it('maps the legacy gpc0/gpc1/gpt0 forms to array elements and drops duplicates with a warning', () => {
    const t = table('store gpc0,gpc1,gpc0_rate(10s),gpc1_rate(1s),gpt0,gpc0').backends[0]!.stickTable!;
    expect(t.data).toEqual([
      { kind: 'gpc', idx: 0, period: 0 }, { kind: 'gpc', idx: 1, period: 0 },
      { kind: 'gpc_rate', idx: 0, period: 10000 }, { kind: 'gpc_rate', idx: 1, period: 1000 }, { kind: 'gpt', idx: 0, period: 0 },
    ]);
    expect(warnings([...HEAD, '  stick-table type ip size 1k store gpc0,gpc0'].join('\n'))).toEqual([`8: stored data type 'gpc0' is already enabled; ignored`]);
  });

  it('server_id alone gives no data; counters cluster|local on both table kinds', () => {
    expect(table('store server_id').backends[0]!.stickTable!.data).toBeUndefined();
    expect(table('store gpc0 counters local').backends[0]!.stickTable!.counters).toBe('local');
    const c = load(['peers p', '  peer a 127.0.0.1:10000', '  table t type ip size 1k store http_req_rate(10s) counters cluster', ...HEAD].join('\n') + '\n');
    expect(c.peers[0]!.tables[0]).toMatchObject({ counters: 'cluster', data: [{ kind: 'http_req_rate', idx: 0, period: 10000 }] });
  });

  it('refuses unknown types, bad periods and counts, and mixing arrays with legacy elements', () => {
    const e = (store: string) => errors([...HEAD, `  stick-table type ip size 1k ${store}`].join('\n'));
    expect(e('store glitch_cnt')).toEqual([`8: stored data type 'glitch_cnt' is not supported by stickmesh`]);
    expect(e('store server_key')[0]).toMatch(/'server_key' is not supported by stickmesh/);
    expect(e('store http_req_rate')[0]).toMatch(/'http_req_rate' takes 1 argument/);
    expect(e('store http_req_rate(0s)')[0]).toMatch(/period greater than 0/);
    expect(e('store conn_cnt(1)')[0]).toMatch(/'conn_cnt' takes no argument/);
    expect(e('store gpc(101)')[0]).toMatch(/from 1 to 100/);
    expect(e('store gpc(0)')[0]).toMatch(/from 1 to 100/);
    expect(e('store gpc_rate(2)')[0]).toMatch(/gpc_rate\(N,period\)/);
    expect(e('store gpc(2),gpc0')[0]).toMatch(/'gpc' and 'gpc0\/gpc1' cannot be stored in the same table/);
    expect(e('store gpt(2),gpt0')[0]).toMatch(/'gpt' and 'gpt0'/);
    expect(e('store gpc_rate(2,1s),gpc1_rate(1s)')[0]).toMatch(/'gpc_rate' and 'gpc0_rate\/gpc1_rate'/);
    expect(e('store gpc0,,conn_cnt')[0]).toMatch(/empty stored data type/);
    expect(e('counters global')[0]).toMatch(/'counters' expects cluster or local/);
  });
});

describe('acl', () => {
  it('resolves derived keywords to fetch + match, ORs lines of one name, keeps flags and patterns', () => {
    const f = frontend([
      'acl api path_beg /api /v2',
      'acl api hdr_dom(host) -i api.example.com',
      'acl dot path_end -- -x',
      'acl ct req.hdr(content-type),lower -m sub json',
      'acl sess cook(SID) -m found',
      'acl n hdr_cnt(x-forwarded-for) gt 1',
      'acl r src_port 0:1023 eq 8080 2000:',
      'acl net src,ipmask(24) 10.0.0.0/24 ::1 192.168.0.0/255.255.0.0',
      'acl rx url_reg -i ^/a(b|c)$',
      'acl prm url_param(id) -m len gt 3',
      'acl beg hdr_beg(host),lower www.',
    ]);
    const acls = f.rules!.acls;
    expect(acls.map((a) => a.name)).toEqual(['api', 'dot', 'ct', 'sess', 'n', 'r', 'net', 'rx', 'prm', 'beg']);
    const api = acls[0]!;
    expect(api.terms).toHaveLength(2);
    expect(api.terms[0]).toMatchObject({ sample: { fetch: 'path', args: [], text: 'path_beg' }, match: 'beg', ignoreCase: false, patterns: ['/api', '/v2'], loc: { line: L } });
    expect(api.terms[1]).toMatchObject({ sample: { fetch: 'req.hdr', args: ['host'] }, match: 'dom', ignoreCase: true, patterns: ['api.example.com'], loc: { line: L + 1 } });
    expect(acls[1]!.terms[0]).toMatchObject({ match: 'end', patterns: ['-x'] });
    expect(acls[2]!.terms[0]).toMatchObject({ sample: { fetch: 'req.hdr', converters: [{ name: 'lower', args: [] }] }, match: 'sub' });
    expect(acls[3]!.terms[0]).toMatchObject({ sample: { fetch: 'cook', args: ['SID'] }, match: 'found', patterns: [] });
    expect(acls[4]!.terms[0]).toMatchObject({ match: 'int', patterns: ['gt', '1'] });
    expect(acls[5]!.terms[0]).toMatchObject({ match: 'int', patterns: ['0:1023', 'eq', '8080', '2000:'] });
    expect(acls[6]!.terms[0]).toMatchObject({ match: 'ip', sample: { converters: [{ name: 'ipmask', args: ['24'] }] } });
    expect(acls[7]!.terms[0]).toMatchObject({ sample: { fetch: 'url' }, match: 'reg', ignoreCase: true });
    expect(acls[8]!.terms[0]).toMatchObject({ sample: { fetch: 'url_param', args: ['id'] }, match: 'len' });
    // A converter after a derived keyword drops its implied match (HAProxy): exact string.
    expect(acls[9]!.terms[0]).toMatchObject({ sample: { fetch: 'req.hdr' }, match: 'str' });
  });

  it('reports each malformed ACL at its line', () => {
    const cases: Array<[string, RegExp]> = [
      ['acl', /missing ACL name/],
      ['acl x', /ACL 'x' needs a criterion/],
      ['acl b@d src 1.2.3.4', /invalid ACL name 'b@d'/],
      ['acl x nosuch 1', /unknown fetch 'nosuch'/],
      ['acl x req.payload(0,4) -m sub x', /fetch 'req.payload' is not supported by stickmesh/],
      ['acl x nbsrv(b) lt 2', /fetch 'nbsrv' is not supported by stickmesh/],
      ['acl x path,regsub(a,b) /', /converter 'regsub' is not supported by stickmesh/],
      ['acl x src,ipmask(33) 1.2.3.4', /ipmask: '33' is not an IPv4 mask/],
      ['acl x src,ipmask(24,129) 1.2.3.4', /ipmask: '129' is not an IPv6 mask/],
      ['acl x src_port,ipmask(24) 1', /converter 'ipmask' cannot take an int sample/],
      ['acl x src foo.example.com', /'foo.example.com' is not an IPv4 or IPv6 address/],
      ['acl x src 10.0.0.0/33', /'10.0.0.0\/33' is not an IPv4/],
      ['acl x path_beg -1', /'-1' is not a valid ACL flag; put '--'/],
      ['acl x path -f /etc/list', /ACL flag '-f' is not supported by stickmesh/],
      ['acl x path -m bin 00', /match method 'bin' is not supported/],
      ['acl x path -m foo a', /unknown match method 'foo'/],
      ['acl x path -m', /'-m' needs a match method/],
      ['acl x path -m reg (', /regex '\(' is invalid/],
      ['acl x src_port gt', /operator 'gt' needs an integer/],
      ['acl x src_port abc', /'abc' is not an integer, a range/],
      ['acl x hdr(a,b,c) x', /fetch 'hdr' takes 0 to 2 arguments, got 3/],
      ['acl x hdr(a,b) x', /argument 2 'b' is not an integer/],
      ['acl x sc_http_req_rate gt 1', /fetch 'sc_http_req_rate' takes 1 to 2 arguments, got 0/],
      ['acl x sc_http_req_rate(3) gt 1', /sticky counter '3' must be 0, 1 or 2/],
      ['acl x sc_get_gpc(100,0) gt 1', /array index '100' must be 0 to 99/],
      ['acl x path(a', /missing '\)'/],
    ];
    for (const [line, re] of cases) {
      const e = errors(fe([line]));
      expect(e, line).toHaveLength(1);
      expect(e[0], line).toMatch(new RegExp(`^${L}: .*${re.source}`));
    }
  });

  it('warns for a criterion without pattern (never matches), as HAProxy does', () => {
    expect(warnings(fe(['acl x src']))).toEqual([`${L}: ACL criterion 'src' has no pattern: it never matches`]);
    expect(warnings(fe(['acl x ssl_fc', 'acl y path -m found']))).toEqual([]);
  });
});

describe('conditions', () => {
  it('parses !, or, ||, AND by juxtaposition, braces, glued !, predefined ACLs', () => {
    const f = frontend(['acl a path /a', 'acl b src 10.0.0.1', 'http-request deny if a !b || METH_POST { src_port gt 1024 } or !{ ssl_fc } ! TRUE']);
    const c = f.rules!.httpRequest[0]!.cond!;
    expect(c.kind).toBe('if');
    expect(c.loc.line).toBe(L + 2);
    expect(c.or).toHaveLength(3);
    expect(c.or[0]).toEqual([{ negate: false, acl: 'a' }, { negate: true, acl: 'b' }]);
    expect(c.or[1]![0]).toEqual({ negate: false, acl: 'METH_POST' });
    expect(c.or[1]![1]).toMatchObject({ negate: false, anon: { sample: { fetch: 'src_port' }, patterns: ['gt', '1024'] } });
    expect(c.or[2]![0]).toMatchObject({ negate: true, anon: { sample: { fetch: 'ssl_fc' }, match: 'bool' } });
    expect(c.or[2]![1]).toEqual({ negate: true, acl: 'TRUE' });
    expect(frontend(['http-request deny unless HTTP_1.1']).rules!.httpRequest[0]!.cond).toMatchObject({ kind: 'unless', or: [[{ acl: 'HTTP_1.1' }]] });
  });

  it('a section ACL named like a predefined one is the section one', () => {
    const f = frontend(['acl TRUE path /x', 'http-request deny if TRUE']);
    expect(f.rules!.acls[0]!.name).toBe('TRUE');
    expect(f.rules!.httpRequest[0]!.cond!.or[0]![0]!.acl).toBe('TRUE');
  });

  it('errors: undefined, declared later, braces, empty, misplaced or', () => {
    const cases: Array<[string[], RegExp]> = [
      [['http-request deny if nope'], /no such ACL: 'nope'/],
      [['http-request deny if later', 'acl later path /'], /no such ACL: 'later'/],
      [['http-request deny if { path /'], /missing closing '}'/],
      [['http-request deny if path }'], /no such ACL: 'path'/],
      [['http-request deny if }'], /'}' without '{'/],
      [['http-request deny if'], /missing condition after 'if'/],
      [['http-request deny if !'], /missing condition after 'if'/],
      [['http-request deny if or TRUE'], /'or' needs a condition on both sides/],
      [['http-request deny if TRUE ||'], /'or' at the end of the condition/],
      [['http-request deny if { }'], /missing criterion/],
      [['http-request deny when TRUE'], /unexpected 'when' in 'http-request deny'/],
    ];
    for (const [lines, re] of cases) {
      const e = errors(fe(lines));
      expect(e, lines.join(' / ')).toHaveLength(1);
      expect(e[0], lines.join(' / ')).toMatch(new RegExp(`^${L}: .*${re.source}`));
    }
  });

  it('refuses fetches whose input the rule kind does not have', () => {
    const cases: Array<[string, RegExp]> = [
      ['http-request deny if { status 200 }', /fetch 'status', which cannot be used in 'http-request' rules/],
      ['http-response deny if { path /x }', /fetch 'path', which cannot be used in 'http-response'/],
      ['http-response deny if { hdr(x) y }', /fetch 'hdr', which cannot be used in 'http-response'/],
      ['tcp-request connection reject if { path /x }', /cannot be used in 'tcp-request connection'/],
      ['tcp-request connection reject if { ssl_fc }', /fetch 'ssl_fc', which cannot be used in 'tcp-request connection'/],
      ['tcp-request content reject if { hdr(host) x }', /cannot be used in 'tcp-request content'/],
      ['tcp-request connection reject if HTTP', /ACL 'HTTP' uses fetch 'req.proto_http'/],
      ['http-request set-header X %[status]', /fetch 'status' cannot be used in 'http-request' rules/],
      ['http-request track-sc0 res.hdr(x)', /fetch 'res.hdr' cannot be used in 'http-request'/],
    ];
    for (const [line, re] of cases) {
      const e = errors(fe(['stick-table type ip size 1k store gpc0', line]));
      expect(e, line).toHaveLength(1);
      expect(e[0], line).toMatch(new RegExp(`^${L + 1}: .*${re.source}`));
    }
    // Request facts kept for the response are fine there.
    expect(errors(fe(['http-response set-header X %[method] if { req.ver 1.1 } METH_GET { src 10.0.0.0/8 }']))).toEqual([]);
    // A named ACL is checked where it is used, not where it is declared.
    expect(errors(fe(['acl p path /x', 'http-response deny if p']))[0]).toMatch(new RegExp(`^${L + 1}: ACL 'p' uses fetch 'path'`));
  });
});

describe('http-request, http-response, tcp-request rules', () => {
  it('parses every supported action, each with its own line', () => {
    const f = frontend([
      'stick-table type ip size 1k store http_req_rate(10s),gpc(3),gpt(2)',
      'http-request allow if { src 127.0.0.1 }',
      'http-request deny',
      'http-request deny deny_status 429 content-type text/plain string "too many requests" if { sc_http_req_rate(0) gt 100 }',
      'http-request tarpit deny_status 503',
      'http-request return status 404 content-type "text/html; charset=utf-8" string "<p>gone</p>"',
      'http-request return',
      'http-request set-header X-Client "%[src]:%cp %fi:%fp %f/%b 100%%"',
      'http-request add-header X-Host %[req.hdr(host),lower]',
      'http-request del-header X-Secret',
      'http-request redirect scheme https code 301 unless { ssl_fc }',
      'http-request redirect code 308 location /new drop-query',
      'http-request redirect prefix https://example.com',
      'http-request track-sc0 src',
      'http-request track-sc1 req.hdr(x-user) table b2',
      'http-request track-sc2 src,ipmask(24)',
      'http-request sc-inc-gpc0(0)',
      'http-request sc-inc-gpc1(1) if TRUE',
      'http-request sc-inc-gpc(2,2)',
      'http-request sc-set-gpt0(0) 7',
      'http-request sc-set-gpt(1,0) sc_http_req_rate(0)',
      'http-response allow',
      'http-response deny',
      'http-response deny deny_status 500 if { status 404 }',
      'http-response set-header X-Status %[status]',
      'http-response add-header Via stickmesh',
      'http-response del-header Server',
      'http-response track-sc0 src',
      'http-response sc-inc-gpc0(0) if { status ge 500 }',
      'tcp-request inspect-delay 5s',
      'tcp-request connection accept if { src 10.0.0.0/8 }',
      'tcp-request connection reject if { src_conn_cur gt 10 }',
      'tcp-request connection track-sc0 src',
      'tcp-request connection sc-inc-gpc0(0)',
      'tcp-request connection sc-set-gpt0(0) 1',
      'tcp-request content accept if WAIT_END',
      'tcp-request content reject if { sc0_conn_rate gt 5 }',
      'tcp-request content track-sc1 src',
      'tcp-request content sc-inc-gpc(1,1)',
      'timeout tarpit 3s',
    ], ['backend b2', '  stick-table type string size 1k store gpc0', '  server s 127.0.0.1:1']);
    const r = f.rules!;
    const at = (rules: typeof r.httpRequest) => rules.map((x) => [x.loc.line - L, x.action]);
    expect(at(r.httpRequest)).toEqual([
      [1, { type: 'allow' }],
      [2, { type: 'deny', status: 403 }],
      [3, { type: 'deny', status: 429, contentType: 'text/plain', body: 'too many requests' }],
      [4, { type: 'tarpit', status: 503 }],
      [5, { type: 'return', status: 404, contentType: 'text/html; charset=utf-8', body: '<p>gone</p>' }],
      [6, { type: 'return', status: 200 }],
      [7, { type: 'set-header', name: 'X-Client', value: [
        { sample: { fetch: 'src', args: [], converters: [], text: 'src' } }, { lit: ':' }, { var: 'cp' }, { lit: ' ' }, { var: 'fi' }, { lit: ':' }, { var: 'fp' },
        { lit: ' ' }, { var: 'f' }, { lit: '/' }, { var: 'b' }, { lit: ' 100%' },
      ] }],
      [8, { type: 'add-header', name: 'X-Host', value: [{ sample: { fetch: 'req.hdr', args: ['host'], converters: [{ name: 'lower', args: [] }], text: 'req.hdr(host),lower' } }] }],
      [9, { type: 'del-header', name: 'X-Secret' }],
      [10, { type: 'redirect', kind: 'scheme', value: [{ lit: 'https' }], code: 301, dropQuery: false }],
      [11, { type: 'redirect', kind: 'location', value: [{ lit: '/new' }], code: 308, dropQuery: true }],
      [12, { type: 'redirect', kind: 'prefix', value: [{ lit: 'https://example.com' }], code: 302, dropQuery: false }],
      [13, { type: 'track-sc', sc: 0, sample: { fetch: 'src', args: [], converters: [], text: 'src' } }],
      [14, { type: 'track-sc', sc: 1, sample: { fetch: 'req.hdr', args: ['x-user'], converters: [], text: 'req.hdr(x-user)' }, table: 'b2' }],
      [15, { type: 'track-sc', sc: 2, sample: { fetch: 'src', args: [], converters: [{ name: 'ipmask', args: ['24'] }], text: 'src,ipmask(24)' } }],
      [16, { type: 'sc-inc-gpc', sc: 0, idx: 0 }],
      [17, { type: 'sc-inc-gpc', sc: 1, idx: 1 }],
      [18, { type: 'sc-inc-gpc', sc: 2, idx: 2 }],
      [19, { type: 'sc-set-gpt', sc: 0, idx: 0, value: 7 }],
      [20, { type: 'sc-set-gpt', sc: 0, idx: 1, value: { fetch: 'sc_http_req_rate', args: ['0'], converters: [], text: 'sc_http_req_rate(0)' } }],
    ]);
    expect(r.httpRequest[2]!.cond!.loc.line).toBe(L + 3);
    expect(r.httpRequest[16]!.cond).toMatchObject({ kind: 'if', or: [[{ acl: 'TRUE' }]] });
    expect(at(r.httpResponse).map(([l, a]) => [l, (a as { type: string }).type])).toEqual([[21, 'allow'], [22, 'deny'], [23, 'deny'], [24, 'set-header'], [25, 'add-header'], [26, 'del-header'], [27, 'track-sc'], [28, 'sc-inc-gpc']]);
    expect(r.httpResponse[1]!.action).toEqual({ type: 'deny', status: 502 });
    expect(at(r.tcpRequestConnection).map(([l, a]) => [l, (a as { type: string }).type])).toEqual([[30, 'allow'], [31, 'reject'], [32, 'track-sc'], [33, 'sc-inc-gpc'], [34, 'sc-set-gpt']]);
    expect(at(r.tcpRequestContent).map(([l, a]) => [l, (a as { type: string }).type])).toEqual([[35, 'allow'], [36, 'reject'], [37, 'track-sc'], [38, 'sc-inc-gpc']]);
    expect(f.inspectDelay).toBe(5000);
    expect(f.tarpitTimeout).toBe(3000);
    expect(f.stickTable).toMatchObject({ id: 'f', name: 'f' });
  });

  it("reads a rule's 'errorfile FILE' at load and takes its status from the file; accepts 'http-request reject'", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sm-rule-errorfile-'));
    const file = path.join(dir, '418.http');
    writeFileSync(file, 'HTTP/1.1 418 Teapot\nContent-Length: 3\n\ntea');
    const r = frontend([`http-request deny deny_status 429 errorfile ${file} if { path /a }`, `http-request return errorfile /dev/null`, 'http-request reject if { path /r }']).rules!;
    expect(r.httpRequest[0]!.action).toEqual({ type: 'deny', status: 418, errorfile: { file, response: 'HTTP/1.1 418 Teapot\r\nContent-Length: 3\r\n\r\ntea' } });
    expect(r.httpRequest[1]!.action).toEqual({ type: 'return', status: 200, errorfile: { file: '/dev/null', response: '' } });
    expect(r.httpRequest[2]!.action).toEqual({ type: 'reject' });
  });

  it('reports unsupported actions and malformed arguments at the rule line', () => {
    const cases: Array<[string, RegExp]> = [
      ['http-request set-var(txn.x) src', /'http-request set-var\(txn.x\)' is not supported by stickmesh/],
      ['http-request auth realm x', /'http-request auth' is not supported by stickmesh/],
      ['http-request set-src hdr(x)', /'http-request set-src' is not supported by stickmesh/],
      ['http-request', /missing action/],
      ['http-response redirect location /', /'http-response redirect' is not supported/],
      ['http-response tarpit', /'http-response tarpit' is not supported/],
      ['tcp-request connection deny', /'tcp-request connection deny' is not supported/],
      ['tcp-request connection expect-proxy layer4', /'tcp-request connection expect-proxy' is not supported/],
      ['tcp-request session reject', /'tcp-request session' is not supported by stickmesh/],
      ['tcp-request foo', /expects 'tcp-request connection\|content\|inspect-delay/],
      ['tcp-request inspect-delay soon', /'tcp-request inspect-delay'/],
      ['http-request deny deny_status 600', /'deny_status' needs a status code from 200 to 599, got '600'/],
      ['http-request deny deny_status 204', /status 204 has no default error page/],
      ['http-request deny string hi', /'string' needs a 'content-type'/],
      ['http-request deny errorfile /nonexistent/403.http', /cannot read '\/nonexistent\/403.http': no such file or directory/],
      ['http-request deny errorfile', /'errorfile' needs a file/],
      ['http-request deny errorfiles site', /'http-request deny ... errorfiles' is not supported by stickmesh \(use 'content-type TYPE string TEXT' or 'errorfile FILE'\)/],
      ['http-request deny errorfile /dev/null content-type text/plain string x', /'errorfile' gives the whole response; it cannot be combined/],
      ['http-request return status 200 content-type text/plain lf-string hi', /'http-request return ... lf-string' is not supported/],
      ['http-request return status 100', /'status' needs a status code from 200 to 599/],
      ['http-request deny bogus', /unexpected 'bogus' in 'http-request deny'/],
      ['http-request tarpit string x', /unexpected 'string' in 'http-request tarpit'/],
      ['http-request set-header X', /needs a header name and a value/],
      ['http-request set-header "bad name" x', /needs a header name, got 'bad name'/],
      ['http-request set-header X %[nosuch]', /unknown fetch 'nosuch'/],
      ['http-request set-header X %[src', /missing '\]'/],
      ['http-request set-header X %H', /log-format variable '%H' is not supported by stickmesh/],
      ['http-request set-header X %{+Q}[src]', /log-format flags/],
      ['http-request set-header X 50%', /'%' must be followed by/],
      ['http-request del-header X -m beg', /'http-request del-header ... -m' is not supported/],
      ['http-request redirect', /needs 'location', 'prefix' or 'scheme'/],
      ['http-request redirect location', /'http-request redirect location' needs a value/],
      ['http-request redirect scheme https code 305', /'code' must be 301, 302, 303, 307 or 308/],
      ['http-request redirect location / append-slash', /redirect option 'append-slash' is not supported/],
      ['http-request redirect location / prefix /', /takes one of location, prefix or scheme/],
      ['http-request track-sc3 src', /'track-sc3': sticky counter number exceeds 2/],
      ['http-request track-sc0', /needs a sample to track/],
      ['http-request track-sc0 src table', /'table' needs a table name/],
      ['http-request track-sc0 src extra', /unexpected 'extra'/],
      ['http-request sc-inc-gpc0(3)', /sticky counter 3 exceeds 2/],
      ['http-request sc-inc-gpc(0)', /takes \(index,counter\)/],
      ['http-request sc-inc-gpc(100,0)', /index '100' must be 0 to 99/],
      ['http-request sc-inc-gpc0(a)', /'a' is not a sticky counter number/],
      ['http-request sc-set-gpt0(0)', /needs a value/],
      ['http-request sc-set-gpt0(0) -1', /is negative/],
      ['http-request sc-set-gpt0(0) path,foo', /converter 'foo' is not supported/],
      ['http-request sc-set-gpt1(0) 1', /'http-request sc-set-gpt1\(0\)' is not supported/],
    ];
    for (const [line, re] of cases) {
      const e = errors(fe(['stick-table type ip size 1k store gpc0', line]));
      expect(e, line).toHaveLength(1);
      expect(e[0], line).toMatch(new RegExp(`^${L + 1}: .*${re.source}`));
    }
  });

  it('refuses rules where HAProxy does: unnamed defaults, tcp-request connection in a backend', () => {
    for (const kw of ['acl a src 1.2.3.4', 'http-request deny', 'http-response deny', 'tcp-request connection reject', 'use_backend b']) {
      const e = errors(['defaults', `  ${kw}`, ...HEAD.slice(1)].join('\n'));
      expect(e[0], kw).toMatch(/^2: '.*' is not allowed in an unnamed defaults section/);
    }
    expect(errors([...HEAD, '  tcp-request connection reject'].join('\n'))).toEqual([`8: 'tcp-request connection' is not allowed in a backend section (frontend and listen only)`]);
    expect(errors([...HEAD, '  use_backend b'].join('\n'))[0]).toMatch(/^8: 'use_backend' is not allowed in a backend section/);
    // `timeout tarpit` is inherited from defaults.
    const c = load(['defaults', '  timeout tarpit 4s', ...HEAD.slice(1), 'frontend f', '  bind :1', '  default_backend b'].join('\n'));
    expect(c.frontends[0]!.tarpitTimeout).toBe(4000);
    expect(c.backends[0]!.tarpitTimeout).toBe(4000);
  });

  it('puts a listen section rules on both sides and backend rules on the backend', () => {
    const c = load([...HEAD, '  acl a path /x', '  http-request deny if a', 'listen l', '  bind :1', '  server s 127.0.0.1:2', '  http-request deny'].join('\n'));
    expect(c.backends[0]!.rules!.httpRequest[0]!.loc.line).toBe(9);
    const lf = c.frontends.find((f) => f.name === 'l')!;
    const lb = c.backends.find((b) => b.name === 'l')!;
    expect(lf.rules).toBe(lb.rules);
    expect(lf.rules!.httpRequest).toHaveLength(1);
    expect(c.frontends.find((f) => f.name === 'l')!.rules).toBeDefined();
  });
});

describe('use_backend', () => {
  it('keeps order and conditions; targets and modes are checked', () => {
    const f = frontend(['acl api path_beg /api', 'use_backend b2 if api', 'use_backend b'], ['backend b2', '  server s 127.0.0.1:1']);
    expect(f.useBackends).toEqual([
      { backend: 'b2', cond: { kind: 'if', or: [[{ negate: false, acl: 'api' }]], loc: { file: 'x.cfg', line: L + 1 } }, loc: { file: 'x.cfg', line: L + 1 } },
      { backend: 'b', loc: { file: 'x.cfg', line: L + 2 } },
    ]);
    expect(errors(fe(['use_backend nope if TRUE']))).toEqual([`${L}: frontend 'f': backend 'nope' does not exist`]);
    expect(errors(fe(['use_backend %[req.hdr(host)]']))[0]).toMatch(/log-format expression; stickmesh supports plain backend names only/);
    expect(errors(fe(['use_backend']))[0]).toMatch(/missing backend name/);
    expect(errors(fe(['use_backend b when x']))[0]).toMatch(/unexpected 'when'/);
    expect(errors(fe(['use_backend t'], ['backend t', '  mode tcp', '  server s 127.0.0.1:1']))).toEqual([`${L}: frontend 'f' is in http mode but backend 't' is in tcp mode`]);
  });

  it('checks the condition against the frontend mode once it is known', () => {
    const tcp = ['defaults', '  mode tcp', '  timeout connect 1s', '  timeout client 1s', '  timeout server 1s', 'backend b', '  server s 127.0.0.1:1', 'frontend f', '  bind :1', '  default_backend b', '  use_backend b if { path /x }'];
    expect(errors(tcp.join('\n'))).toEqual([`11: an anonymous ACL uses fetch 'path', which cannot be used in 'tcp-request content' rules (its input exists only in 'http-request') (frontend 'f' is in tcp mode)`]);
    expect(errors([...tcp.slice(0, -1), '  use_backend b if { src 10.0.0.0/8 }'].join('\n'))).toEqual([]);
  });
});

describe('tables named by rules (validate)', () => {
  const peers = ['peers mesh', '  peer a 127.0.0.1:10000', '  table rl type ip size 1k store http_req_rate(10s),gpc0'];

  it('accepts own, backend, frontend and peers tables', () => {
    const text = peers.join('\n') + '\n' + fe([
      'stick-table type ip size 1k store conn_cur',
      'http-request track-sc0 src',
      'http-request track-sc1 src table mesh/rl',
      'http-request track-sc2 src table b3',
      'http-request deny if { sc_http_req_rate(1) gt 10 } { src_conn_cur gt 3 } { src_http_req_rate(mesh/rl) gt 5 } { table_cnt(b3) gt 100 } { table_avl gt 1 }',
    ], ['backend b3', '  stick-table type ip size 1k store gpc0', '  server s 127.0.0.1:1']);
    expect(errors(text)).toEqual([]);
    expect(warnings(text)).toEqual([]);
  });

  it('refuses missing tables', () => {
    const e = errors(fe([
      'http-request track-sc0 src',
      'http-request track-sc1 src table nope',
      'http-request deny if { src_conn_cur gt 3 }',
      'http-request deny if { src_conn_cur(nope) gt 3 }',
      'http-request deny if { sc_conn_cur(0,nope) gt 3 }',
      'acl t table_cnt gt 3',
      'http-request set-header X %[table_avl(nope)]',
    ]));
    expect(e).toEqual([
      `${L}: frontend 'f' has no stick-table; name one with 'table' (a frontend or backend with a stick-table, or PEERS/TABLE)`,
      `${L + 1}: table 'nope' does not exist; name one with 'table' (a frontend or backend with a stick-table, or PEERS/TABLE)`,
      `${L + 2}: fetch 'src_conn_cur' reads frontend 'f''s stick-table, which does not exist; name a table: src_conn_cur(TABLE)`,
      `${L + 3}: fetch 'src_conn_cur': table 'nope' does not exist (a frontend or backend with a stick-table, or PEERS/TABLE)`,
      `${L + 4}: fetch 'sc_conn_cur': table 'nope' does not exist (a frontend or backend with a stick-table, or PEERS/TABLE)`,
      `${L + 5}: fetch 'table_cnt' reads frontend 'f''s stick-table, which does not exist; name a table: table_cnt(TABLE)`,
      `${L + 6}: fetch 'table_avl': table 'nope' does not exist (a frontend or backend with a stick-table, or PEERS/TABLE)`,
    ]);
  });

  it('refuses a frontend table whose name a backend table already has', () => {
    const text = [...HEAD, '  stick-table type ip size 1k', 'frontend b', '  bind :1', '  default_backend b', '  stick-table type ip size 1k'].join('\n');
    expect(errors(text)).toEqual([`12: a table named 'b' already exists (a backend of the same name has one); rename the frontend`]);
  });

  it('warns when rules use counters the tracked tables do not store (HAProxy accepts them)', () => {
    const w = warnings(peers.join('\n') + '\n' + fe([
      'stick-table type ip size 1k store conn_cur',
      'http-request track-sc0 src',
      'http-request track-sc1 src table mesh/rl',
      'http-request deny if { sc_http_req_rate(0) gt 10 } { sc1_http_req_rate gt 10 } { src_get_gpc0(mesh/rl) gt 0 }',
      'http-request sc-inc-gpc0(0)',
      'http-request sc-inc-gpc0(1)',
      'http-request sc-set-gpt0(1) 1',
    ]));
    const base = L + peers.length;
    expect(w).toEqual([
      `${base + 3}: fetch 'sc_http_req_rate(0)': table 'f' does not store http_req_rate`,
      `${base + 4}: 'sc-inc-gpc' on sc0: table 'f' does not store gpc element 0`,
      `${base + 6}: 'sc-set-gpt' on sc1: table 'mesh/rl' does not store gpt element 0`,
    ]);
  });

  it('warns that http rules of a tcp-mode proxy never run', () => {
    const w = warnings(['defaults', '  mode tcp', ...HEAD.slice(2), 'frontend f', '  bind :1', '  default_backend b', '  http-request deny'].join('\n'));
    expect(w).toEqual([`11: frontend 'f' is in tcp mode: its 'http-request' rules never run`]);
  });
});

describe("the HAProxy manual's examples (fixture)", () => {
  const text = readFileSync(manualFixture, 'utf8');

  it('parse with no problem and every cited example line is a rule', () => {
    const p = parseHaproxyConfig(text, manualFixture, {});
    const v = validateConfig(p.config);
    expect(p.issues.items).toEqual([]);
    expect(p.warnings.items).toEqual([]);
    expect(v.issues.items).toEqual([]);
    expect(v.warnings.items).toEqual([]);
    const cited = text.split('\n').filter((l) => /^\s*# configuration\.txt /.test(l)).length;
    expect(cited).toBeGreaterThanOrEqual(60);
    const c = p.config;
    const rules = [...c.frontends.map((f) => f.rules), ...c.backends.map((b) => b.rules)];
    const count = (k: 'acls' | 'httpRequest' | 'tcpRequestConnection' | 'tcpRequestContent') => rules.reduce((n, r) => n + (r?.[k].length ?? 0), 0);
    expect(count('acls')).toBeGreaterThanOrEqual(25);
    expect(count('httpRequest')).toBeGreaterThanOrEqual(9);
    expect(count('tcpRequestConnection')).toBeGreaterThanOrEqual(8);
    expect(count('tcpRequestContent')).toBeGreaterThanOrEqual(8);
  });

  it('are valid for HAProxy itself (haproxy -c)', () => {
    requireHaproxy();
    const out = execFileSync('haproxy', ['-c', '-f', manualFixture], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(out).toMatch(/Configuration file is valid/);
    const r = spawnSync('haproxy', ['-c', '-f', manualFixture], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stderr + r.stdout).not.toMatch(/\[WARNING\]|\[ALERT\]/);
  });
});
