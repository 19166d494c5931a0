import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.js';
import { parseConfigText } from './load.js';

function errorsOf(text: string, file = 'c.yaml', env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfigText(text, file, undefined, env);
  } catch (err) {
    if (err instanceof ConfigError) return err.message.split('\n');
    throw err;
  }
  return [];
}

const yaml = `global:
  admin: { port: 9300 }
defaults:
  mode: http
  timeouts: { connect: 2s, server: 40000 }
frontends:
  - name: fe
    bind: ["127.0.0.1:8080"]
    defaultBackend: be
backends:
  - name: be
    balance: leastconn
    redispatch: true
    cookie: { name: SERVER, mode: insert, indirect: true, nocache: true, maxidle: 1800, attr: SameSite=Lax }
    httpCheck: { method: GET, uri: /health, expectStatus: "200" }
    servers:
      - { name: web1, address: "127.0.0.1:9001", check: true, cookie: web1 }
      - name: web2
        address: "127.0.0.1:9002"
        cookie: web2
        weight: 3
`;

describe('native YAML/JSON front door', () => {
  it('produces the same model as the equivalent haproxy.cfg', () => {
    const native = parseConfigText(yaml, 'c.yaml', undefined, {}).config;
    const hap = parseConfigText(
      [
        'global', ' admin-bind 127.0.0.1:9300',
        'defaults', ' mode http', ' timeout connect 2s', ' timeout server 40000',
        'frontend fe', ' bind 127.0.0.1:8080', ' default_backend be',
        'backend be', ' balance leastconn', ' option redispatch',
        ' cookie SERVER insert indirect nocache maxidle 1800s attr SameSite=Lax',
        ' option httpchk GET /health HTTP/1.1', ' http-check expect status 200',
        ' server web1 127.0.0.1:9001 check cookie web1', ' server web2 127.0.0.1:9002 cookie web2 weight 3', '',
      ].join('\n'),
      'c.cfg',
      undefined,
      {},
    ).config;
    const strip = (v: unknown): unknown => JSON.parse(JSON.stringify(v, (k, x) => (k === 'loc' || k === 'defaultBackendLoc' || k === 'source' ? undefined : x)));
    expect(strip(native)).toEqual(strip(hap));
    expect(native.backends[0]!.servers[1]!.loc).toEqual({ file: 'c.yaml', line: 18 });
    expect(native.backends[0]!.cookie!.loc.line).toBe(14);
  });

  it('names the line and key of unknown keys and bad values', () => {
    const errs = errorsOf(yaml.replace('weight: 3', 'weight: 300').replace('balance: leastconn', 'balance: leastconn\n    stickyness: on'));
    expect(errs.some((e) => /^c\.yaml:13: 'backends\.0\.stickyness': unknown key 'stickyness'/.test(e))).toBe(true);
    const errs2 = errorsOf(yaml.replace('weight: 3', 'weight: 300'));
    expect(errs2).toEqual([expect.stringMatching(/^c\.yaml:18: 'server'.*out of range/)]);
    expect(errorsOf('frontends: [\n', 'x.json')[0]).toMatch(/^x\.json:\d+: 'syntax'/);
    expect(errorsOf('bogus: 1\n')[0]).toMatch(/unknown key 'bogus'/);
    expect(errorsOf('global:\n  logLevel: loud\n')[0]).toMatch(/^c\.yaml:2: 'global\.logLevel'/);
  });

  it('takes STICKMESH_* environment overrides over the file', () => {
    const { config } = parseConfigText(yaml, 'c.yaml', undefined, { STICKMESH_ADMIN_PORT: '0', STICKMESH_ADMIN_TOKEN: 't0k', STICKMESH_NODE: 'n2' });
    expect(config.global.admin).toEqual({ host: '127.0.0.1', port: 0, token: 't0k', loc: { file: 'STICKMESH_ADMIN_PORT', line: 0 } });
    expect(config.global.localPeer).toBe('n2');
  });

  it('tells an admin address written in the file or the environment from the default', () => {
    expect(parseConfigText(yaml, 'c.yaml', undefined, {}).config.global.admin.loc).toEqual({ file: 'c.yaml', line: 2 });
    const bare = yaml.replace('global:\n  admin: { port: 9300 }\n', '');
    expect(parseConfigText(bare, 'c.yaml', undefined, {}).config.global.admin.loc).toBeUndefined();
    expect(parseConfigText(bare, 'c.yaml', undefined, { STICKMESH_ADMIN_HOST: '127.0.0.5' }).config.global.admin).toMatchObject({ host: '127.0.0.5', loc: { file: 'STICKMESH_ADMIN_HOST', line: 0 } });
  });

  it('reads admin.allowOrigins as a list, or a comma-separated STICKMESH_ADMIN_ALLOW_ORIGIN', () => {
    const text = yaml.replace('admin: { port: 9300 }', 'admin: { port: 9300, allowOrigins: ["http://A.example:81", "https://b.example"] }');
    expect(parseConfigText(text, 'c.yaml', undefined, {}).config.global.admin.allowOrigins).toEqual(['http://a.example:81', 'https://b.example']);
    expect(parseConfigText(yaml, 'c.yaml', undefined, { STICKMESH_ADMIN_ALLOW_ORIGIN: 'http://c.example:9, http://d.example' }).config.global.admin.allowOrigins).toEqual(['http://c.example:9', 'http://d.example']);
    expect(errorsOf(yaml.replace('admin: { port: 9300 }', 'admin: { port: 9300, allowOrigins: ["*"] }'))[0]).toMatch(/c\.yaml:2: 'global\.admin\.allowOrigins'.*name each origin/);
  });

  it('reads global.nbthread (default the CPUs the process may use), with STICKMESH_NBTHREAD over the file and range errors at its line', () => {
    expect(parseConfigText(yaml, 'c.yaml', undefined, {}).config.global.nbthread).toBe(Math.min(64, os.availableParallelism()));
    const text = yaml.replace('admin: { port: 9300 }', 'admin: { port: 9300 }\n  nbthread: 2');
    expect(parseConfigText(text, 'c.yaml', undefined, {}).config.global.nbthread).toBe(2);
    expect(parseConfigText(text, 'c.yaml', undefined, { STICKMESH_NBTHREAD: '4' }).config.global.nbthread).toBe(4);
    expect(errorsOf(yaml.replace('admin: { port: 9300 }', 'admin: { port: 9300 }\n  nbthread: 65'))[0]).toMatch(/^c\.yaml:3: 'global\.nbthread'/);
    expect(errorsOf(yaml, 'c.yaml', { STICKMESH_NBTHREAD: '0' })[0]).toMatch(/STICKMESH_NBTHREAD="0"/);
  });

  it('reads JSON', () => {
    const { config } = parseConfigText(JSON.stringify({ backends: [{ name: 'b', mode: 'http', servers: [{ name: 's', address: '10.0.0.1:80' }] }] }), 'c.json', undefined, {});
    expect(config.backends[0]!.servers[0]).toMatchObject({ host: '10.0.0.1', port: 80 });
  });

  it('maps cookie signing and its keys onto the same model as haproxy.cfg', () => {
    const json = JSON.stringify({
      backends: [{
        name: 'b', mode: 'http',
        cookie: { name: 'SRV', mode: 'insert', sign: true },
        cookieKeys: [{ id: 'k1', secret: '0123456789abcdef0' }, { id: 'k2', secret: 'fedcba98765432100', current: true }],
        servers: [{ name: 's', address: '10.0.0.1:80', cookie: 's' }],
      }],
    });
    const { config } = parseConfigText(json, 'c.json', undefined, {});
    expect(config.backends[0]!.cookie?.sign).toBe(true);
    expect(config.backends[0]!.cookieKeys.map((k) => [k.id, k.secret, k.current])).toEqual([['k1', '0123456789abcdef0', false], ['k2', 'fedcba98765432100', true]]);
    expect(errorsOf(json.replace('"current":true', '"current":true,"x":1'), 'c.json')[0]).toMatch(/unknown key 'x'/);
  });

  it('maps server-side TLS keys onto the same model as haproxy.cfg', () => {
    const json = JSON.stringify({
      backends: [{
        name: 'b', mode: 'http',
        servers: [
          { name: 's1', address: '10.0.0.1:443', ssl: true, verify: 'none', sni: 'api.test', checkSsl: true, check: true },
          { name: 's2', address: '10.0.0.2:443', ssl: true, caFile: '@system-ca' },
        ],
      }],
    });
    const [s1, s2] = parseConfigText(json, 'c.json', undefined, {}).config.backends[0]!.servers;
    expect(s1).toMatchObject({ ssl: true, checkSsl: true, tls: { verify: 'none', sni: 'api.test' } });
    expect(s2).toMatchObject({ ssl: true, tls: { verify: 'required', caFile: '@system-ca' } });
    // HAProxy's rule holds here too: verify required (the default) without a CA is refused.
    expect(errorsOf(json.replace(',"caFile":"@system-ca"', ''), 'c.json')[0]).toMatch(/server 'b\/s2': verify is 'required' \(the default\) but no 'ca-file'/);
  });
});

