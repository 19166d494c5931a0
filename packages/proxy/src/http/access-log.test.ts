import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loopNow } from '@stickmesh/core';
import { LOG_CHUNK_BYTES, createLogger } from '../log.js';
import { SEGMENT_CACHE_MAX, SEGMENT_VALUE_MAX, TAIL_CACHE_MAX, accessLogCacheSizes, jsonString, logExchange } from './access-log.js';
import { RequestContext } from './context.js';
import type { Exchange } from './exchange.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

type Logger = ReturnType<typeof createLogger>['logger'];

interface Case {
  uri: string;
  method?: string;
  sni?: string;
  stick?: '' | 'hit' | 'miss' | 'down';
  decidedBy?: RequestContext['decidedBy'];
  rule?: string;
  err?: string;
  tls?: boolean;
  server?: string;
  backend?: string;
  fe?: string;
  minor?: number;
  retries?: number;
  redispatched?: boolean;
  term?: [string, string];
  status?: number;
  bytesOut?: number;
  bytesIn?: number;
}

/** A finished exchange on the connection `conn` (a new one when absent), filled from `c`. */
function exchange(logger: Logger, c: Case, conn?: Exchange, port = 54321): Exchange {
  const ctx = conn?.ctx ?? new RequestContext();
  const now = loopNow();
  ctx.reset(now - 5, true);
  ctx.tHead = now - 4;
  ctx.tConnStart = now - 4;
  ctx.tConnected = c.err ? 0 : now - 3;
  ctx.tResHead = c.err ? 0 : now - 1;
  ctx.status = c.status ?? (c.err ? 503 : 200);
  ctx.bytesOut = c.bytesOut ?? 1234;
  ctx.bytesIn = c.bytesIn ?? 77;
  ctx.retries = c.retries ?? (c.err ? 3 : 0);
  ctx.redispatched = c.redispatched ?? Boolean(c.err);
  ctx.decidedBy = c.decidedBy ?? 'balance';
  ctx.rule = c.rule ?? '';
  ctx.connectError = c.err ?? '';
  ctx.method = c.method ?? 'GET';
  ctx.target = c.uri;
  ctx.versionMinor = c.minor ?? 1;
  if (c.term) [ctx.term0, ctx.term1] = c.term;
  ctx.server = c.server === '' ? undefined : ({ name: c.server ?? 's1' } as RequestContext['server']);
  if (conn) {
    const m = conn as unknown as { backend: unknown; stickState: { result: string } };
    m.backend = c.backend === '' ? undefined : { name: c.backend ?? 'be' };
    m.stickState.result = c.stick ?? '';
    return conn;
  }
  return {
    ctx,
    fe: { logger, name: c.fe ?? 'fe' },
    backend: c.backend === '' ? undefined : { name: c.backend ?? 'be' },
    clientIp: '::1',
    clientPort: port,
    tls: c.tls ?? false,
    sni: c.sni,
    stickState: { result: c.stick ?? '' },
  } as unknown as Exchange;
}

/** The fields object pino gets for `ex`, built from the exchange and not from our encoder. */
function fieldsOf(ex: Exchange): Record<string, unknown> {
  const ctx = ex.ctx;
  const now = loopNow();
  const o: Record<string, unknown> = {
    client_ip: ex.clientIp,
    client_port: ex.clientPort,
    frontend: ex.fe.name,
    backend: ex.backend?.name ?? '<NOSRV>',
    server: ctx.server?.name ?? '<NOSRV>',
    method: ctx.method,
    uri: ctx.target,
    http_version: `HTTP/1.${ctx.versionMinor}`,
    ssl_fc: ex.tls,
    ssl_fc_sni: ex.sni,
    status: ctx.status,
    bytes_read: ctx.bytesOut,
    bytes_uploaded: ctx.bytesIn,
    TR: (ctx.tHead || now) - ctx.tStart,
    Tw: 0,
    Tc: ctx.tConnected ? ctx.tConnected - ctx.tConnStart : -1,
    Tr: ctx.tResHead && ctx.tConnected ? ctx.tResHead - ctx.tConnected : -1,
    Ta: now - ctx.tStart,
    retries: ctx.retries,
    redispatched: ctx.redispatched,
    decided_by: ctx.decidedBy,
  };
  if (ex.stickState.result) o.stick = ex.stickState.result;
  if (ctx.rule) o.rule = ctx.rule;
  if (ctx.connectError) o.server_error = ctx.connectError;
  o.termination_state = ctx.terminationState();
  return o;
}

