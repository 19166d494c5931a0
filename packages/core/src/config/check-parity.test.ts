/**
 * `stickmesh check` against `haproxy -c` on the same files (HAProxy 2.6 answers noted beside
 * each case): "did you mean" for mistyped words, problems reported at their own line, no
 * spurious follow-up errors, warnings kept beside errors, and `errorfile` read at load.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import { parseConfigText } from './load.js';
import { MAX_ERRORFILE_BYTES, parseErrorResponse } from './errorfile.js';
import { requireHaproxy } from '../../../../test/helpers/haproxy.js';

function fail(text: string): ConfigError {
  try {
    parseConfigText(text, 'x.cfg', 'haproxy', {});
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected the config to be refused');
}

const errorsOf = (text: string): string[] => fail(text).message.split('\n');
const cfg = (...lines: string[]): string => lines.join('\n') + '\n';

const BASE = ['defaults', '  mode http', '  timeout connect 1s', '  timeout client 1s', '  timeout server 1s'];
const FE = ['frontend fe', '  bind 127.0.0.1:8080', '  default_backend be'];
const BE = ['backend be', '  server s1 127.0.0.1:9000'];

describe('did you mean', () => {
  // haproxy: "unknown keyword 'timout' in 'backend' section; did you mean 'timeout' maybe ?"
  it('a mistyped keyword in a proxy section, in global, and outside any section', () => {
    expect(errorsOf(cfg(...BASE, ...FE, ...BE, '  timout server 5s'))).toEqual([`x.cfg:11: 'timout': unknown keyword 'timout' in backend 'be' section; did you mean 'timeout'?`]);
    expect(errorsOf(cfg('global', '  maxcon 10', ...BASE, ...FE, ...BE))).toEqual([`x.cfg:2: 'maxcon': unknown keyword 'maxcon' in 'global' section; did you mean 'maxconn'?`]);
    expect(errorsOf(cfg('globl', ...BASE, ...FE, ...BE))[0]).toMatch(/x\.cfg:1: 'globl': .*outside of any section.*; did you mean 'global'\?$/);
    expect(errorsOf(cfg(...BASE, ...FE, ...BE, '  frobnicate 1'))[0]).not.toMatch(/did you mean/);
  });

  // haproxy: "'server be/s1' : unknown keyword 'chek'; did you mean 'check' maybe ?"
  it('a mistyped server option', () => {
    expect(errorsOf(cfg(...BASE, ...FE, 'backend be', '  server s1 127.0.0.1:9000 chek'))).toEqual([`x.cfg:10: 'server': unknown server option 'chek'; did you mean 'check'?`]);
    expect(errorsOf(cfg(...BASE, ...FE, 'backend be', '  server s1 127.0.0.1:9000 frobnicate'))[0]).toMatch(/server option 'frobnicate' is not supported \(check, cookie/);
  });

  // haproxy: "'bind 127.0.0.1:8080' unknown keyword 'strict-snii'. Did you mean 'strict-sni' maybe ?"
  it('a mistyped bind option', () => {
    expect(errorsOf(cfg(...BASE, 'frontend fe', '  bind 127.0.0.1:8080 ssl crt /x.pem strict-snii', '  default_backend be', ...BE))).toEqual([`x.cfg:7: 'bind': unknown bind option 'strict-snii'; did you mean 'strict-sni'?`]);
  });

  // haproxy lists the algorithms; stickmesh lists its own and names the nearest.
  it('a mistyped balance algorithm', () => {
    expect(errorsOf(cfg(...BASE, ...FE, ...BE, '  balance roundrobn'))).toEqual([`x.cfg:11: 'balance': algorithm 'roundrobn' is not supported (roundrobin, leastconn, source, random); did you mean 'roundrobin'?`]);
  });

  // haproxy: "unknown option 'redispach'; did you mean 'redispatch' maybe ?"
  it('a mistyped option name and timeout name', () => {
    expect(errorsOf(cfg(...BASE, ...FE, ...BE, '  option redispach'))).toEqual([`x.cfg:11: 'option redispach': unknown option 'redispach'; did you mean 'redispatch'?`]);
    expect(errorsOf(cfg(...BASE, ...FE, ...BE, '  timeout sever 5s'))[0]).toMatch(/unknown timeout 'sever' .*; did you mean 'server'\?$/);
  });
});

describe('where problems are reported', () => {
  // haproxy: "Proxy 'fe': unable to find required default_backend: 'bee'." (no line); ours names the line.
  it("a missing default_backend target at the default_backend line, with the nearest backend", () => {
    expect(errorsOf(cfg(...BASE, 'frontend fe', '  bind 127.0.0.1:8080', '', '  default_backend bee', ...BE))).toEqual([`x.cfg:9: 'default_backend': frontend 'fe': backend 'bee' does not exist; did you mean 'be'?`]);
  });

  it("a frontend whose 'bind ... ssl' line failed is not also 'without bind'; one without any bind line is", () => {
    const e = errorsOf(cfg(...BASE, 'frontend fe', '  bind 127.0.0.1:8443 ssl crt /x.pem bogus-opt', '  default_backend be', ...BE));
    expect(e).toEqual([`x.cfg:7: 'bind': unknown bind option 'bogus-opt'`]);
    expect(errorsOf(cfg(...BASE, 'frontend fe', '  default_backend be', ...BE))).toEqual([`x.cfg:6: 'bind': frontend 'fe' has no 'bind' line`]);
  });

  // haproxy -c prints its warnings and its alerts together.
  it('keeps the warnings beside the errors', () => {
    const e = fail(cfg('global', '  daemon', ...BASE, ...FE, ...BE, '  option httplog', '  balance nope'));
    expect(e.issues.map((i) => i.loc.line)).toEqual([14]);
    expect(e.warnings.map((w) => `${w.loc.line} ${w.directive}`)).toEqual(['2 daemon', '13 option httplog']);
    expect(e.warningCount).toBe(2);
  });
});

describe('errorfile', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sm-ef-'));
  const file = (name: string, body: string | Buffer): string => {
    const f = path.join(dir, name);
    writeFileSync(f, body);
    return f;
  };
  const withEf = (line: string): string => cfg(...BASE, `  ${line}`, ...FE, ...BE);

  it('reads the file at load, in defaults, frontend and backend; the last line for a code wins', () => {
    const a = file('a.http', 'HTTP/1.0 503 Service Unavailable\nContent-Type: text/html\n\n<p>a</p>\n');
    const b = file('b.http', 'HTTP/1.1 503 Busy\r\nContent-Length: 2\r\n\r\nb\n');
    const { config } = parseConfigText(cfg(...BASE, `  errorfile 503 ${a}`, ...FE, `  errorfile 400 ${a}`, ...BE, `  errorfile 503 ${b}`), 'x.cfg', 'haproxy', {});
    // Bare LF line ends in the head become CRLF; a CRLF file is kept byte for byte.
    expect(config.frontends[0]!.errorFiles!.map((e) => [e.status, e.response])).toEqual([
      [503, 'HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/html\r\n\r\n<p>a</p>\n'],
      [400, 'HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/html\r\n\r\n<p>a</p>\n'],
    ]);
    expect(config.backends[0]!.errorFiles!.map((e) => [e.status, e.response, e.loc.line])).toEqual([[503, 'HTTP/1.1 503 Busy\r\nContent-Length: 2\r\n\r\nb\n', 13]]);
  });

  // haproxy: "errorfile : status code '418' not handled." / "error opening file" / "unable to parse headers"
  it('refuses a code the proxy never sends, a missing, oversized or malformed file, naming the line', () => {
    const ok = file('ok.http', 'HTTP/1.0 200 OK\r\n\r\n');
    expect(errorsOf(withEf(`errorfile 418 ${ok}`))).toEqual([`x.cfg:6: 'errorfile': status code '418' is not one the proxy generates (200, 400, 401, 403, 404, 405, 407, 408, 410, 413, 425, 429, 500, 501, 502, 503, 504)`]);
    expect(errorsOf(withEf(`errorfile 503 ${dir}/missing.http`))).toEqual([`x.cfg:6: 'errorfile': cannot read '${dir}/missing.http': no such file or directory`]);
    const big = file('big.http', Buffer.concat([Buffer.from('HTTP/1.0 503 X\r\n\r\n'), Buffer.alloc(MAX_ERRORFILE_BYTES, 120)]));
    expect(errorsOf(withEf(`errorfile 503 ${big}`))[0]).toMatch(/is larger than 16384 bytes/);
    expect(errorsOf(withEf(`errorfile 503 ${file('html.http', '<html>sorry</html>\n')}`))[0]).toMatch(/'errorfile': '.*html\.http': not an HTTP response/);
    expect(errorsOf(withEf(`errorfile 503 ${file('cl.http', 'HTTP/1.1 503 X\r\nContent-Length: 10\r\n\r\nbody')}`))[0]).toMatch(/Content-Length 10 does not match the body's 4 bytes/);
    expect(errorsOf(withEf(`errorfile 503`))[0]).toMatch(/expects 'errorfile CODE FILE'/);
    // An empty file is HAProxy's way to close without answering.
    expect(parseConfigText(withEf('errorfile 408 /dev/null'), 'x.cfg', 'haproxy', {}).config.frontends[0]!.errorFiles![0]!.response).toBe('');
  });

  it('native YAML: errorFiles, a map of status code to file, as errorfile lines', () => {
    const f = file('n503.http', 'HTTP/1.1 503 X\r\nContent-Length: 0\r\n\r\n');
    const yaml = `defaults:\n  mode: http\n  errorFiles: { 503: ${f} }\nfrontends:\n  - name: fe\n    bind: ["127.0.0.1:8080"]\n    defaultBackend: be\nbackends:\n  - name: be\n    errorFiles:\n      400: ${f}\n    servers: [{ name: s1, address: "127.0.0.1:9000" }]\n`;
    const { config } = parseConfigText(yaml, 'c.yaml', undefined, {});
    expect(config.backends[0]!.errorFiles!.map((e) => [e.status, e.loc.line])).toEqual([[503, 3], [400, 11]]);
    const bad = (() => {
      try {
        parseConfigText(yaml.replace('503:', '418:'), 'c.yaml', undefined, {});
      } catch (err) {
        return (err as ConfigError).message;
      }
      return '';
    })();
    expect(bad).toMatch(/^c\.yaml:3: 'errorfile': status code '418'/);
  });

  it('checks the response head: status line, header lines, framing', () => {
    const r = (t: string) => parseErrorResponse(Buffer.from(t, 'latin1'));
    expect(r('HTTP/1.1 503 \r\nX: y\r\n\r\n')).toEqual({ response: 'HTTP/1.1 503 \r\nX: y\r\n\r\n', status: 503 });
    expect(r('HTTP/2 503 X\r\n\r\n')).toHaveProperty('error');
    expect(r('HTTP/1.1 503 X\r\nno colon here\r\n\r\n')).toHaveProperty('error');
    expect(r('HTTP/1.1 503 X\r\n folded\r\n\r\n')).toHaveProperty('error');
    expect(r('HTTP/1.1 503 X\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n')).toHaveProperty('error');
    expect(r('HTTP/1.1 503 X\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx')).toHaveProperty('error');
    expect(r('HTTP/1.1 503 X\r\nX: y')).toHaveProperty('error');
  });
});

describe('the same files through haproxy -c', () => {
  const cases: Array<[string, string[], string]> = [
    ['proxy keyword', [...BASE, ...FE, ...BE, '  timout server 5s'], 'timeout'],
    ['global keyword', ['global', '  maxcon 10', ...BASE, ...FE, ...BE], 'maxconn'],
    ['server option', [...BASE, ...FE, 'backend be', '  server s1 127.0.0.1:9000 chek'], 'check'],
    ['bind option', [...BASE, 'frontend fe', '  bind 127.0.0.1:8080 strict-snii', '  default_backend be', ...BE], 'strict-sni'],
    ['option name', [...BASE, ...FE, ...BE, '  option redispach'], 'redispatch'],
  ];
  it.each(cases)('a mistyped %s: both refuse the line and suggest the same word', (_what, lines, word) => {
    requireHaproxy();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sm-parity-'));
    const file = path.join(dir, 'x.cfg');
    writeFileSync(file, cfg(...lines));
    const h = spawnSync('haproxy', ['-c', '-f', file], { encoding: 'utf8' });
    expect(h.status).not.toBe(0);
    const line = lines.findIndex((l) => new RegExp(`\\b(timout|maxcon|chek|strict-snii|redispach)\\b`).test(l)) + 1;
    expect(h.stderr).toMatch(new RegExp(`x\\.cfg:${line}\\].*did you mean '${word}' maybe`, 'i'));
    expect(errorsOf(cfg(...lines))).toEqual([expect.stringMatching(new RegExp(`^x\\.cfg:${line}: .*; did you mean '${word}'\\?$`))]);
  });

  it('the Debian fixture is valid for both', () => {
    requireHaproxy();
    const fixture = fileURLToPath(new URL('../../../../test/fixtures/debian-haproxy/', import.meta.url));
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sm-parity-'));
    const file = path.join(dir, 'haproxy.cfg');
    writeFileSync(file, readFileSync(path.join(fixture, 'haproxy.cfg'), 'utf8').replaceAll('/etc/haproxy/errors/', `${fixture}errors/`));
    const h = spawnSync('haproxy', ['-c', '-f', file], { encoding: 'utf8' });
    expect(h.stdout + h.stderr).toMatch(/Configuration file is valid/);
    expect(h.status).toBe(0);
    expect(parseConfigText(readFileSync(file, 'utf8'), file, 'haproxy', {}).config.backends).toEqual([]);
  });
});
