import { afterAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../errors.js';
import { parseConfigText } from './load.js';
import { loadCaFile, loadCertKeyFile, TlsFileError } from './server-tls.js';
import { makeCa, makeCert, pkiDir } from '../../../../test/helpers/tls-pki.js';

const pki = pkiDir();
afterAll(() => pki.rm());
const ca = makeCa(pki.dir, 'ca');
const client = makeCert(ca, 'client', ['client.test']);

function load(...lines: string[]) {
  return parseConfigText(lines.join('\n') + '\n', 'x.cfg', 'haproxy', {}).config;
}

function errorsOf(...lines: string[]): string[] {
  try {
    load(...lines);
  } catch (err) {
    if (err instanceof ConfigError) return err.message.split('\n');
    throw err;
  }
  return [];
}

const be = (...servers: string[]) => ['defaults', '  mode http', 'backend b', ...servers.map((s) => `  ${s}`)];

describe('server-side TLS config', () => {
  it('models ssl, verify, ca-file, sni, crt, alpn, check-ssl and versions', () => {
    const c = load(
      ...be(
        `server s1 10.0.0.1:443 ssl verify required ca-file ${ca.caFile} sni str(api.test) crt ${client.combined} alpn http/1.1 check check-ssl ssl-min-ver TLSv1.3`,
        'server s2 10.0.0.2:443 ssl verify none',
        'server s3 10.0.0.3:80 check',
      ),
    );
    const [s1, s2, s3] = c.backends[0]!.servers;
    expect(s1).toMatchObject({
      ssl: true,
      checkSsl: true,
      check: true,
      tls: { verify: 'required', caFile: ca.caFile, sni: 'api.test', crt: client.combined, alpn: ['http/1.1'], minVersion: 'TLSv1.3' },
    });
    expect(s2).toMatchObject({ ssl: true, tls: { verify: 'none' } });
    expect(s3!.ssl).toBeUndefined();
    expect(s3!.tls).toBeUndefined();
  });

  it('refuses ssl without a CA when verify is required by default, as HAProxy does', () => {
    const errs = errorsOf(...be('server s1 10.0.0.1:443 ssl'));
    expect(errs).toHaveLength(1);
    expect(errs[0]).toMatch(/^x\.cfg:4: 'server': server 'b\/s1': verify is 'required' \(the default\) but no 'ca-file'/);
    expect(errorsOf(...be('server s1 10.0.0.1:443 ssl verify required'))[0]).toMatch(/x\.cfg:4: .*no 'ca-file'/);
    // `ssl-server-verify none` in global turns the default off; a server may still ask for it.
    const c = load('global', '  ssl-server-verify none', ...be('server s1 10.0.0.1:443 ssl', `server s2 10.0.0.1:443 ssl verify required ca-file ${ca.caFile}`));
    expect(c.backends[0]!.servers.map((s) => s.tls?.verify)).toEqual(['none', 'required']);
    // The global default applies even when written after the servers (HAProxy applies it once the file is read).
    expect(load(...be('server s1 10.0.0.1:443 ssl'), 'global', '  ssl-server-verify none').backends[0]!.servers[0]!.tls?.verify).toBe('none');
  });

  it('names the unreadable or wrong CA file at the server line', () => {
    const missing = path.join(pki.dir, 'nope.pem');
    expect(errorsOf(...be('server ok 10.0.0.9:443 ssl verify none', `server s1 10.0.0.1:443 ssl ca-file ${missing}`))).toEqual([
      `x.cfg:5: 'ca-file': server 'b/s1': cannot read the ca-file '${missing}': no such file or directory (ENOENT)`,
    ]);
    const junk = path.join(pki.dir, 'junk.pem');
    writeFileSync(junk, 'not a certificate\n');
    expect(errorsOf(...be(`server s1 10.0.0.1:443 ssl ca-file ${junk}`))[0]).toMatch(/x\.cfg:4: 'ca-file': .*'.*junk\.pem' holds no PEM certificate/);
    expect(errorsOf(...be(`server s1 10.0.0.1:443 ssl verify none crt ${ca.caFile}`))[0]).toMatch(/x\.cfg:4: 'crt': .*holds no private key/);
  });

  it('takes default-server, no-ssl, ca-base and ssl-default-server-* from global', () => {
    const c = load(
      'global',
      `  ca-base ${pki.dir}`,
      '  ssl-default-server-options ssl-min-ver TLSv1.2 no-tls-tickets',
      '  ssl-default-server-ciphers ECDHE-ECDSA-AES128-GCM-SHA256',
      ...be('default-server ssl ca-file ca.pem sni str(x.test)', 'server s1 10.0.0.1:443', 'server s2 10.0.0.2:80 no-ssl', 'server s3 10.0.0.3:443 sni str(y.test) ciphers ECDHE-ECDSA-AES256-GCM-SHA384'),
    );
    const [s1, s2, s3] = c.backends[0]!.servers;
    expect(s1).toMatchObject({ ssl: true, tls: { verify: 'required', caFile: ca.caFile, sni: 'x.test', minVersion: 'TLSv1.2', noTickets: true, ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' } });
    expect(s2!.ssl).toBe(false);
    expect(s3!.tls).toMatchObject({ sni: 'y.test', ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384' });
  });

  it('reports bad TLS words with the line', () => {
    expect(errorsOf(...be('server s1 10.0.0.1:443 ssl verify optional'))[0]).toMatch(/x\.cfg:4: .*'verify' on a server takes 'none' or 'required'/);
    expect(errorsOf(...be('server s1 10.0.0.1:443 ssl verify none sni req.hdr(host)'))[0]).toMatch(/x\.cfg:4: .*'sni req\.hdr\(host\)': stickmesh takes a fixed server name/);
    expect(errorsOf(...be('server s1 10.0.0.1:443 ssl verify none alpn h2,http/1.1'))[0]).toMatch(/x\.cfg:4: .*HTTP\/1\.1 to servers/);
    expect(errorsOf(...be('server s1 10.0.0.1:443 ssl verify none ssl-min-ver SSLv3'))[0]).toMatch(/SSLv3 is not available/);
    expect(errorsOf(...be('server s1 10.0.0.1:443 ssl verify none ssl-min-ver TLSv1.3 ssl-max-ver TLSv1.2'))[0]).toMatch(/ssl-min-ver TLSv1\.3 is above ssl-max-ver TLSv1\.2/);
    expect(errorsOf(...be('server s1 10.0.0.1:443 ssl verify none ciphers NOT-A-CIPHER'))[0]).toMatch(/x\.cfg:4: 'ciphers': .*cipher list not accepted/);
    expect(errorsOf('global', '  ssl-default-server-options prefer-client-ciphers')[0]).toMatch(/x\.cfg:2: .*option 'prefer-client-ciphers' is not supported/);
    expect(errorsOf('global', '  ssl-server-verify maybe')[0]).toMatch(/x\.cfg:2: .*expects 'none' or 'required'/);
    // mode tcp may offer any protocol.
    expect(errorsOf('defaults', '  mode tcp', 'backend b', '  server s1 10.0.0.1:443 ssl verify none alpn h2')).toEqual([]);
  });

  it('checks a server-template the same way', () => {
    expect(errorsOf(...be('server-template web 3 web.test:443 ssl'))[0]).toMatch(/x\.cfg:4: .*server-template 'b\/web'.*no 'ca-file'/);
    const c = load(...be(`server-template web 3 web.test:443 ssl ca-file ${ca.caFile} sni str(web.test)`));
    expect(c.backends[0]!.serverTemplates[0]!.template.tls).toMatchObject({ verify: 'required', sni: 'web.test' });
  });

  it('loads CA files, CA directories and crt files, naming the file on failure', () => {
    expect(loadCaFile(ca.caFile)).toHaveLength(1);
    expect(loadCaFile('@system-ca')).toBeUndefined();
    const dir = pkiDir();
    try {
      // A directory: every .pem/.crt/.cer file not starting with a dot (x.key and .hidden.pem are skipped).
      makeCa(dir.dir, 'x');
      makeCa(dir.dir, 'y');
      writeFileSync(path.join(dir.dir, '.hidden.pem'), 'junk');
      expect(loadCaFile(dir.dir)).toHaveLength(2);
      writeFileSync(path.join(dir.dir, 'a.crt'), '');
      expect(() => loadCaFile(dir.dir)).toThrow(/a\.crt' holds no PEM certificate/);
    } finally {
      dir.rm();
    }
    expect(loadCertKeyFile(client.combined).cert).toContain('BEGIN CERTIFICATE');
    expect(() => loadCertKeyFile(client.cert)).toThrow(TlsFileError);
  });
});
