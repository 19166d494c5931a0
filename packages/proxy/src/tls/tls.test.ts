/**
 * TLS termination on `bind ... ssl` with real clients (node:tls, https) and certificates made by
 * `openssl` in a temp directory.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseConfigText } from '@stickmesh/core';
import { startBackend, freePort, type TestBackend } from '../../../../test/helpers/backends.js';
import { startProxy, requestLogs, type RunningProxy } from '../../../../test/helpers/proxy.js';
import { makeCert, tempDir, type TestCert } from '../../../../test/helpers/certs.js';
import { waitFor } from '../../../../test/helpers/wait.js';
import { metrics, TLS_FAILURE_REASONS } from '../metrics.js';
import { handshakesInProgress } from './accept.js';

interface TlsAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  subject: string;
  alpn: string | false;
  protocol: string | null;
  reused: boolean;
  session: Buffer | undefined;
}

/** One HTTPS GET on a new TLS connection (keep-alive off). */
function get(port: number, opts: { servername?: string; path?: string; headers?: Record<string, string>; session?: Buffer; minVersion?: tls.SecureVersion; maxVersion?: tls.SecureVersion; alpn?: string[] } = {}): Promise<TlsAnswer> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      rejectUnauthorized: false,
      ...(opts.servername !== undefined ? { servername: opts.servername } : {}),
      ...(opts.session ? { session: opts.session } : {}),
      ...(opts.minVersion ? { minVersion: opts.minVersion } : {}),
      ...(opts.maxVersion ? { maxVersion: opts.maxVersion } : {}),
      ALPNProtocols: opts.alpn ?? ['http/1.1'],
    });
    let session: Buffer | undefined;
    socket.on('session', (s: Buffer) => (session = s));
    socket.once('error', reject);
    socket.once('secureConnect', () => {
      const subject = socket.getPeerCertificate().subject?.CN ?? '';
      const alpn = socket.alpnProtocol;
      const protocol = socket.getProtocol();
      const reused = socket.isSessionReused();
      const req = http.request({ createConnection: () => socket, path: opts.path ?? '/', headers: { connection: 'close', ...(opts.headers ?? {}) } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => {
          // A TLS 1.3 ticket may arrive after the response: give it until the socket closes.
          const done = () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, subject, alpn, protocol, reused, session });
          if (socket.destroyed) done();
          else socket.once('close', done);
        });
      });
      req.on('error', reject);
      req.end();
    });
  });
}

/** Opens a TLS connection and resolves with how it ended: 'ok' (handshake done) or the error code. */
function handshake(port: number, opts: tls.ConnectionOptions): Promise<string> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts });
    s.once('secureConnect', () => {
      s.destroy();
      resolve('ok');
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    s.once('close', () => resolve('closed'));
  });
}

function failures(frontend: string, reason: (typeof TLS_FAILURE_REASONS)[number]): number {
  return metrics.tlsCounts(frontend).failures[TLS_FAILURE_REASONS.indexOf(reason)]!;
}

let dir: string;
let certs: Record<string, TestCert>;
let be1: TestBackend;
let be2: TestBackend;

beforeAll(async () => {
  dir = tempDir();
  const d = path.join(dir, 'sites');
  mkdirSync(d);
  certs = {
    def: makeCert(d, '00-default', 'default.test'),
    exact: makeCert(d, '10-exact', 'exact.test', ['exact.test', 'www.exact.test']),
    wild: makeCert(d, '20-wild', 'wild.test', ['*.wild.test']),
    cn: makeCert(d, '30-cn', 'cn-only.test'),
  };
  be1 = await startBackend('web1');
  be2 = await startBackend('web2');
});

afterAll(async () => {
  await be1.close();
  await be2.close();
});

