import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import { loadConfig, parseConfigText } from './load.js';
import { unsupportedYet } from './validate.js';
import { tokenizeLine } from './tokenize.js';
import { parseHostPort, parseSize, parseTime } from './units.js';

const fixtures = fileURLToPath(new URL('../../../../test/fixtures/configs/', import.meta.url));

function errorsOf(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfigText(text, 'x.cfg', 'haproxy', env);
  } catch (err) {
    if (err instanceof ConfigError) return err.message.split('\n');
    throw err;
  }
  return [];
}

const cfg = (...lines: string[]) => lines.join('\n') + '\n';

describe('units', () => {
  it('parses HAProxy times, sizes and addresses', () => {
    expect(parseTime('5s')).toBe(5000);
    expect(parseTime('100')).toBe(100);
    expect(parseTime('30m')).toBe(1_800_000);
    expect(parseTime('1h')).toBe(3_600_000);
    expect(parseTime('500us')).toBe(1);
    expect(parseTime('5 s')).toMatch(/not a time/);
    expect(parseSize('1m')).toBe(1_048_576);
    expect(parseSize('200k')).toBe(204_800);
    expect(parseSize('x')).toMatch(/not a size/);
    expect(parseHostPort(':80')).toEqual({ host: '', port: 80 });
    expect(parseHostPort('*:80')).toEqual({ host: '', port: 80 });
    expect(parseHostPort('10.0.0.1:8080')).toEqual({ host: '10.0.0.1', port: 8080 });
    expect(parseHostPort('[::1]:8080')).toEqual({ host: '::1', port: 8080 });
    expect(parseHostPort('::1:8080')).toEqual({ host: '::1', port: 8080 });
    expect(parseHostPort('web.local')).toEqual({ host: 'web.local', port: undefined });
    expect(parseHostPort('h:99999')).toMatch(/out of range/);
  });
  it('tokenizes with HAProxy quoting and comments', () => {
    expect(tokenizeLine('  server web1 127.0.0.1:80 # comment')).toEqual({ tokens: ['server', 'web1', '127.0.0.1:80'] });
    expect(tokenizeLine(`option httpchk GET / "HTTP/1.1\\r\\nHost:\\ a"`)).toEqual({ tokens: ['option', 'httpchk', 'GET', '/', 'HTTP/1.1\r\nHost: a'] });
    expect(tokenizeLine(`dynamic-cookie-key "$KEY"`, { KEY: 's3cr3t' })).toEqual({ tokens: ['dynamic-cookie-key', 's3cr3t'] });
    expect(tokenizeLine(`x 'a#b $KEY'`, { KEY: 'no' })).toEqual({ tokens: ['x', 'a#b $KEY'] });
    expect(tokenizeLine(`x "open`)).toEqual({ error: 'unterminated double quote' });
  });
});

