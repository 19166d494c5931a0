/**
 * The catalog of sample fetches, ACL keywords, converters and predefined ACLs stickmesh supports:
 * the one list of names the config parser (which checks names, arguments and where a fetch may be
 * used) and the proxy's rule engine (proxy/src/rules, which implements each entry by its canonical
 * `name`) both read. Plain data plus lookups built once at module load.
 *
 * Names, argument shapes, output types and validity follow HAProxy's (doc/configuration.txt 7.3,
 * checked against `haproxy -c` 2.6). Differences are stated on the entry.
 */
import type { AclMatch, CounterKind, ScIndex } from './model.js';
import { HAPROXY_FETCH_NAMES } from './haproxy-fetch-names.js';

/** HAProxy's sample types as stickmesh carries them (HAProxy's `sint` is `int`, `ipv4`/`ipv6`/`addr` are `ip`). */
export type SampleType = 'str' | 'int' | 'ip' | 'bool';

/** Where a rule runs; a fetch lists the places its input exists. */
export type RuleContext = 'tcp-request connection' | 'tcp-request content' | 'http-request' | 'http-response';

export const RULE_CONTEXTS: readonly RuleContext[] = ['tcp-request connection', 'tcp-request content', 'http-request', 'http-response'];

/**
 * One fetch argument: `str` any text; `int` a decimal integer (may be negative: `hdr(x,-1)`);
 * `sc` a sticky counter number 0..2; `idx` a gpc/gpt array element 0..99; `table` a table name
 * (a backend with a stick-table, or `peers/table`), checked to exist by validate.ts.
 */
export type FetchArgKind = 'str' | 'int' | 'sc' | 'idx' | 'table';

/** What a stick-counter fetch reads or does, for the `sc*_`, `src_` and `table_` families. */
export interface CounterFetch {
  /** `sc`: a tracked counter (`sc_*(N)` or `scN_*`); `src`: the entry keyed by the client address; `table`: the whole table. */
  family: 'sc' | 'src' | 'table';
  /** `get`: the counter's value; `inc`: increments then returns (sc_inc_gpc0); `tracked`: whether scN is tracked; `cnt`/`avl`: entries used/free (table_cnt, table_avl). */
  op: 'get' | 'inc' | 'tracked' | 'cnt' | 'avl';
  /** The stored type read; absent for `tracked`, `cnt`, `avl`. */
  data?: CounterKind;
  /** Array element for gpc0/gpc1/gpt0 forms; absent when the element is the fetch's `idx` argument. */
  idx?: number;
}

export interface FetchSpec {
  /** Canonical name: the one the rule engine implements. */
  name: string;
  /** Other names for the same fetch (HAProxy's older or ACL spellings). */
  aliases: readonly string[];
  /** Argument kinds in order; the first `minArgs` are required. */
  args: readonly FetchArgKind[];
  minArgs: number;
  type: SampleType;
  /** ACL match method when neither `-m` nor a converter says otherwise. */
  match: AclMatch;
  /** Rule kinds where the fetch has input; elsewhere it is a config error. */
  where: readonly RuleContext[];
  /** `scN_*` forms: the sticky counter the name implies. */
  sc?: ScIndex;
  counter?: CounterFetch;
}

const ALL: readonly RuleContext[] = RULE_CONTEXTS;
/** Layer 5 (TLS): known once the handshake is done, so not in `tcp-request connection`. */
const L5: readonly RuleContext[] = ['tcp-request content', 'http-request', 'http-response'];
/** Request line and headers, gone once the request is forwarded. */
const HTTP_REQ: readonly RuleContext[] = ['http-request'];
/** Request facts kept for the whole exchange (method, version). */
const HTTP_REQ_KEPT: readonly RuleContext[] = ['http-request', 'http-response'];
const HTTP_RES: readonly RuleContext[] = ['http-response'];
/** Request data in the buffer. */
const CONTENT: readonly RuleContext[] = ['tcp-request content', 'http-request'];

function defaultMatch(t: SampleType): AclMatch {
  return t;
}

function f(name: string, type: SampleType, where: readonly RuleContext[], args: readonly FetchArgKind[] = [], minArgs = 0, aliases: readonly string[] = []): FetchSpec {
  return { name, aliases, args, minArgs, type, match: defaultMatch(type), where };
}

