import { afterAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import type tls from 'node:tls';
import { request } from '../../../../test/helpers/client.js';
import { requestLogs } from '../../../../test/helpers/proxy.js';
import { waitFor } from '../../../../test/helpers/wait.js';
import { useScope } from '../../../../test/helpers/scope.js';
import { makeCa, makeCert, pkiDir, type TestCert } from '../../../../test/helpers/tls-pki.js';

const pki = pkiDir();
afterAll(() => pki.rm());
const ca = makeCa(pki.dir, 'ca');
const otherCa = makeCa(pki.dir, 'other-ca');
const good = makeCert(ca, 'backend', ['backend.test', '127.0.0.1']);
const api = makeCert(ca, 'api', ['api.test']);
const forged = makeCert(otherCa, 'forged', ['backend.test', '127.0.0.1']);

interface TlsBackend {
  port: number;
  /** One entry per TLS connection accepted: the SNI it sent, the ALPN chosen, whether it resumed a session. */
  conns: Array<{ servername: string | false; alpn: string | false | null; reused: boolean }>;
  requests: number;
  /** TCP connections accepted (a check that closes right after its handshake may never reach `conns`). */
  tcpConns: number;
  close(): Promise<void>;
}

/** An HTTPS backend answering `tls-backend` with the request's SNI; counts TLS connections. */
async function startTlsBackend(cert: TestCert): Promise<TlsBackend> {
  const b: TlsBackend = { port: 0, conns: [], requests: 0, tcpConns: 0, close: async () => {} };
  const server = https.createServer({ cert: readFileSync(cert.cert), key: readFileSync(cert.key), ALPNProtocols: ['http/1.1'] }, (req, res) => {
    b.requests++;
    const s = req.socket as tls.TLSSocket;
    if (req.url === '/health') {
      res.writeHead(200).end('ok');
      return;
    }
    // `/close`: the server ends the connection after answering, so the next request dials anew.
    if (req.url === '/close') res.setHeader('connection', 'close');
    res.writeHead(200, { 'content-type': 'text/plain', 'x-sni': String(s.servername) }).end('tls-backend');
  });
  server.on('connection', () => b.tcpConns++);
  server.on('secureConnection', (s: tls.TLSSocket) => b.conns.push({ servername: s.servername, alpn: s.alpnProtocol, reused: s.isSessionReused() }));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  b.port = (server.address() as net.AddressInfo).port;
  b.close = async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  };
  return b;
}

const scope = useScope();

async function tlsBackend(cert: TestCert): Promise<TlsBackend> {
  const b = await startTlsBackend(cert);
  scope.defer(() => b.close());
  return b;
}

const HTTP = (server: string, extra = '') => `
defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{{port}}
    default_backend b
backend b
${extra}
    ${server}
`;

