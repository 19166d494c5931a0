/**
 * One routing decision: the same table of clients goes through a real node's HTTP proxy and
 * through its admin API's explain route, and both must name the same server, the same deciding
 * rule and the same request cookie flag (HAProxy's `%tsc` 3rd character). Explain is asked
 * first, since the request itself writes the stick entry (`stick on src`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { CookieSigner, encodeCookieDate, parseConfigText } from '@stickmesh/core';
import { StickmeshNode } from '../packages/cli/src/node.js';
import { freePort, startBackend, type TestBackend } from './helpers/backends.js';
import { request } from './helpers/client.js';
import { waitFor } from './helpers/wait.js';
import { oneThread } from './helpers/in-process.js';

const KEY = { id: 'k1', secret: '0123456789abcdefX', current: true, loc: { file: 't', line: 1 } };

let bs: TestBackend[] = [];
let node: StickmeshNode;
let adminPort: number;
const ports: Record<string, number> = {};
const logs: Array<Record<string, unknown>> = [];

const BACKENDS: Record<string, string> = {
  plain: 'cookie SRV insert indirect nocache',
  prefix: 'cookie JSESSIONID prefix',
  signed: `cookie SRV insert indirect nocache sign\n    cookie-key ${KEY.id} ${KEY.secret} current`,
  dated: 'cookie SRV insert indirect maxidle 1h maxlife 1d',
};

beforeAll(async () => {
  for (const n of ['w1', 'w2', 'w3']) bs.push(await startBackend(n));
  adminPort = await freePort();
  let text = `
global
    admin-bind 127.0.0.1:${adminPort}
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
`;
  for (const [name, cookie] of Object.entries(BACKENDS)) {
    ports[name] = await freePort();
    text += `
frontend f_${name}
    bind 127.0.0.1:${ports[name]}
    default_backend ${name}
backend ${name}
    balance roundrobin
    ${cookie}
    stick-table type ip size 10k expire 10m
    stick on src
${bs.map((b) => `    server ${b.name} 127.0.0.1:${b.port} cookie ${b.name}`).join('\n')}
`;
  }
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  node = await StickmeshNode.start(oneThread(parseConfigText(text, 'parity.cfg', 'haproxy', {})), { node: 'lb1', logger: pino({ level: 'info' }, sink) });
});

afterAll(async () => {
  await node?.stop(0, false);
  for (const b of bs) await b.close();
});

interface Case {
  name: string;
  backend: string;
  /** The cookie value the client sends; undefined: no cookie. */
  cookie?: (nowSec: number) => string;
  /** Runs before explain and the request (server states, table entries); undone by `after`. */
  before?: (src: string) => void;
  after?: () => void;
  /** Expected outcome, checked on both paths. */
  flag: string;
  decidedBy: string;
  server?: string;
}

const server = (backend: string, name: string) => node.proxy.backends.get(backend)!.serverByName(name)!;
function setState(backend: string, name: string, checkUp: boolean, admin: 'ready' | 'drain' | 'maint'): void {
  const s = server(backend, name);
  s.checkUp = checkUp;
  s.admin = admin;
  node.proxy.backends.get(backend)!.rebuild();
}
const signer = new CookieSigner('SRV', [KEY]);

const CASES: Case[] = [
  { name: 'plain cookie', backend: 'plain', cookie: () => 'w2', flag: 'V', decidedBy: 'cookie', server: 'w2' },
  { name: 'prefixed cookie', backend: 'prefix', cookie: () => 'w2~app-session-1', flag: 'V', decidedBy: 'cookie', server: 'w2' },
  { name: 'signed cookie', backend: 'signed', cookie: () => signer.sign('w2'), flag: 'V', decidedBy: 'cookie', server: 'w2' },
  { name: 'unsigned cookie on a signed backend', backend: 'signed', cookie: () => 'w2', flag: 'N', decidedBy: 'stick-first' },
  { name: 'dated cookie', backend: 'dated', cookie: (now) => `w3|${encodeCookieDate(now)}|${encodeCookieDate(now - 60)}`, flag: 'V', decidedBy: 'cookie', server: 'w3' },
  { name: 'idle-expired cookie', backend: 'dated', cookie: (now) => `w3|${encodeCookieDate(now - 7200)}|${encodeCookieDate(now - 7200)}`, flag: 'E', decidedBy: 'stick-first' },
  { name: 'life-expired cookie', backend: 'dated', cookie: (now) => `w3|${encodeCookieDate(now)}|${encodeCookieDate(now - 3 * 86400)}`, flag: 'O', decidedBy: 'stick-first' },
  { name: 'unknown server', backend: 'plain', cookie: () => 'zz', flag: 'I', decidedBy: 'stick-first' },
  {
    name: 'down server',
    backend: 'plain',
    cookie: () => 'w3',
    before: () => setState('plain', 'w3', false, 'ready'),
    after: () => setState('plain', 'w3', true, 'ready'),
    flag: 'D',
    decidedBy: 'stick-first',
  },
  {
    name: 'drained server',
    backend: 'signed',
    cookie: () => signer.sign('w1'),
    before: () => setState('signed', 'w1', true, 'drain'),
    after: () => setState('signed', 'w1', true, 'ready'),
    flag: 'V',
    decidedBy: 'cookie',
    server: 'w1',
  },
  {
    name: 'no cookie, stick entry',
    backend: 'plain',
    before: (src) => node.tables.get('plain')!.setLocal(src, 'w3'),
    flag: 'N',
    decidedBy: 'stick',
    server: 'w3',
  },
  { name: 'no cookie, no entry', backend: 'dated', flag: 'N', decidedBy: 'stick-first' },
];

describe('decide() parity: proxy and explain agree', () => {
  CASES.forEach((c, i) => {
    it(c.name, async () => {
      const src = `127.41.${i + 1}.7`;
      const nowSec = Math.floor(Date.now() / 1000);
      const value = c.cookie?.(nowSec);
      c.before?.(src);
      try {
        const q = new URLSearchParams({ backend: c.backend, key: src, cookie: value ?? '' });
        const r = await fetch(`http://127.0.0.1:${adminPort}/api/explain?${q}`);
        expect(r.status).toBe(200);
        const e = ((await r.json()) as { backends: Array<Record<string, any>> }).backends[0]!;

        const cookieName = c.backend === 'prefix' ? 'JSESSIONID' : 'SRV';
        const res = await request(ports[c.backend]!, { localAddress: src, ...(value !== undefined ? { headers: { cookie: `${cookieName}=${value}` } } : {}) });
        expect(res.status).toBe(200);
        const log = await waitFor(() => logs.find((l) => l.msg === 'request' && l.client_ip === src), 5000, `log line of ${src}`);
        const proxied = { server: String(res.headers['x-served-by']), decidedBy: log.decided_by, flag: String(log.termination_state)[2] };

        expect(proxied.server).toBe(log.server);
        expect({ flag: proxied.flag, decidedBy: proxied.decidedBy }).toEqual({ flag: c.flag, decidedBy: c.decidedBy });
        if (c.server !== undefined) expect(proxied.server).toBe(c.server);
        expect({ server: e.server, decidedBy: e.decidedBy, flag: e.cookie?.flag }).toEqual(proxied);
      } finally {
        c.after?.();
      }
    });
  });
});