function nodeLogger(): { logger: Logger; flush: () => Promise<void>; lines: () => Buffer[] } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stickmesh-alog-'));
  dirs.push(dir);
  const file = path.join(dir, 'out.log');
  const { logger, flush } = createLogger({ level: 'info', node: 'n1', fd: fs.openSync(file, 'w') });
  const lines = (): Buffer[] => {
    const all = fs.readFileSync(file);
    const out: Buffer[] = [];
    let at = 0;
    for (let nl = all.indexOf(10); nl >= 0; at = nl + 1, nl = all.indexOf(10, at)) out.push(all.subarray(at, nl + 1));
    return out;
  };
  return { logger, flush, lines };
}

/**
 * Logs each exchange with logExchange and then, in the same event-loop turn (same clock, same
 * time field), the same fields through pino's own `logger.info`; resolves to the pairs of lines.
 */
async function pairs(n: ReturnType<typeof nodeLogger>, exchanges: Array<() => Exchange>): Promise<Array<[Buffer, Buffer]>> {
  const before = n.lines().length;
  for (const make of exchanges) {
    const ex = make();
    logExchange(ex);
    n.logger.info(fieldsOf(ex), 'request');
  }
  await n.flush();
  const lines = n.lines().slice(before);
  expect(lines).toHaveLength(2 * exchanges.length);
  return exchanges.map((_, i) => [lines[2 * i]!, lines[2 * i + 1]!]);
}

const odd: Case[] = [
  { uri: '/' },
  { uri: '/a"b\\c?d=e', tls: true, sni: 'www.example.com', stick: 'hit' },
  { uri: '/caf\u00e9/\u00ff', rule: 'lb.cfg:12', err: 'ECONNREFUSED', server: 's"1' },
  { uri: `/${'long'.repeat(60)}`, sni: 'h\u00e9.example', bytesOut: 5_000_000_123 },
  { uri: '/ctl\u0001\u007f', server: '\u00e9t\u00e9' },
  // Control characters, quotes and backslashes in every string field the encoder caches.
  { uri: '/tab\there', method: 'G\tET', server: 'back\\slash', backend: 'b"e', fe: 'f\u0000e', rule: 'x\ny', err: 'a"b' },
  // Non-ASCII: a surrogate pair, and lone surrogates (pino keeps them in short strings without a
  // control character, JSON.stringify escapes them in long ones).
  { uri: '/emoji/\ud83d\ude00', sni: '\ud83d\ude00.example', method: 'M\u00e9TH' },
  { uri: '/lone"\ud800', server: 'x\udc00"' },
  { uri: `/lone${'x'.repeat(100)}\ud800"` },
  { uri: '/q"\u0002\ud800' },
  // Just below, at and above LONG_STR (the regular-expression check), plain and not.
  { uri: '/'.padEnd(23, 'a') },
  { uri: '/'.padEnd(24, 'a') },
  { uri: '/'.padEnd(25, 'a') },
  { uri: '/'.padEnd(24, '"') },
  { uri: '/'.padEnd(30, '\u00e9') },
  // Missing backend and server, HTTP/1.0, odd termination states and counts.
  { uri: '/x', backend: '', server: '', minor: 0, term: ['C', 'D'], retries: 2, redispatched: true, decidedBy: 'redispatch' },
  { uri: '/x', term: ['"', '\\'], decidedBy: '' },
  { uri: '/x', term: ['SD', ''], stick: 'miss', decidedBy: 'stick-first' },
  { uri: '/x', minor: 7, tls: true },
  // Numbers at the digit table's edges, negative, beyond int32, fractional.
  { uri: '/n', status: 999, bytesOut: 1000, bytesIn: 999_999 },
  { uri: '/n', status: 0, bytesOut: 1_000_000, bytesIn: 2 ** 31 - 1 },
  { uri: '/n', bytesOut: 2 ** 31, bytesIn: -7 },
  { uri: '/n', bytesOut: 1.5, bytesIn: -(2 ** 31) },
  { uri: '/n', bytesOut: 1_000_000_000, bytesIn: 999_999_999 },
];

