/**
 * `errorfile CODE FILE` end to end: the proxy's own answers (503 without a server, 502 for a
 * broken response, 400 for a bad request, `deny`) send the file's bytes, the most specific
 * section's first (backend, then frontend, inherited from defaults), then close.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRawBackend } from '../../../../test/helpers/backends.js';
import { exchangeUntilClose } from '../../../../test/helpers/client.js';
import { freePort } from '../../../../test/helpers/backends.js';
import { useScope } from '../../../../test/helpers/scope.js';

const scope = useScope();
const dir = mkdtempSync(path.join(os.tmpdir(), 'sm-errorfile-'));

function page(name: string, text: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, text, 'latin1');
  return file;
}

const P503 = 'HTTP/1.0 503 Service Unavailable\r\nCache-Control: no-cache\r\nConnection: close\r\nContent-Type: text/html\r\n\r\n<html><body><h1>Back soon</h1>\nMaintenance \xe9t\xe9.\n</body></html>\n';
const P503_BACKEND = 'HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 16\r\n\r\napp is resting.\n';
const P502 = 'HTTP/1.0 502 Bad Gateway\r\nConnection: close\r\n\r\nupstream broke\n';
const P400 = 'HTTP/1.0 400 Bad Request\r\nConnection: close\r\n\r\nnot HTTP\n';
const P418 = 'HTTP/1.1 418 I am a teapot\r\nContent-Type: text/plain\r\nContent-Length: 7\r\n\r\nteapot\n';
const P403 = 'HTTP/1.0 403 Forbidden\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\ngo away\n';

/** The `defaults` section every case starts from (mode http, short timeouts); a case adds its own lines after it. */
const DEFAULTS = `defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s`;

const GET = (sock: import('node:net').Socket): void => {
  sock.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
};

async function answer(port: number, send = GET): Promise<{ out: string; closed: boolean }> {
  return exchangeUntilClose(port, 5000, send);
}

describe('errorfile', () => {
  it('a 503 with no server sends the errorfile of defaults byte for byte, then closes', async () => {
    const f = page('503.http', P503);
    const p = await scope.proxy(
      `${DEFAULTS}
    errorfile 503 ${f}
frontend fe
    bind 127.0.0.1:{{port}}
    default_backend app
backend app
    server web1 127.0.0.1:{{dead}}
`,
      { dead: await freePort() },
    );
    const r = await answer(p.port);
    expect(r.out).toBe(P503);
    expect(r.closed).toBe(true);
  });

  it("the backend's own errorfile wins for its 503; 502 and 400 come from the inherited ones", async () => {
    const raw = await startRawBackend((s) => s.end('HTTP/1.1 2xx broken\r\n\r\n'));
    scope.defer(() => raw.close());
    const p = await scope.proxy(
      `${DEFAULTS}
    errorfile 503 ${page('d503.http', P503)}
    errorfile 502 ${page('502.http', P502)}
    errorfile 400 ${page('400.http', P400)}
frontend fe
    bind 127.0.0.1:{{port}}
    use_backend broken if { path_beg /broken }
    default_backend app
backend app
    errorfile 503 ${page('b503.http', P503_BACKEND)}
    server web1 127.0.0.1:{{dead}}
backend broken
    server raw 127.0.0.1:{{raw}}
`,
      { dead: await freePort(), raw: raw.port },
    );
    expect((await answer(p.port)).out).toBe(P503_BACKEND);
    expect((await answer(p.port, (s) => s.write('GET /broken HTTP/1.1\r\nHost: x\r\n\r\n'))).out).toBe(P502);
    const bad = await answer(p.port, (s) => s.write('GET / HTTP/1.1\r\nHost: x\r\nbad header line\r\n\r\n'));
    expect(bad.out).toBe(P400);
    expect(bad.closed).toBe(true);
  });

  it("'http-request deny' sends the errorfile of its status: the section's, else the frontend's", async () => {
    const [web] = await scope.backends(1);
    const p = await scope.proxy(
      `${DEFAULTS}
frontend fe
    bind 127.0.0.1:{{port}}
    errorfile 403 ${page('403.http', P403)}
    http-request deny if { path_beg /fe }
    default_backend app
backend app
    http-request deny deny_status 403 if { path_beg /be }
    http-request deny deny_status 429 if { path_beg /rate }
    server web1 127.0.0.1:{{web}}
`,
      { web: web!.port },
    );
    for (const pathname of ['/fe', '/be']) {
      const r = await answer(p.port, (s) => s.write(`GET ${pathname} HTTP/1.1\r\nHost: x\r\n\r\n`));
      expect(r.out).toBe(P403);
      expect(r.closed).toBe(true);
    }
    // No errorfile for 429: the built-in page, and the connection stays open (deadline passes).
    const rate = await exchangeUntilClose(p.port, 300, (s) => s.write('GET /rate HTTP/1.1\r\nHost: x\r\n\r\n'));
    expect(rate.out).toMatch(/^HTTP\/1\.1 429 Too Many Requests\r\n/);
    expect(rate.closed).toBe(false);
  });

  it('an empty errorfile (/dev/null) closes without answering', async () => {
    const p = await scope.proxy(
      `${DEFAULTS}
    errorfile 400 /dev/null
frontend fe
    bind 127.0.0.1:{{port}}
    default_backend app
backend app
    server web1 127.0.0.1:1
`,
      {},
    );
    const r = await answer(p.port, (s) => s.write('BROKEN\r\n\r\n'));
    expect(r.out).toBe('');
    expect(r.closed).toBe(true);
  });

  it("a rule's own 'errorfile FILE' (deny, tarpit, return) is sent as written, with the file's status; 'http-request reject' closes without answering", async () => {
    const tea = page('418.http', P418);
    const [web] = await scope.backends(1);
    const p = await scope.proxy(
      `${DEFAULTS}
    timeout tarpit 50ms
frontend fe
    bind 127.0.0.1:{{port}}
    http-request deny deny_status 429 errorfile ${tea} if { path /deny }
    http-request return status 200 errorfile ${tea} if { path /return }
    http-request tarpit errorfile ${tea} if { path /tarpit }
    http-request reject if { path /reject }
    default_backend app
backend app
    server web1 127.0.0.1:{{web}}
`,
      { web: web!.port },
    );
    for (const pathname of ['/deny', '/return', '/tarpit']) {
      const r = await answer(p.port, (s) => s.write(`GET ${pathname} HTTP/1.1\r\nHost: x\r\n\r\n`));
      expect(r.out).toBe(P418);
      expect(r.closed).toBe(true);
    }
    const rejected = await answer(p.port, (s) => s.write('GET /reject HTTP/1.1\r\nHost: x\r\n\r\n'));
    expect(rejected).toEqual({ out: '', closed: true });
    const passed = await answer(p.port, (s) => s.write('GET /other HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
    expect(passed.out).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
  });
});
