/**
 * Differential test of the HTTP engine against Node's `http` server (llhttp): the same corpus of
 * valid, malformed and smuggling-shaped requests goes to a Node server directly and through
 * stickmesh to a Node backend. stickmesh may be stricter than Node, never laxer: whatever Node
 * rejects, stickmesh rejects too; a request Node rejects at its head never reaches the server, one
 * Node rejects in its body (a streaming proxy has forwarded the head by then) never completes at
 * the server; and no probe makes the backend see a request Node itself did not parse (no smuggling).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import net from 'node:net';
import { rawExchange } from '../../../../test/helpers/client.js';
import { startProxy, type RunningProxy } from '../../../../test/helpers/proxy.js';

const TAIL = 'GET /second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';

/** Each probe is followed by TAIL on the same connection, to catch desynchronisation. */
const CORPUS: Array<[string, string]> = [
  ['valid GET', 'GET /a HTTP/1.1\r\nHost: x\r\n\r\n'],
  ['valid POST content-length', 'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello'],
  ['valid chunked', 'POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'],
  ['CL and TE together', 'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n'],
  ['TE and CL together', 'POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n'],
  ['two different CL', 'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!'],
  ['CL list', 'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello!'],
  ['CL with plus sign', 'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello'],
  ['CL negative', 'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n'],
  ['CL hex', 'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\nhello'],
  ['TE xchunked', 'POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'],
  ['TE identity, chunked', 'POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n'],
  ['TE gzip, chunked', 'POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n'],
  ['TE chunked twice', 'POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'],
  ['TE with a trailing tab', 'POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\t\r\n\r\n5\r\nhello\r\n0\r\n\r\n'],
  ['TE on HTTP/1.0', 'POST /a HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'],
  ['chunk extension', 'POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\n\r\n'],
  ['chunk size overflow', 'POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n20000000000000\r\nhello\r\n0\r\n\r\n'],
  ['bare LF after chunk data', 'POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n'],
  ['TE chunked, identity', 'POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n'],
  ['TE with space before colon', 'POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n'],
  ['TE obs-folded', 'POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n'],
  ['obs-fold in a header', 'GET /a HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n 2\r\n\r\n'],
  ['space before colon', 'GET /a HTTP/1.1\r\nHost : x\r\n\r\n'],
  ['bad chunk size', 'POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n'],
  ['huge chunk size', 'POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\nhello\r\n0\r\n\r\n'],
  ['chunk without CRLF after data', 'POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n'],
  ['bare LF line endings', 'GET /a HTTP/1.1\nHost: x\n\n'],
  ['NUL in header value', 'GET /a HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n'],
  ['invalid header name', 'GET /a HTTP/1.1\r\nHost: x\r\nX@A: 1\r\n\r\n'],
  ['header without colon', 'GET /a HTTP/1.1\r\nHost: x\r\nX-A 1\r\n\r\n'],
  ['two spaces in request line', 'GET  /a HTTP/1.1\r\nHost: x\r\n\r\n'],
  ['lowercase version', 'GET /a http/1.1\r\nHost: x\r\n\r\n'],
  ['HTTP/2.0 on HTTP/1', 'GET /a HTTP/2.0\r\nHost: x\r\n\r\n'],
  ['missing version', 'GET /a\r\nHost: x\r\n\r\n'],
  ['control char in target', 'GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n'],
  ['huge header', `GET /a HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20000)}\r\n\r\n`],
  ['method with bad char', 'G(T /a HTTP/1.1\r\nHost: x\r\n\r\n'],
];

interface Outcome {
  /** Status of the first response, 0 when the connection closed without one. */
  first: number;
  /** Paths whose head the server application saw. */
  paths: string[];
  /** Paths whose body the application read to the end. */
  completed: string[];
}

function firstStatus(raw: string): number {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(raw);
  return m ? Number(m[1]) : 0;
}

let seen: string[] = [];
let completed: string[] = [];
let app: http.Server;
let appPort = 0;
let proxy: RunningProxy;

beforeAll(async () => {
  app = http.createServer((req, res) => {
    const url = req.url ?? '';
    seen.push(url);
    req.resume();
    req.on('end', () => {
      completed.push(url);
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', () => r()));
  appPort = (app.address() as net.AddressInfo).port;
  proxy = await startProxy(
    `
defaults
    mode http
    timeout client 2s
    timeout http-request 1s
frontend fe
    bind 127.0.0.1:{{port}}
    default_backend be
backend be
    server app 127.0.0.1:{{app}}
`,
    { app: appPort },
  );
});

afterAll(async () => {
  await proxy.close();
  app.closeAllConnections();
  await new Promise<void>((r) => app.close(() => r()));
});

async function probe(port: number, data: string): Promise<Outcome> {
  seen = [];
  completed = [];
  const raw = await rawExchange(port, data + TAIL, { timeoutMs: 1500 });
  // Let the application finish reading what it was sent before sampling what it saw.
  await new Promise((r) => setImmediate(r));
  return { first: firstStatus(raw), paths: [...seen], completed: [...completed] };
}

describe('HTTP engine vs Node http (differential)', () => {
  it.each(CORPUS)('%s: never laxer than Node, never smuggles', async (_name, data) => {
    const node = await probe(appPort, data);
    const sm = await probe(proxy.port, data);
    const nodeRejected = node.first === 0 || node.first >= 400;
    if (nodeRejected) {
      expect(sm.first === 0 || (sm.first >= 400 && sm.first < 500) || sm.first === 505 || sm.first === 501).toBe(true);
      if (node.paths.length === 0) expect(sm.paths).toEqual([]);
      for (const p of sm.completed) expect(node.completed).toContain(p);
    }
    // Whatever the proxy forwarded, the application never saw more requests than Node parsed
    // from the same bytes, and never a path Node did not see.
    expect(sm.paths.length).toBeLessThanOrEqual(node.paths.length);
    for (const p of sm.paths) expect(node.paths).toContain(p);
    expect(sm.paths).not.toContain('/smuggled');
    // The proxy keeps serving.
    const ok = await rawExchange(proxy.port, 'GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(firstStatus(ok)).toBe(200);
  });
});