const httpsCfg = (bindOpts: string) => `
defaults
    mode http
    timeout connect 1s
    timeout client 2s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{{port}} ssl ${bindOpts}
    default_backend app
backend app
    cookie SRV insert indirect nocache secure httponly
    http-request set-header X-Forwarded-Proto https if { ssl_fc }
    http-request set-header X-SNI %[ssl_fc_sni] if { ssl_fc_sni -m found }
    server web1 127.0.0.1:{{b1}} cookie s1
    server web2 127.0.0.1:{{b2}} cookie s2
`;

describe('bind ssl (mode http)', () => {
  let p: RunningProxy;
  beforeAll(async () => {
    p = await startProxy(httpsCfg(`crt ${path.join(dir, 'sites')} alpn h2,http/1.1`), { b1: be1.port, b2: be2.port });
  });
  afterAll(async () => {
    await p.close();
  });

  it('chooses the certificate by SNI: exact, SAN, wildcard, CN, else the first file', async () => {
    expect((await get(p.port, { servername: 'exact.test' })).subject).toBe('exact.test');
    expect((await get(p.port, { servername: 'WWW.Exact.Test' })).subject).toBe('exact.test');
    expect((await get(p.port, { servername: 'a.wild.test' })).subject).toBe('wild.test');
    expect((await get(p.port, { servername: 'a.b.wild.test' })).subject).toBe('default.test'); // one label deep only
    expect((await get(p.port, { servername: 'cn-only.test' })).subject).toBe('cn-only.test');
    expect((await get(p.port, { servername: 'nobody.test' })).subject).toBe('default.test');
    expect((await get(p.port, { servername: '' })).subject).toBe('default.test');
  });

  it('negotiates ALPN http/1.1 (h2 is not offered), TLS 1.3 by default', async () => {
    const r = await get(p.port, { servername: 'exact.test', alpn: ['h2', 'http/1.1'] });
    expect(r.alpn).toBe('http/1.1');
    expect(r.protocol).toBe('TLSv1.3');
    expect(r.status).toBe(200);
    const h2only = await get(p.port, { servername: 'exact.test', alpn: ['h2'] });
    expect(h2only.alpn).toBe(false);
    expect(h2only.status).toBe(200);
  });

  it('refuses TLS 1.1 and 1.0 (TLS 1.2 minimum), counted', async () => {
    const before = failures('fe', 'protocol') + failures('fe', 'handshake');
    // OpenSSL 3 needs security level 0 to offer TLS 1.0/1.1 at all: the client really offers them.
    const r = await handshake(p.port, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0', servername: 'exact.test' });
    expect(r).not.toBe('ok');
    await waitFor(() => failures('fe', 'protocol') + failures('fe', 'handshake') > before, 2000, 'failure counted');
    expect(await handshake(p.port, { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', servername: 'exact.test' })).toBe('ok');
  });

  it('keeps cookie persistence over HTTPS, with the secure attribute; X-Forwarded-Proto and ssl_fc_sni reach the server', async () => {
    const first = await get(p.port, { servername: 'www.exact.test' });
    const setCookie = String(first.headers['set-cookie']);
    expect(setCookie).toMatch(/^SRV=s[12]; path=\/; HttpOnly; Secure$/i);
    const cookie = setCookie.split(';')[0]!;
    const served = (JSON.parse(first.body) as { server: string }).server;
    for (let i = 0; i < 4; i++) {
      const r = await get(p.port, { servername: 'www.exact.test', headers: { cookie } });
      expect((JSON.parse(r.body) as { server: string }).server).toBe(served);
    }
    const seen = (served === 'web1' ? be1 : be2).seen.at(-1)!;
    expect(seen.headers['x-forwarded-proto']).toBe('https');
    expect(seen.headers['x-sni']).toBe('www.exact.test');
  });

  it('logs ssl_fc and ssl_fc_sni', async () => {
    await get(p.port, { servername: 'a.wild.test', path: '/logged' });
    const line = await waitFor(() => requestLogs(p).find((l) => l.uri === '/logged'), 2000, 'log line');
    expect(line).toMatchObject({ ssl_fc: true, ssl_fc_sni: 'a.wild.test' });
  });

  it('answers nothing to plain HTTP on the TLS port, counts it, and keeps serving', async () => {
    const before = failures('fe', 'http-on-tls');
    const out = await new Promise<string>((resolve) => {
      const s = net.connect(p.port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n'));
      let got = '';
      s.on('data', (d) => (got += d.toString('latin1')));
      s.on('close', () => resolve(got));
      s.on('error', () => {});
    });
    expect(out).toBe('');
    expect(failures('fe', 'http-on-tls')).toBe(before + 1);
    expect((await get(p.port, { servername: 'exact.test' })).status).toBe(200);
  });

  it('closes a connection that sends no hello within timeout client, counted', async () => {
    const before = failures('fe', 'timeout');
    const closed = await new Promise<boolean>((resolve) => {
      const s = net.connect(p.port, '127.0.0.1');
      s.on('close', () => resolve(true));
      s.on('error', () => {});
    });
    expect(closed).toBe(true);
    expect(failures('fe', 'timeout')).toBe(before + 1);
    await waitFor(() => handshakesInProgress() === 0, 2000, 'no handshake left');
  });

  it('resumes a session with the ticket it issued (abbreviated handshake)', async () => {
    const a = await get(p.port, { servername: 'exact.test' });
    expect(a.reused).toBe(false);
    expect(a.session).toBeDefined();
    const b = await get(p.port, { servername: 'exact.test', session: a.session! });
    expect(b.reused).toBe(true);
    expect(b.status).toBe(200);
  });
});

describe('X-Forwarded-Proto with option forwardfor', () => {
  it('is https over TLS (the client cannot forge it), absent over plain HTTP, and a rule that sets it wins', async () => {
    const plainPort = await freePort();
    const p = await startProxy(
      `
defaults
    mode http
    option forwardfor
    timeout connect 1s
    timeout client 2s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{{port}} ssl crt ${certs.def!.pem}
    bind 127.0.0.1:{{plain}}
    http-request set-header X-Forwarded-Proto custom if { path /custom }
    default_backend app
backend app
    server web1 127.0.0.1:{{b1}}
`,
      { b1: be1.port, plain: plainPort },
    );
    try {
      const seen = () => be1.seen.at(-1)!;
      await get(p.port, { headers: { 'x-forwarded-proto': 'http' } });
      expect(seen().rawHeaders.filter((h) => h.toLowerCase() === 'x-forwarded-proto')).toHaveLength(1);
      expect(seen().headers['x-forwarded-proto']).toBe('https');
      expect(seen().headers['x-forwarded-for']).toBe('127.0.0.1');
      await get(p.port, { path: '/custom' });
      expect(seen().headers['x-forwarded-proto']).toBe('custom');
      await new Promise<void>((resolve, reject) => {
        http.get({ host: '127.0.0.1', port: plainPort, path: '/plain' }, (res) => {
          res.resume();
          res.on('end', () => resolve());
        }).on('error', reject);
      });
      expect(seen().url).toBe('/plain');
      expect(seen().headers['x-forwarded-proto']).toBeUndefined();
    } finally {
      await p.close();
    }
  });
});

describe('strict-sni', () => {
  let p: RunningProxy;
  beforeAll(async () => {
    p = await startProxy(httpsCfg(`crt ${certs.exact!.pem} crt ${certs.wild!.pem} strict-sni`), { b1: be1.port, b2: be2.port });
  });
  afterAll(async () => {
    await p.close();
  });

  it('refuses a hello without a matching name (or without SNI) with unrecognized_name, serves the others', async () => {
    const before = failures('fe', 'strict-sni');
    expect(await handshake(p.port, { servername: 'nobody.test' })).toMatch(/UNRECOGNIZED_NAME|ECONNRESET|closed/);
    expect(await handshake(p.port, {})).toMatch(/UNRECOGNIZED_NAME|ECONNRESET|closed/);
    expect(failures('fe', 'strict-sni')).toBe(before + 2);
    expect((await get(p.port, { servername: 'x.wild.test' })).subject).toBe('wild.test');
    expect((await get(p.port, { servername: 'exact.test' })).subject).toBe('exact.test');
  });
});

describe('bind ssl (mode tcp)', () => {
  it('offloads TLS in front of a plain TCP echo server', async () => {
    const echo = net.createServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
    const p = await startProxy(
      `
defaults
    mode tcp
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{{port}} ssl crt ${certs.def!.pem}
    default_backend echo
backend echo
    server e 127.0.0.1:{{e}}
`,
      { e: (echo.address() as net.AddressInfo).port },
    );
    try {
      const big = Buffer.alloc(300_000, 7);
      const got = await new Promise<Buffer>((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port: p.port, rejectUnauthorized: false }, () => {
          s.write('hello ');
          s.write(big);
        });
        const chunks: Buffer[] = [];
        let n = 0;
        s.on('data', (d: Buffer) => {
          chunks.push(d);
          n += d.length;
          if (n >= 6 + big.length) {
            s.end();
            resolve(Buffer.concat(chunks));
          }
        });
        s.on('error', reject);
      });
      expect(got.subarray(0, 6).toString()).toBe('hello ');
      expect(got.length).toBe(6 + big.length);
      expect(got.subarray(6).equals(big)).toBe(true);
    } finally {
      await p.close();
      echo.close();
    }
  });
});

describe('reload', () => {
  it('swaps the certificate while a keep-alive TLS connection stays open; a bad certificate keeps the old one', async () => {
    const rdir = tempDir();
    const one = makeCert(rdir, 'one', 'one.test');
    const two = makeCert(rdir, 'two', 'two.test');
    const live = path.join(rdir, 'live.pem');
    writeFileSync(live, readText(one.pem));
    const text = (port: number) => httpsCfg(`crt ${live}`).replace('{{port}}', String(port));
    const port = await freePort();
    const p = await startProxy(text(port), { b1: be1.port, b2: be2.port });
    try {
      const agent = new https.Agent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false });
      const ka = (): Promise<{ subject: string; status: number; socket: unknown }> =>
        new Promise((resolve, reject) => {
          const req = https.request({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
            const sock = res.socket as tls.TLSSocket;
            res.resume();
            res.on('end', () => resolve({ subject: sock.getPeerCertificate().subject.CN, status: res.statusCode ?? 0, socket: sock }));
          });
          req.on('error', reject);
          req.end();
        });
      const a = await ka();
      expect(a.subject).toBe('one.test');
      writeFileSync(live, readText(two.pem));
      const cfg = (t: string) => parseConfigText(t.replace(/\{\{b1\}\}/g, String(be1.port)).replace(/\{\{b2\}\}/g, String(be2.port)), 'test.cfg').config;
      await p.proxy.reload(cfg(text(port)), p.proxy.tables);
      // The kept-alive connection still works: same socket, same (old) certificate.
      const b = await ka();
      expect(b.socket).toBe(a.socket);
      expect(b.status).toBe(200);
      expect(b.subject).toBe('one.test');
      // A new handshake gets the new certificate.
      expect((await get(port)).subject).toBe('two.test');
      // A bad certificate: the reload fails naming the file, the running config stays.
      writeFileSync(live, 'garbage');
      await expect(p.proxy.reload(cfg(text(port)), p.proxy.tables)).rejects.toThrow(new RegExp(`test\\.cfg:8: 'bind': no certificate in '${live}'`));
      expect((await get(port)).subject).toBe('two.test');
      const c = await ka();
      expect(c.status).toBe(200);
      agent.destroy();
    } finally {
      await p.close();
    }
  });
});

import { readFileSync } from 'node:fs';
function readText(f: string): string {
  return readFileSync(f, 'utf8');
}