describe('servers over TLS (ssl)', () => {
  it('proxies to a TLS server verified with ca-file, offers http/1.1 and reuses the connection', async () => {
    const b = await tlsBackend(good);
    const p = await scope.proxy(HTTP(`server s1 127.0.0.1:{{b}} ssl verify required ca-file ${ca.caFile}`), { b: b.port });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    scope.defer(() => agent.destroy());
    for (let i = 0; i < 3; i++) {
      const r = await request(p.port, { agent });
      expect(r.status).toBe(200);
      expect(r.body).toBe('tls-backend');
    }
    expect(b.requests).toBe(3);
    // One TLS connection carried the three exchanges; no SNI without `sni` (HAProxy sends none).
    expect(b.conns).toEqual([{ servername: false, alpn: 'http/1.1', reused: false }]);
    expect(p.proxy.backends.get('b')!.servers[0]!.tls).toBeDefined();
  });

  it('refuses a server whose certificate comes from another CA: 503, counted, the reason logged', async () => {
    const b = await tlsBackend(forged);
    const p = await scope.proxy(HTTP(`server s1 127.0.0.1:{{b}} ssl verify required ca-file ${ca.caFile}`, '    retries 2'), { b: b.port });
    const r = await request(p.port);
    expect(r.status).toBe(503);
    expect(b.requests).toBe(0);
    const s = p.proxy.backends.get('b')!.servers[0]!;
    expect(s.connectFailures).toBe(3); // the first try and 2 retries
    expect(s.lastConnectError).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|unable to verify the first certificate/);
    const log = await waitFor(() => requestLogs(p)[0], 2000, 'request log');
    expect(log).toMatchObject({ status: 503, termination_state: 'SC--', server: 's1' });
    expect(String(log.server_error)).toMatch(/unable to verify the first certificate/);
  });

  it('verify none accepts any certificate', async () => {
    const b = await tlsBackend(forged);
    const p = await scope.proxy(HTTP('server s1 127.0.0.1:{{b}} ssl verify none'), { b: b.port });
    const r = await request(p.port);
    expect(r.status).toBe(200);
    expect(r.body).toBe('tls-backend');
  });

  it('sends sni str(NAME) as the server name and checks the certificate against it', async () => {
    const b = await tlsBackend(api);
    const p = await scope.proxy(HTTP(`server s1 127.0.0.1:{{b}} ssl ca-file ${ca.caFile} sni str(api.test)`), { b: b.port });
    const r = await request(p.port);
    expect(r.status).toBe(200);
    expect(r.headers['x-sni']).toBe('api.test');
    expect(b.conns[0]!.servername).toBe('api.test');

    // The same certificate does not name other.test: refused although the chain is good.
    const p2 = await scope.proxy(HTTP(`server s1 127.0.0.1:{{b}} ssl ca-file ${ca.caFile} sni str(other.test)`, '    retries 0'), { b: b.port });
    const r2 = await request(p2.port);
    expect(r2.status).toBe(503);
    expect(p2.proxy.backends.get('b')!.servers[0]!.lastConnectError).toMatch(/ERR_TLS_CERT_ALTNAME_INVALID/);
  });

  it('resumes the TLS session on the next connection to the same server', async () => {
    const b = await tlsBackend(good);
    const p = await scope.proxy(HTTP(`server s1 127.0.0.1:{{b}} ssl ca-file ${ca.caFile}`), { b: b.port });
    for (let i = 0; i < 3; i++) expect((await request(p.port, { path: '/close' })).status).toBe(200);
    expect(b.conns).toHaveLength(3);
    expect(b.conns[0]!.reused).toBe(false);
    expect(b.conns[1]!.reused).toBe(true);
    expect(b.conns[2]!.reused).toBe(true);
  });

  it('check-ssl marks a TLS server up (L6OK) and a plain one down (L6RSP)', async () => {
    const t = await tlsBackend(good);
    const plain = await scope.backend('plain');
    const p = await scope.proxy(
      HTTP(`server tls 127.0.0.1:{{t}} check check-ssl verify required ca-file ${ca.caFile} inter 100 rise 1 fall 1
    server plain 127.0.0.1:{{plain}} check check-ssl verify none inter 100 rise 1 fall 1`),
      { t: t.port, plain: plain.port },
    );
    const [tls1, plain1] = p.proxy.backends.get('b')!.servers;
    // The TLS server was checked (handshakes reached it) and stayed up; the plain one went down at its first check.
    await waitFor(() => t.tcpConns >= 2 && plain1!.lastCheckStatus.startsWith('L6RSP'), 5000, 'TLS checks and the plain server down');
    expect(tls1!.lastCheckStatus).toBe('');
    expect(plain1!.checkUp).toBe(false);
    expect(tls1!.checkUp).toBe(true);
    // Traffic to both stays plain (check-ssl alone does not make the traffic TLS).
    expect(tls1!.tls).toBeUndefined();
    expect(tls1!.checkTls).toBeDefined();
  });

  it('an ssl server is checked over TLS by default, with httpchk inside TLS', async () => {
    const t = await tlsBackend(good);
    const p = await scope.proxy(
      HTTP(`server s1 127.0.0.1:{{t}} ssl check ca-file ${ca.caFile} inter 100 rise 1 fall 1`, '    option httpchk GET /health'),
      { t: t.port },
    );
    // The first check passes; a check that failed would set lastCheckStatus through the DOWN transition.
    await waitFor(() => t.conns.length >= 1 && t.requests >= 1, 5000, 'an HTTPS health check');
    const s = p.proxy.backends.get('b')!.servers[0]!;
    expect(s.checkUp).toBe(true);
    expect(s.lastCheckStatus).toBe('');
    // The same server with the wrong CA goes down with the TLS reason.
    const f = await tlsBackend(forged);
    const p2 = await scope.proxy(
      HTTP(`server s1 127.0.0.1:{{t}} ssl check ca-file ${ca.caFile} inter 100 rise 1 fall 1`, '    option httpchk GET /health'),
      { t: f.port },
    );
    const s2 = p2.proxy.backends.get('b')!.servers[0]!;
    await waitFor(() => !s2.checkUp, 5000, 'server down');
    expect(s2.lastCheckStatus).toMatch(/^L6RSP .*unable to verify the first certificate/);
  });

  it('mode tcp relays a plain client to a TLS server, and refuses a wrong certificate (SC)', async () => {
    const b = await tlsBackend(good);
    const f = await tlsBackend(forged);
    const TCP = `
defaults
    mode tcp
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{{port}}
    default_backend b
backend b
    retries 0
    server s1 127.0.0.1:{{b}} ssl ca-file ${ca.caFile}
`;
    const p = await scope.proxy(TCP, { b: b.port });
    const out = await new Promise<string>((resolve, reject) => {
      const c = net.connect(p.port, '127.0.0.1', () => c.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
      let data = '';
      c.on('data', (d) => (data += d.toString()));
      c.on('end', () => resolve(data));
      c.on('error', reject);
    });
    expect(out).toMatch(/^HTTP\/1\.1 200/);
    expect(out).toContain('tls-backend');
    expect(b.conns).toHaveLength(1);
    expect(b.conns[0]!.alpn).toBe(false); // mode tcp offers no ALPN unless told

    const p2 = await scope.proxy(TCP, { b: f.port });
    await new Promise<void>((resolve) => {
      const c = net.connect(p2.port, '127.0.0.1', () => c.write('x'));
      c.on('close', () => resolve());
      c.on('error', () => {});
    });
    const log = await waitFor(() => p2.logs.find((l) => l.msg === 'connection'), 2000, 'connection log');
    expect(log).toMatchObject({ termination_state: 'SC' });
    expect(String(log.server_error)).toMatch(/unable to verify the first certificate/);
    expect(f.requests).toBe(0);
  });
});