/** Counter fetch suffixes with the stored type they read (gpc0/gpc1/gpt0 fixed-element forms included). */
const COUNTER_READS: ReadonlyArray<[suffix: string, data: CounterKind, idx?: number]> = [
  ['conn_cnt', 'conn_cnt'], ['conn_cur', 'conn_cur'], ['conn_rate', 'conn_rate'],
  ['sess_cnt', 'sess_cnt'], ['sess_rate', 'sess_rate'],
  ['http_req_cnt', 'http_req_cnt'], ['http_req_rate', 'http_req_rate'],
  ['http_err_cnt', 'http_err_cnt'], ['http_err_rate', 'http_err_rate'],
  ['http_fail_cnt', 'http_fail_cnt'], ['http_fail_rate', 'http_fail_rate'],
  ['bytes_in_rate', 'bytes_in_rate'], ['bytes_out_rate', 'bytes_out_rate'],
  ['get_gpc0', 'gpc', 0], ['get_gpc1', 'gpc', 1], ['gpc0_rate', 'gpc_rate', 0], ['gpc1_rate', 'gpc_rate', 1],
  ['get_gpt0', 'gpt', 0],
];

/** Indexed forms: `sc_get_gpc(idx,N[,T])`, `src_get_gpc(idx[,T])` ... */
const COUNTER_INDEXED: ReadonlyArray<[suffix: string, data: CounterKind, op: 'get' | 'inc']> = [
  ['get_gpc', 'gpc', 'get'], ['gpc_rate', 'gpc_rate', 'get'], ['get_gpt', 'gpt', 'get'], ['inc_gpc', 'gpc', 'inc'],
];

function counterFetches(): FetchSpec[] {
  const out: FetchSpec[] = [];
  const reads: Array<[string, CounterKind | undefined, number | undefined, CounterFetch['op'], SampleType]> = [
    ...COUNTER_READS.map(([s, d, i]): [string, CounterKind, number | undefined, CounterFetch['op'], SampleType] => [s, d, i, 'get', 'int']),
    ['inc_gpc0', 'gpc', 0, 'inc', 'int'],
    ['inc_gpc1', 'gpc', 1, 'inc', 'int'],
  ];
  for (const [suffix, data, idx, op, type] of reads) {
    const counter = (family: CounterFetch['family']): CounterFetch => ({ family, op, ...(data ? { data } : {}), ...(idx !== undefined ? { idx } : {}) });
    out.push({ ...f(`sc_${suffix}`, type, ALL, ['sc', 'table'], 1), counter: counter('sc') });
    for (const n of [0, 1, 2] as const) out.push({ ...f(`sc${n}_${suffix}`, type, ALL, ['table'], 0), sc: n, counter: counter('sc') });
    out.push({ ...f(`src_${suffix}`, type, ALL, ['table'], 0), counter: counter('src') });
  }
  out.push({ ...f('sc_tracked', 'bool', ALL, ['sc', 'table'], 1), counter: { family: 'sc', op: 'tracked' } });
  for (const n of [0, 1, 2] as const) out.push({ ...f(`sc${n}_tracked`, 'bool', ALL, ['table'], 0), sc: n, counter: { family: 'sc', op: 'tracked' } });
  for (const [suffix, data, op] of COUNTER_INDEXED) {
    out.push({ ...f(`sc_${suffix}`, 'int', ALL, ['idx', 'sc', 'table'], 2), counter: { family: 'sc', op, data } });
    out.push({ ...f(`src_${suffix}`, 'int', ALL, ['idx', 'table'], 1), counter: { family: 'src', op, data } });
  }
  out.push({ ...f('table_cnt', 'int', ALL, ['table'], 0), counter: { family: 'table', op: 'cnt' } });
  out.push({ ...f('table_avl', 'int', ALL, ['table'], 0), counter: { family: 'table', op: 'avl' } });
  return out;
}

