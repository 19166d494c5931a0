import { describe, expect, it } from 'vitest';
import fs, { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import { loadConfig, parseConfigText } from '../config/load.js';
import { makeCert, tempDir } from '../../../../test/helpers/certs.js';

const cfg = (...lines: string[]) => lines.join('\n') + '\n';

function fe(bind: string, global: string[] = [], mode = 'http'): string {
  return cfg('global', ...global.map((g) => `  ${g}`), 'defaults', `  mode ${mode}`, 'frontend f', `  ${bind}`, '  default_backend b', 'backend b', '  server s 127.0.0.1:8080');
}

function load(dir: string, text: string) {
  const f = path.join(dir, 'x.cfg');
  writeFileSync(f, text);
  return loadConfig(f, {});
}

function errorsOf(dir: string, text: string): string[] {
  try {
    load(dir, text);
  } catch (err) {
    if (err instanceof ConfigError) return err.message.split('\n');
    throw err;
  }
  return [];
}

describe('bind ssl: parsing', () => {
  it('reads the options, with TLS 1.2..1.3 by default', () => {
    const c = parseConfigText(fe('bind :443 ssl crt /a.pem crt /d/ alpn http/1.1 strict-sni ciphers ECDHE-ECDSA-AES128-GCM-SHA256'), 'x.cfg', 'haproxy', {});
    expect(c.config.frontends[0]!.binds[0]!.ssl).toEqual({
      crts: ['/a.pem', '/d/'], certs: [], alpn: ['http/1.1'], minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3',
      ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256', strictSni: true, noTickets: false, preferClientCiphers: false,
    });
  });

  it('applies crt-base and the global ssl-default-bind-* to later binds, the line winning', () => {
    const c = parseConfigText(
      fe('bind :443,:8443 ssl crt site.pem ssl-max-ver TLSv1.3', ['crt-base /etc/certs/', 'ssl-default-bind-options ssl-min-ver TLSv1.3 no-tls-tickets', 'ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256']),
      'x.cfg', 'haproxy', {},
    );
    const binds = c.config.frontends[0]!.binds;
    expect(binds).toHaveLength(2);
    expect(binds[0]!.ssl).toBe(binds[1]!.ssl);
    expect(binds[0]!.ssl).toMatchObject({ crts: ['/etc/certs/site.pem'], minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', noTickets: true, ciphersuites: 'TLS_AES_128_GCM_SHA256' });
    expect(c.warnings).toEqual([]);
  });

  it('narrows the versions with no-tlsv1x, ignored with a warning beside ssl-min-ver (as HAProxy)', () => {
    const v = (b: string) => parseConfigText(fe(b), 'x.cfg', 'haproxy', {});
    expect(v('bind :443 ssl crt /a no-tlsv10 no-tlsv11').config.frontends[0]!.binds[0]!.ssl).toMatchObject({ minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3' });
    expect(v('bind :443 ssl crt /a no-tlsv12').config.frontends[0]!.binds[0]!.ssl).toMatchObject({ minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' });
    expect(v('bind :443 ssl crt /a force-tlsv12').config.frontends[0]!.binds[0]!.ssl).toMatchObject({ minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' });
    const w = v('bind :443 ssl crt /a ssl-min-ver TLSv1.3 no-tlsv13');
    expect(w.config.frontends[0]!.binds[0]!.ssl).toMatchObject({ minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' });
    expect(w.warnings[0]!.message).toMatch(/ignored when 'ssl-min-ver'/);
  });

  it('drops h2 from alpn in mode http with a warning, keeps it in mode tcp', () => {
    const h = parseConfigText(fe('bind :443 ssl crt /a alpn h2,http/1.1'), 'x.cfg', 'haproxy', {});
    expect(h.config.frontends[0]!.binds[0]!.ssl!.alpn).toEqual(['http/1.1']);
    expect(h.warnings.map((w) => `${w.loc.line} ${w.message}`)).toEqual([expect.stringMatching(/^5 HTTP\/2 is not supported/)]);
    const t = parseConfigText(fe('bind :443 ssl crt /a alpn h2,http/1.1', [], 'tcp'), 'x.cfg', 'haproxy', {});
    expect(t.config.frontends[0]!.binds[0]!.ssl!.alpn).toEqual(['h2', 'http/1.1']);
    expect(t.warnings).toEqual([]);
  });

  it('refuses bad and unsupported options at file:line, warns for TLS options without ssl', () => {
    const errs = (b: string, g: string[] = []) => {
      try {
        parseConfigText(fe(b, g), 'x.cfg', 'haproxy', {});
        return [];
      } catch (e) {
        return (e as ConfigError).message.split('\n').filter((l) => !l.includes(`has no 'bind' line`));
      }
    };
    expect(errs('bind :443 ssl')).toContainEqual(expect.stringMatching(/^x\.cfg:5: 'bind': 'ssl' needs at least one 'crt'/));
    expect(errs('bind :443 ssl crt /a ssl-min-ver SSLv3')[0]).toMatch(/SSLv3 is not supported/);
    expect(errs('bind :443 ssl crt /a ssl-min-ver TLSv1.3 ssl-max-ver TLSv1.2')[0]).toMatch(/above ssl-max-ver/);
    expect(errs('bind :443 ssl crt /a accept-proxy')[0]).toMatch(/x\.cfg:5: 'bind': bind option 'accept-proxy' is not supported/);
    expect(errs('bind :443 ssl crt /a frobnicate')[0]).toMatch(/unknown bind option 'frobnicate'/);
    expect(errs('bind :443 ssl crt')[0]).toMatch(/'crt' needs a value/);
    expect(errs('bind :443 ssl crt /a', ['ssl-default-bind-options strict-sni'])[0]).toMatch(/x\.cfg:2: 'ssl-default-bind-options': 'strict-sni' is not a TLS bind option/);
    const w = parseConfigText(fe('bind :80 crt /a.pem'), 'x.cfg', 'haproxy', {});
    expect(w.config.frontends[0]!.binds[0]!.ssl).toBeUndefined();
    expect(w.warnings[0]!.message).toMatch(/without 'ssl': the bind serves plain TCP/);
  });

  it('native configs write a bind with its options', async () => {
    const { parseNativeConfig } = await import('../config/native.js');
    const out = parseNativeConfig(JSON.stringify({ frontends: [{ name: 'f', mode: 'http', bind: ':443 ssl crt /a.pem', defaultBackend: 'b' }], backends: [{ name: 'b', servers: [{ name: 's', address: '127.0.0.1:80' }] }] }), 'x.json', {});
    expect(out.issues.total).toBe(0);
    expect(out.config.frontends[0]!.binds[0]!.ssl!.crts).toEqual(['/a.pem']);
  });
});

describe('bind ssl: certificates', () => {
  it('loads a file and a directory in name order, SAN and CN names, the key beside as FILE.key', () => {
    const dir = tempDir();
    const one = makeCert(dir, 'one', 'one.test', ['www.one.test', '*.wild.test']);
    const d = path.join(dir, 'certs');
    mkdirSync(d);
    makeCert(d, 'b', 'b.test');
    makeCert(d, 'a', 'a.test');
    const sep = makeCert(dir, 'sep', 'sep.test');
    writeFileSync(path.join(d, 'c.pem'), sep.certText); // key beside it, as c.pem.key
    writeFileSync(path.join(d, 'c.pem.key'), readFileSync(sep.key, 'utf8'));
    writeFileSync(path.join(d, 'x.ocsp'), 'not a cert');
    const c = load(dir, fe(`bind :443 ssl crt ${one.pem} crt ${d}`));
    const certs = c.config.frontends[0]!.binds[0]!.ssl!.certs;
    expect(certs.map((x) => path.basename(x.file))).toEqual(['one.pem', 'a.pem', 'b.pem', 'c.pem']);
    expect(certs[0]!.names).toEqual(['www.one.test', '*.wild.test', 'one.test']);
    expect(certs[1]!.names).toEqual(['a.test']);
    expect(certs[3]!.key).toMatch(/PRIVATE KEY/);
  });

  it('names the bad file at the bind line: missing, no key, wrong key, empty directory, not a certificate', () => {
    const dir = tempDir();
    const a = makeCert(dir, 'a', 'a.test');
    const b = makeCert(dir, 'b', 'b.test');
    const nokey = path.join(dir, 'nokey.pem');
    fs.writeFileSync(nokey, a.certText);
    const wrong = path.join(dir, 'wrong.pem');
    fs.writeFileSync(wrong, a.certText + fs.readFileSync(b.key, 'utf8'));
    const empty = path.join(dir, 'empty');
    fs.mkdirSync(empty);
    const junk = path.join(dir, 'junk.pem');
    fs.writeFileSync(junk, 'hello');
    const at = (f: string) => errorsOf(dir, fe(`bind :443 ssl crt ${f}`));
    expect(at(path.join(dir, 'missing.pem'))).toEqual([`${path.join(dir, 'x.cfg')}:5: 'bind': cannot read certificate '${path.join(dir, 'missing.pem')}': no such file or directory`]);
    expect(at(nokey)[0]).toMatch(new RegExp(`:5: 'bind': no private key in '${nokey}'`));
    expect(at(wrong)[0]).toMatch(/the private key does not match the certificate of '.*wrong\.pem'/);
    expect(at(empty)[0]).toMatch(/no certificate in directory '.*empty'/);
    expect(at(junk)[0]).toMatch(/no certificate in '.*junk\.pem'/);
    expect(errorsOf(dir, fe(`bind :443 ssl crt ${a.pem} ciphers NOPE-NOTHING`))[0]).toMatch(/:5: 'bind': TLS settings refused by OpenSSL/);
  });
});