describe('haproxy.cfg front door', () => {
  it('loads every fixture config (the guides as written, addresses filled in)', () => {
    const files = readdirSync(fixtures).filter((f) => !f.startsWith('bad'));
    expect(files.length).toBeGreaterThanOrEqual(6);
    for (const f of files) expect(() => loadConfig(path.join(fixtures, f), {}), f).not.toThrow();
  });

  it('models the guide cookie config exactly', () => {
    const { config } = loadConfig(path.join(fixtures, 'guide1-cookie.cfg'), {});
    const fe = config.frontends[0]!;
    expect(fe).toMatchObject({ name: 'mywebapp', mode: 'http', defaultBackend: 'webservers' });
    expect(fe.binds).toEqual([{ host: '', port: 80, loc: { file: expect.stringContaining('guide1-cookie.cfg'), line: 4 } }]);
    const be = config.backends[0]!;
    expect(be).toMatchObject({ name: 'webservers', mode: 'http', balance: 'roundrobin', redispatch: false, retries: 3 });
    expect(be.cookie).toMatchObject({ name: 'SERVER', mode: 'insert', indirect: true, nocache: true, dynamic: false, maxidle: 0 });
    expect(be.servers.map((s) => [s.name, s.host, s.port, s.check, s.cookie, s.inter, s.rise, s.fall, s.weight])).toEqual([
      ['web1', '127.0.0.1', 9001, true, 'web1', 2000, 2, 3, 1],
      ['web2', '127.0.0.1', 9002, true, 'web2', 2000, 2, 3, 1],
    ]);
  });

  it('models dynamic cookies, resolvers and server-template, and start accepts them', () => {
    const { config } = loadConfig(path.join(fixtures, 'guide1-dynamic-dns.cfg'), {});
    const be = config.backends[0]!;
    expect(be.cookie?.dynamic).toBe(true);
    expect(be.dynamicCookieKey).toBe('mysecretphrase');
    expect(be.serverTemplates[0]).toMatchObject({ prefix: 'web', count: 10, fqdn: 'myservice.example.local', port: 80, resolvers: 'mydns', initAddr: ['libc', 'none'] });
    expect(config.resolvers[0]).toMatchObject({ name: 'mydns', acceptedPayloadSize: 8192, nameservers: [{ name: 'dns1', host: '127.0.0.1', port: 5353 }] });
    expect(unsupportedYet(config)).toEqual([]);
  });

  it('parses signed cookies and their key ring, and checks it', () => {
    const base = (extra: string): string =>
      `backend b\n mode http\n cookie SRV insert indirect sign\n${extra} server s1 127.0.0.1:80 cookie s1\n`;
    const errs = (text: string): string => {
      try {
        parseConfigText(text, 'x.cfg');
        return '';
      } catch (err) {
        if (err instanceof ConfigError) return err.message;
        throw err;
      }
    };
    const ok = parseConfigText(base(' cookie-key k1 0123456789abcdef0\n cookie-key k2 fedcba98765432100 current\n'), 'x.cfg');
    expect(ok.config.backends[0]!.cookie?.sign).toBe(true);
    expect(ok.config.backends[0]!.cookieKeys.map((k) => [k.id, k.current])).toEqual([['k1', false], ['k2', true]]);
    const noKey = errs(base(''));
    expect(noKey).toMatch(/'sign' needs at least one 'cookie-key/);
    const twoCurrent = errs(base(' cookie-key k1 0123456789abcdef0 current\n cookie-key k2 fedcba98765432100 current\n'));
    expect(twoCurrent).toMatch(/only one 'cookie-key' may be 'current'/);
    const shortSecret = errs(base(' cookie-key k1 short\n'));
    expect(shortSecret).toMatch(/at least 16 characters/);
    const rewrite = errs('backend b\n mode http\n cookie SRV rewrite sign\n');
    expect(rewrite).toMatch(/'sign' requires 'insert'/);
  });

  it('models peers stick tables and stick rules', () => {
    const { config } = loadConfig(path.join(fixtures, 'guide1-peers-src.cfg'), {});
    expect(config.peers[0]).toMatchObject({ name: 'sticktables', bind: { host: '', port: 10000 }, peers: [{ name: 'loadbalancer1' }] });
    expect(config.peers[0]!.tables[0]).toMatchObject({ id: 'sticktables/sticky-sessions', type: 'ip', size: 1_048_576, peers: 'sticktables' });
    expect(config.backends[0]!.stickRules.map((r) => [r.kind, r.pattern, r.table])).toEqual([
      ['match', 'src', 'sticktables/sticky-sessions'],
      ['store-request', 'src', 'sticktables/sticky-sessions'],
    ]);
    expect(unsupportedYet(config)).toEqual([]);
  });

  it('applies defaults, listen sections and every cookie and server option', () => {
    const { config, warnings } = parseConfigText(
      cfg(
        'defaults',
        '  mode http',
        '  timeout connect 2s',
        '  timeout client 1m',
        '  option redispatch',
        '  retries 2',
        '  default-server inter 3s fall 5',
        'listen app',
        '  bind 127.0.0.1:8000,127.0.0.1:8001',
        '  balance source',
        '  hash-type consistent',
        '  cookie SID insert indirect nocache postonly httponly secure domain .a.com domain .b.com maxidle 30m maxlife 8h attr SameSite=Lax',
        '  option httpchk GET /health HTTP/1.1',
        '  http-check expect status 200-299,401',
        '  option forwardfor except 10.0.0.0/8 header X-Real-IP if-none',
        '  timeout server 45s',
        '  server a 10.0.0.1:80 check cookie A weight 10 rise 1 port 8081 maxconn 50',
        '  server b 10.0.0.2:80 check cookie B backup disabled fastinter 500ms downinter 10s',
      ),
      'x.cfg',
      'haproxy',
      {},
    );
    expect(warnings).toEqual([]);
    expect(config.frontends[0]).toMatchObject({ name: 'app', defaultBackend: 'app', mode: 'http' });
    expect(config.frontends[0]!.binds.map((b) => b.port)).toEqual([8000, 8001]);
    const be = config.backends[0]!;
    expect(be).toMatchObject({ balance: 'source', hashType: 'consistent', redispatch: true, retries: 2 });
    expect(be.timeouts).toMatchObject({ connect: 2000, client: 60000, server: 45000, tunnel: 60000 });
    expect(be.cookie).toMatchObject({ name: 'SID', postonly: true, httponly: true, secure: true, domains: ['.a.com', '.b.com'], maxidle: 1800, maxlife: 28800, attrs: ['SameSite=Lax'] });
    expect(be.httpCheck).toEqual({ method: 'GET', uri: '/health', version: 'HTTP/1.1', expect: { kind: 'status', value: '200-299,401', negate: false } });
    expect(be.forwardFor).toEqual({ header: 'X-Real-IP', except: '10.0.0.0/8', ifNone: true });
    expect(be.servers[0]).toMatchObject({ inter: 3000, fall: 5, rise: 1, weight: 10, checkPort: 8081, maxconn: 50, fastinter: 3000, downinter: 3000 });
    expect(be.servers[1]).toMatchObject({ backup: true, disabled: true, fastinter: 500, downinter: 10000, cookie: 'B' });
  });

  it('names file, line and directive for every bad line, and collects them all', () => {
    const errs = errorsOf(
      cfg(
        'frontend fe', //                                   1
        '  bind :8080', //                                  2
        '  default_backend be', //                          3
        '  balance roundrobin', //                          4 backend-only
        'backend be', //                                    5
        '  mode http', //                                   6
        '  cookie SERVER insert indirect nocache bogus', // 7
        '  server web1 check cookie web1', //               8 no address
        '  server web2 127.0.0.1:99999 check', //           9
        '  stickyness on', //                               10
        '  timeout sever 5s', //                            11
        '  option httpchk GET health', //                   12
        '  balance uri', //                                 13
        '  server web3 127.0.0.1:9003 weight 300', //       14
        '  retries x', //                                   15
      ),
    );
    expect(errs.map((e) => e.split(':').slice(0, 2).join(':'))).toEqual(
      ['x.cfg:4', 'x.cfg:7', 'x.cfg:8', 'x.cfg:9', 'x.cfg:10', 'x.cfg:11', 'x.cfg:12', 'x.cfg:13', 'x.cfg:14', 'x.cfg:15'],
    );
    expect(errs[0]).toContain(`'balance'`);
    expect(errs[1]).toContain(`'cookie'`);
    expect(errs[1]).toContain('bogus');
    expect(errs[2]).toMatch(/web1.*no address/);
    expect(errs[4]).toMatch(/'stickyness'.*unknown keyword/);
    expect(errs[5]).toContain(`'timeout sever'`);
  });

  it('rejects cross-section mistakes', () => {
    expect(errorsOf(cfg('frontend fe', ' bind :80', ' mode http', ' default_backend nope'))[0]).toMatch(/x\.cfg:4: 'default_backend'.*'nope' does not exist/);
    expect(errorsOf(cfg('frontend fe', ' bind :80', ' mode http', ' default_backend be', 'backend be', ' mode tcp'))[0]).toMatch(/http mode but backend 'be' is in tcp/);
    expect(errorsOf(cfg('backend be', ' mode tcp', ' cookie S insert'))[0]).toMatch(/x\.cfg:3: 'cookie'.*tcp mode/);
    expect(errorsOf(cfg('backend be', ' mode http', ' cookie S insert dynamic'))[0]).toMatch(/dynamic-cookie-key/);
    expect(errorsOf(cfg('backend be', ' stick match src table p/t'))[0]).toMatch(/x\.cfg:2: 'stick match'.*'p\/t' does not exist/);
    expect(errorsOf(cfg('frontend fe', ' mode http'))[0]).toMatch(/no 'bind'/);
    expect(errorsOf(cfg('backend a', 'backend a'))[0]).toMatch(/already defined/);
    expect(errorsOf(cfg('  bind :80'))[0]).toMatch(/x\.cfg:1: 'bind'.*outside of any section/);
    expect(errorsOf(cfg('backend b', ' cookie S passive'))[0]).toMatch(/unknown cookie option 'passive'/);
    expect(errorsOf(cfg('backend b', ' cookie S indirect'))[0]).toMatch(/insert', 'rewrite' or 'prefix'/);
    expect(errorsOf(cfg('backend b', ' cookie S rewrite maxidle 1h'))[0]).toMatch(/require 'insert'/);
    expect(errorsOf(cfg('backend b', ' stick on src if TRUE'))[0]).toMatch(/conditions/);
    expect(errorsOf(cfg('userlist u', ' user x password y'))[0]).toMatch(/x\.cfg:1: 'userlist'.*not supported/);
  });

  it('says which environment variable was not set when an expanded word is wrong', () => {
    const errs = errorsOf(cfg('backend b', '  mode http', '  server web1 "${WEB1_ADDR}" check'));
    expect(errs[0]).toMatch(/x\.cfg:3: 'server'.*\(environment variable WEB1_ADDR not set\)/);
    expect(tokenizeLine('bind "${A}:${B}"', { B: '80' })).toEqual({ tokens: ['bind', ':80'], unset: ['A'] });
  });

  it('accepts process/log directives with a warning that they have no effect', () => {
    const { warnings } = parseConfigText(cfg('global', ' daemon', ' log /dev/log local0', 'defaults', ' log global', ' option httplog'), 'x.cfg', 'haproxy', {});
    expect(warnings.map((w) => [w.loc.line, w.directive])).toEqual([[2, 'daemon'], [3, 'log'], [5, 'log'], [6, 'option httplog']]);
  });

  it('takes STICKMESH_* overrides over the file, and rejects bad ones', () => {
    const text = cfg('global', ' admin-bind 127.0.0.1:9200', ' log-level warn');
    const { config } = parseConfigText(text, 'x.cfg', 'haproxy', { STICKMESH_ADMIN_PORT: '0', STICKMESH_LOG_LEVEL: 'debug' });
    expect(config.global.admin).toMatchObject({ host: '127.0.0.1', port: 0 });
    expect(config.global.logLevel).toBe('debug');
    expect(parseConfigText(text, 'x.cfg', 'haproxy', {}).config.global.admin.port).toBe(9200);
    expect(errorsOf(text, { STICKMESH_LOG_LEVEL: 'loud' })[0]).toMatch(/logLevel/);
  });

  it("tells an 'admin-bind' written in the file (or the environment) from the default address", () => {
    const g = (lines: string[], env = {}) => parseConfigText(cfg('global', ...lines), 'x.cfg', 'haproxy', env).config.global.admin;
    expect(g([' admin-bind 127.0.0.1:9200'])).toEqual({ host: '127.0.0.1', port: 9200, loc: { file: 'x.cfg', line: 2 } });
    expect(g([' log-level warn']).loc).toBeUndefined();
    expect(g([' log-level warn'], { STICKMESH_ADMIN_PORT: '9300' }).loc).toEqual({ file: 'STICKMESH_ADMIN_PORT', line: 0 });
  });

  it("reads 'admin-allow-origin' as normalized origins, refusing wildcards, paths and other schemes", () => {
    const text = cfg('global', ' admin-allow-origin http://Dash.Example:8080 https://ops.example:443/', ' admin-allow-origin http://[::1]:9100');
    const { config } = parseConfigText(text, 'x.cfg', 'haproxy', {});
    expect(config.global.admin.allowOrigins).toEqual(['http://dash.example:8080', 'https://ops.example', 'http://[::1]:9100']);
    expect(parseConfigText(text, 'x.cfg', 'haproxy', { STICKMESH_ADMIN_PORT: '9200' }).config.global.admin.allowOrigins).toHaveLength(3);
    expect(errorsOf(cfg('global', ' admin-allow-origin *'))[0]).toMatch(/x\.cfg:2: 'admin-allow-origin'.*name each origin/);
    expect(errorsOf(cfg('global', ' admin-allow-origin http://a.example/path'))[0]).toMatch(/no path/);
    expect(errorsOf(cfg('global', ' admin-allow-origin ftp://a.example'))[0]).toMatch(/http or https/);
    expect(errorsOf(cfg('global', ' admin-allow-origin'))[0]).toMatch(/origin/);
  });

  it("reads 'tune.maxaccept' (HAProxy's -1 = the largest value), with an env override and range errors", () => {
    const g = (lines: string[], env = {}) => parseConfigText(cfg('global', ...lines), 'x.cfg', 'haproxy', env).config.global;
    expect(g([' log-level warn']).maxAccept).toBe(16);
    expect(g([' tune.maxaccept 4']).maxAccept).toBe(4);
    expect(g([' tune.maxaccept -1']).maxAccept).toBe(64);
    expect(g([' tune.maxaccept 4'], { STICKMESH_MAXACCEPT: '1' }).maxAccept).toBe(1);
    expect(errorsOf(cfg('global', ' tune.maxaccept 0'))[0]).toMatch(/^x\.cfg:2: 'tune\.maxaccept'/);
    expect(errorsOf(cfg('global', ' tune.maxaccept 4'), { STICKMESH_MAXACCEPT: '100' })[0]).toMatch(/maxAccept/);
  });

  it("reads 'nbthread' (1..64, default the CPUs the process may use) without a warning, with an env override and range errors", () => {
    const out = (lines: string[], env = {}) => parseConfigText(cfg('global', ...lines), 'x.cfg', 'haproxy', env);
    expect(out([' log-level warn']).config.global.nbthread).toBe(Math.min(64, os.availableParallelism()));
    const two = out([' nbthread 2']);
    expect(two.config.global.nbthread).toBe(2);
    expect(two.warnings).toEqual([]);
    expect(out([' nbthread 64']).config.global.nbthread).toBe(64);
    expect(out([' nbthread 2'], { STICKMESH_NBTHREAD: '3' }).config.global.nbthread).toBe(3);
    expect(out([' log-level warn'], { STICKMESH_NBTHREAD: '4' }).config.global.nbthread).toBe(4);
    expect(errorsOf(cfg('global', ' nbthread 0'))[0]).toMatch(/^x\.cfg:2: 'nbthread'.*1\.\.64/);
    expect(errorsOf(cfg('global', ' nbthread 65'))[0]).toMatch(/^x\.cfg:2: 'nbthread'/);
    expect(errorsOf(cfg('global', ' nbthread'))[0]).toMatch(/^x\.cfg:2: 'nbthread'/);
    expect(errorsOf(cfg('global', ' nbthread 2'), { STICKMESH_NBTHREAD: 'lots' })[0]).toMatch(/STICKMESH_NBTHREAD="lots" \(global nbthread\): must be an integer from 1 to 64/);
  });

  it('survives arbitrary garbage without throwing anything but ConfigError', () => {
    const seeds = readdirSync(fixtures).filter((f) => f.endsWith('.cfg')).map((f) => readFileSync(path.join(fixtures, f), 'utf8'));
    let rnd = 12345;
    const next = () => (rnd = (rnd * 1103515245 + 12345) & 0x7fffffff);
    for (let n = 0; n < 500; n++) {
      const s = seeds[n % seeds.length]!.split('');
      for (let k = 0; k < 5; k++) s[next() % s.length] = String.fromCharCode(next() % 128);
      try {
        parseConfigText(s.join(''), 'fuzz.cfg', 'haproxy', {});
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        for (const i of (err as ConfigError).issues) expect(i.loc.line).toBeGreaterThanOrEqual(1);
      }
    }
  });
});