/** Every fetch stickmesh implements. */
export const FETCHES: readonly FetchSpec[] = [
  // Layer 4 and internal: everywhere.
  f('src', 'ip', ALL),
  f('src_port', 'int', ALL),
  f('dst', 'ip', ALL),
  f('dst_port', 'int', ALL),
  f('always_true', 'bool', ALL),
  f('always_false', 'bool', ALL),
  f('int', 'int', ALL, ['int'], 1),
  f('str', 'str', ALL, ['str'], 1),
  // Layer 5.
  f('ssl_fc', 'bool', L5),
  f('ssl_fc_sni', 'str', L5),
  // Request data in the buffer (for the predefined REQ_CONTENT and WAIT_END).
  f('req.len', 'int', CONTENT, [], 0, ['req_len']),
  f('wait_end', 'bool', CONTENT),
  // HTTP request.
  f('path', 'str', HTTP_REQ),
  f('url', 'str', HTTP_REQ),
  f('query', 'str', HTTP_REQ),
  f('base', 'str', HTTP_REQ),
  f('url_param', 'str', HTTP_REQ, ['str', 'str'], 0, ['urlp']),
  f('req.hdr', 'str', HTTP_REQ, ['str', 'int'], 0, ['hdr']),
  f('req.fhdr', 'str', HTTP_REQ, ['str', 'int'], 0),
  f('req.hdr_cnt', 'int', HTTP_REQ, ['str'], 0, ['hdr_cnt']),
  f('req.hdr_ip', 'ip', HTTP_REQ, ['str', 'int'], 0, ['hdr_ip']),
  f('req.hdr_val', 'int', HTTP_REQ, ['str', 'int'], 0, ['hdr_val']),
  f('req.cook', 'str', HTTP_REQ, ['str'], 0, ['cook']),
  f('req.cook_cnt', 'int', HTTP_REQ, ['str'], 0, ['cook_cnt']),
  // HTTP request facts kept for the response.
  f('method', 'str', HTTP_REQ_KEPT),
  f('req.ver', 'str', HTTP_REQ_KEPT, [], 0, ['req_ver']),
  f('req.proto_http', 'bool', HTTP_REQ_KEPT, [], 0, ['req_proto_http']),
  // HTTP response.
  f('status', 'int', HTTP_RES),
  f('res.hdr', 'str', HTTP_RES, ['str', 'int'], 0, ['shdr']),
  f('res.hdr_cnt', 'int', HTTP_RES, ['str'], 0, ['shdr_cnt']),
  ...counterFetches(),
];

/** Fetches by canonical name and by alias. */
export const FETCH_BY_NAME: ReadonlyMap<string, FetchSpec> = (() => {
  const m = new Map<string, FetchSpec>();
  for (const s of FETCHES) {
    m.set(s.name, s);
    for (const a of s.aliases) m.set(a, s);
  }
  return m;
})();

/** An ACL-only keyword: a fetch with an implied match method (`path_beg` = `path -m beg`). */
export interface AclKeyword {
  /** Canonical name of the fetch in FETCHES. */
  fetch: string;
  match: AclMatch;
}

const SUFFIX_MATCH: ReadonlyArray<[string, AclMatch]> = [['beg', 'beg'], ['dir', 'dir'], ['dom', 'dom'], ['end', 'end'], ['len', 'len'], ['reg', 'reg'], ['sub', 'sub']];

/** HAProxy's derived ACL keywords for the fetches above (its ACL keyword table). */
export const ACL_KEYWORDS: ReadonlyMap<string, AclKeyword> = (() => {
  const m = new Map<string, AclKeyword>();
  for (const [prefix, fetch] of [['base', 'base'], ['cook', 'req.cook'], ['hdr', 'req.hdr'], ['path', 'path'], ['url', 'url'], ['urlp', 'url_param'], ['shdr', 'res.hdr']] as const) {
    for (const [sfx, match] of SUFFIX_MATCH) m.set(`${prefix}_${sfx}`, { fetch, match });
  }
  m.set('ssl_fc_sni_end', { fetch: 'ssl_fc_sni', match: 'end' });
  m.set('ssl_fc_sni_reg', { fetch: 'ssl_fc_sni', match: 'reg' });
  return m;
})();

export interface ConverterSpec {
  name: string;
  /** Argument kinds; the first `minArgs` are required. `mask` is an IPv4 mask (bits or dotted), `mask6` bits 0..128. */
  args: readonly ('mask' | 'mask6')[];
  minArgs: number;
  /** Input types accepted. */
  input: readonly SampleType[];
  output: SampleType;
}