describe('native rules', () => {
  const rulesYaml = `defaults:
  mode: http
  timeouts: { tarpit: 2s }
peers:
  - name: mesh
    peers: [{ name: a, address: "127.0.0.1:10000" }]
    tables:
      - { name: rl, type: ip, size: 100k, expire: 30s, store: [http_req_rate(10s), gpc0], counters: local }
frontends:
  - name: fe
    bind: ["127.0.0.1:8080"]
    defaultBackend: be
    rules:
      - acl api path_beg /api
      - http-request track-sc0 src table mesh/rl
      - http-request deny deny_status 429 if { sc_http_req_rate(0) gt 100 }
      - 'http-request set-header X-Client "%[src]"'
      - use_backend be if api
backends:
  - name: be
    servers: [{ name: s, address: "127.0.0.1:9001" }]
`;

  it('runs raw haproxy.cfg rule lines through the same parser, each at its YAML line', () => {
    const c = parseConfigText(rulesYaml, 'c.yaml', undefined, {}).config;
    const fe = c.frontends[0]!;
    expect(fe.rules!.acls[0]).toMatchObject({ name: 'api', loc: { file: 'c.yaml', line: 14 } });
    expect(fe.rules!.httpRequest.map((r) => [r.loc.line, r.action.type])).toEqual([[15, 'track-sc'], [16, 'deny'], [17, 'set-header']]);
    expect(fe.rules!.httpRequest[2]!.action).toMatchObject({ value: [{ sample: { fetch: 'src' } }] });
    expect(fe.useBackends).toEqual([{ backend: 'be', cond: expect.objectContaining({ kind: 'if' }), loc: { file: 'c.yaml', line: 18 } }]);
    expect(fe.tarpitTimeout).toBe(2000);
    expect(c.peers[0]!.tables[0]).toMatchObject({ counters: 'local', data: [{ kind: 'http_req_rate', idx: 0, period: 10000 }, { kind: 'gpc', idx: 0, period: 0 }] });
  });

  it('reports bad rule lines at their YAML line', () => {
    const bad = rulesYaml.replace('      - use_backend be if api\n', '      - http-request set-var(txn.x) src\n      - backend evil\n      - 42\n');
    expect(errorsOf(bad)).toEqual([
      `c.yaml:18: 'http-request': 'http-request set-var(txn.x)' is not supported by stickmesh (allow, deny, tarpit, return, reject, set-header, add-header, del-header, redirect, track-sc0, track-sc1, track-sc2, sc-inc-gpc0(N), sc-inc-gpc1(N), sc-inc-gpc(I,N), sc-set-gpt0(N), sc-set-gpt(I,N))`,
      `c.yaml:19: 'frontends.0.rules.5': a rule line starts with acl, http-request, http-response, tcp-request, use_backend; got 'backend'`,
      `c.yaml:20: 'frontends.0.rules.6': expected a haproxy.cfg line such as 'http-request deny if { src 10.0.0.0/8 }'`,
    ]);
  });
});
