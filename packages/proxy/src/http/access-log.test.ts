import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../log.js';
import { logExchange } from './access-log.js';
import { RequestContext } from './context.js';
import type { Exchange } from './exchange.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

interface Case {
  uri: string;
  sni?: string;
  stick?: '' | 'hit';
  rule?: string;
  err?: string;
  tls?: boolean;
  server?: string;
  /** Bytes sent beyond int32 (the digits' slow path). */
  big?: boolean;
}

const cases: Case[] = [
  { uri: '/' },
  { uri: '/a"b\\c?d=e', tls: true, sni: 'www.example.com', stick: 'hit' },
  { uri: '/caf\u00e9/\u00ff', rule: 'lb.cfg:12', err: 'ECONNREFUSED', server: 's"1' },
  { uri: `/${'long'.repeat(60)}`, sni: 'h\u00e9.example', big: true },
  { uri: '/ctl\u0001\u007f', server: '\u00e9t\u00e9' },
];

function exchange(logger: ReturnType<typeof createLogger>['logger'], c: Case): Exchange {
  const ctx = new RequestContext();
  const now = Date.now();
  ctx.reset(now - 5, true);
  ctx.tHead = now - 4;
  ctx.tConnStart = now - 4;
  ctx.tConnected = c.err ? 0 : now - 3;
  ctx.tResHead = c.err ? 0 : now - 1;
  ctx.status = c.err ? 503 : 200;
  ctx.bytesOut = c.big ? 5_000_000_123 : 1234;
  ctx.bytesIn = 77;
  ctx.retries = c.err ? 3 : 0;
  ctx.redispatched = Boolean(c.err);
  ctx.decidedBy = 'balance';
  ctx.rule = c.rule ?? '';
  ctx.connectError = c.err ?? '';
  ctx.method = 'GET';
  ctx.target = c.uri;
  ctx.server = { name: c.server ?? 's1' } as RequestContext['server'];
  return {
    ctx,
    fe: { logger, name: 'fe' },
    backend: { name: 'be' },
    clientIp: '::1',
    clientPort: 54321,
    tls: c.tls ?? false,
    sni: c.sni,
    stickState: { result: c.stick ?? '' },
  } as unknown as Exchange;
}

describe('logExchange', () => {
  it("writes a node's request line, encoded straight into the log buffer, byte for byte as pino's logger.info writes the same fields", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stickmesh-alog-'));
    dirs.push(dir);
    const file = path.join(dir, 'out.log');
    const { logger, flush } = createLogger({ level: 'info', node: 'n1', fd: fs.openSync(file, 'w') });
    const direct: string[] = [];
    for (const c of cases) {
      logExchange(exchange(logger, c));
      await flush();
      const lines = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
      const line = lines.at(-1)!;
      direct.push(line);
      // The same fields through pino's object path: the key order of the parsed line is kept.
      const { level: _l, time: _t, node: _n, msg: _m, ...fields } = JSON.parse(line) as Record<string, unknown>;
      logger.info(fields, 'request');
      await flush();
      const again = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).at(-1)!;
      expect(Buffer.from(line)).toEqual(Buffer.from(again));
    }
    const parsed = direct.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed.map((p) => p.uri)).toEqual(cases.map((c) => c.uri));
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
});