/** The converters stickmesh implements; any other is a config error. */
export const CONVERTERS: ReadonlyMap<string, ConverterSpec> = new Map<string, ConverterSpec>([
  ['lower', { name: 'lower', args: [], minArgs: 0, input: ['str'], output: 'str' }],
  ['upper', { name: 'upper', args: [], minArgs: 0, input: ['str'], output: 'str' }],
  ['ipmask', { name: 'ipmask', args: ['mask', 'mask6'], minArgs: 1, input: ['ip'], output: 'ip' }],
]);

/** A predefined ACL's meaning: one ACL term over a fetch of FETCHES. */
export interface PredefinedAcl {
  fetch: string;
  args: readonly string[];
  match: AclMatch;
  patterns: readonly string[];
}

/** HAProxy's predefined ACLs (configuration.txt 7.4). A section's own ACL of the same name wins. */
export const PREDEFINED_ACLS: ReadonlyMap<string, PredefinedAcl> = new Map<string, PredefinedAcl>([
  ['FALSE', { fetch: 'always_false', args: [], match: 'bool', patterns: [] }],
  ['HTTP', { fetch: 'req.proto_http', args: [], match: 'bool', patterns: [] }],
  ['HTTP_1.0', { fetch: 'req.ver', args: [], match: 'str', patterns: ['1.0'] }],
  ['HTTP_1.1', { fetch: 'req.ver', args: [], match: 'str', patterns: ['1.1'] }],
  ['HTTP_2.0', { fetch: 'req.ver', args: [], match: 'str', patterns: ['2.0'] }],
  ['HTTP_CONTENT', { fetch: 'req.hdr_val', args: ['content-length'], match: 'int', patterns: ['gt', '0'] }],
  ['HTTP_URL_ABS', { fetch: 'url', args: [], match: 'reg', patterns: ['^[^/:]*://'] }],
  ['HTTP_URL_SLASH', { fetch: 'url', args: [], match: 'beg', patterns: ['/'] }],
  ['HTTP_URL_STAR', { fetch: 'url', args: [], match: 'str', patterns: ['*'] }],
  ['LOCALHOST', { fetch: 'src', args: [], match: 'ip', patterns: ['127.0.0.1/8', '::1'] }],
  ['METH_CONNECT', { fetch: 'method', args: [], match: 'str', patterns: ['CONNECT'] }],
  ['METH_DELETE', { fetch: 'method', args: [], match: 'str', patterns: ['DELETE'] }],
  ['METH_GET', { fetch: 'method', args: [], match: 'str', patterns: ['GET', 'HEAD'] }],
  ['METH_HEAD', { fetch: 'method', args: [], match: 'str', patterns: ['HEAD'] }],
  ['METH_OPTIONS', { fetch: 'method', args: [], match: 'str', patterns: ['OPTIONS'] }],
  ['METH_POST', { fetch: 'method', args: [], match: 'str', patterns: ['POST'] }],
  ['METH_PUT', { fetch: 'method', args: [], match: 'str', patterns: ['PUT'] }],
  ['METH_TRACE', { fetch: 'method', args: [], match: 'str', patterns: ['TRACE'] }],
  ['REQ_CONTENT', { fetch: 'req.len', args: [], match: 'int', patterns: ['gt', '0'] }],
  ['TRUE', { fetch: 'always_true', args: [], match: 'bool', patterns: [] }],
  ['WAIT_END', { fetch: 'wait_end', args: [], match: 'bool', patterns: [] }],
]);

/** Names of the predefined ACLs. */
export const PREDEFINED_ACL_NAMES: readonly string[] = [...PREDEFINED_ACLS.keys()];

/** The fetch behind a fetch name or alias; undefined if stickmesh does not implement it. */
export function findFetch(name: string): FetchSpec | undefined {
  return FETCH_BY_NAME.get(name);
}

/** Whether `name` is a fetch or ACL keyword of HAProxy's (implemented by stickmesh or not). */
export function isHaproxyFetchName(name: string): boolean {
  return HAPROXY_FETCH_NAMES.has(name) || FETCH_BY_NAME.has(name) || ACL_KEYWORDS.has(name);
}