describe('logExchange', () => {
  it("writes a node's request line, encoded straight into the log buffer, byte for byte as pino's logger.info writes the same fields", async () => {
    const n = nodeLogger();
    const got = await pairs(
      n,
      odd.map((c) => () => exchange(n.logger, c)),
    );
    for (const [ours, pinos] of got) expect(ours.toString('latin1')).toBe(pinos.toString('latin1'));
    const parsed = got.map(([l]) => JSON.parse(l.toString('utf8')) as Record<string, unknown>);
    expect(parsed[0]).toMatchObject({ uri: '/', client_ip: '::1', client_port: 54321, frontend: 'fe', backend: 'be', server: 's1', method: 'GET' });
    expect(parsed[1]).toMatchObject({ ssl_fc: true, ssl_fc_sni: 'www.example.com', stick: 'hit', status: 200, node: 'n1', msg: 'request' });
    expect(parsed[2]).toMatchObject({ rule: 'lb.cfg:12', server_error: 'ECONNREFUSED', server: 's"1', Tc: -1, Tr: -1, retries: 3, redispatched: true });
    expect(parsed[3]!.bytes_read).toBe(5_000_000_123);
    expect(parsed[0]).not.toHaveProperty('ssl_fc_sni');
    expect(parsed[0]).not.toHaveProperty('stick');
    expect(Object.keys(parsed[0]!)).toEqual([
      'level', 'time', 'node', 'client_ip', 'client_port', 'frontend', 'backend', 'server', 'method', 'uri', 'http_version', 'ssl_fc', 'status', 'bytes_read', 'bytes_uploaded',
      'TR', 'Tw', 'Tc', 'Tr', 'Ta', 'retries', 'redispatched', 'decided_by', 'termination_state', 'msg',
    ]);
  });

  it('keeps the identity across requests of one connection whose values change from one request to the next', async () => {
    const n = nodeLogger();
    const conn = exchange(n.logger, { uri: '/' });
    const other = exchange(n.logger, { uri: '/' }, undefined, 1);
    const steps: Case[] = [
      { uri: '/1' },
      { uri: '/2' },
      { uri: '/3', server: 's2' },
      { uri: '/4', method: 'POST' },
      { uri: '/5', backend: 'be2' },
      { uri: '/6', minor: 0 },
      { uri: '/7', minor: 0, term: ['C', 'D'] },
      { uri: '/8', stick: 'hit', decidedBy: 'stick' },
      { uri: '/9', err: 'ETIMEDOUT' },
      { uri: '/10', rule: 'a.cfg:3' },
      { uri: '/11', method: 'X'.repeat(SEGMENT_VALUE_MAX + 1) },
      { uri: '/12' },
      { uri: '/13', fe: 'fe2' },
    ];
    const got = await pairs(
      n,
      steps.flatMap((c) => [
        () => {
          exchange(n.logger, c, conn);
          if (c.fe) (conn as unknown as { fe: { logger: Logger; name: string } }).fe = { logger: n.logger, name: c.fe };
          return conn;
        },
        () => exchange(n.logger, { ...c, uri: `${c.uri}o` }, other),
      ]),
    );
    for (const [ours, pinos] of got) expect(ours.toString('latin1')).toBe(pinos.toString('latin1'));
    const parsed = got.map(([l]) => JSON.parse(l.toString('utf8')) as Record<string, unknown>);
    expect(parsed.map((p) => p.client_port)).toEqual(steps.flatMap(() => [54321, 1]));
    expect(parsed[4]).toMatchObject({ server: 's2', uri: '/3' });
    expect(parsed[10]).toMatchObject({ http_version: 'HTTP/1.0' });
    expect(parsed[24]).toMatchObject({ frontend: 'fe2', method: 'GET' });
  });

  it('writes a line too long for the buffer (a very long URL) through the string path, still as pino does', async () => {
    const n = nodeLogger();
    // The encoder reserves 6 bytes per character: around LOG_CHUNK_BYTES / 18 characters the
    // line moves to the string path. Lengths on both sides of that, ASCII and not.
    const edge = Math.floor(LOG_CHUNK_BYTES / 18);
    const lens = [edge - 300, edge - 200, edge - 120, edge - 40, edge, edge + 200, LOG_CHUNK_BYTES];
    const got = await pairs(
      n,
      lens.flatMap((len) => [() => exchange(n.logger, { uri: `/${'a'.repeat(len)}` }), () => exchange(n.logger, { uri: `/\u00e9"${'\u00e9'.repeat(len)}` })]),
    );
    for (const [ours, pinos] of got) expect(ours.toString('latin1')).toBe(pinos.toString('latin1'));
    expect(got.at(-1)![0].length).toBeGreaterThan(2 * LOG_CHUNK_BYTES);
  });

  it('keeps its caches within their bounds when clients send ever new values', async () => {
    const n = nodeLogger();
    const many = SEGMENT_CACHE_MAX + 50;
    const exchanges = Array.from({ length: many }, (_, i) => () => exchange(n.logger, { uri: '/', method: `M${i}`, term: [String.fromCharCode(65 + (i % 26)), String.fromCharCode(65 + ((i / 26) | 0) % 26)] }, undefined, i));
    const got = await pairs(n, exchanges);
    for (const [ours, pinos] of got) expect(ours.toString('latin1')).toBe(pinos.toString('latin1'));
    const sizes = accessLogCacheSizes();
    expect(sizes.segments).toBeGreaterThan(0);
    expect(sizes.segments).toBeLessThanOrEqual(SEGMENT_CACHE_MAX);
    expect(sizes.tails).toBeGreaterThan(0);
    expect(sizes.tails).toBeLessThanOrEqual(TAIL_CACHE_MAX);
  });

  it('writes the same line through writeRawInfo (a pino logger over another stream) and through logger.info (a serializer)', async () => {
    const out: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _enc, cb) {
        out.push(chunk.toString('latin1'));
        cb();
      },
    });
    const plain = pino({ level: 'info', base: { node: 'n1' }, timestamp: () => ',"time":"t"' }, stream);
    const serial = pino({ level: 'info', base: { node: 'n1' }, timestamp: () => ',"time":"t"', serializers: { uri: (u: string) => u } }, stream);
    for (const logger of [plain, serial]) {
      for (const c of odd) {
        const ex = exchange(logger as unknown as Logger, c);
        logExchange(ex);
        logger.info(fieldsOf(ex), 'request');
      }
    }
    await new Promise((r) => setImmediate(r));
    expect(out).toHaveLength(4 * odd.length);
    for (let i = 0; i < out.length; i += 2) expect(out[i]).toBe(out[i + 1]);
  });

  it('logs nothing below info, and asks the level again after it changes', async () => {
    const n = nodeLogger();
    n.logger.level = 'warn';
    logExchange(exchange(n.logger, { uri: '/off' }));
    n.logger.level = 'info';
    logExchange(exchange(n.logger, { uri: '/on' }));
    await n.flush();
    const uris = n.lines().map((l) => (JSON.parse(l.toString('utf8')) as { uri: string }).uri);
    expect(uris).toEqual(['/on']);
  });
});

describe('jsonString', () => {
  it("escapes a string exactly as pino's info line does", () => {
    const out: string[] = [];
    const logger = pino({ level: 'info', base: null, timestamp: false }, { write: (s: string) => out.push(s) });
    const samples = ['', 'plain', 'q"q', 'b\\b', 't\tt', '\u0000', '\u001f', '\u007f', '\u00e9', '\ud83d\ude00', '\ud800', '"\ud800', '\ud800\u0001', 'x'.repeat(100), `${'x'.repeat(100)}"`, `${'x'.repeat(101)}\ud800`];
    for (const s of samples) {
      logger.info({ v: s });
      expect(`{"level":30,"v":${jsonString(s)}}\n`).toBe(out.at(-1));
    }
  });
});
