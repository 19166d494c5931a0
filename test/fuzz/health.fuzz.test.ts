/**
 * Seeded fuzz of active health checks: the real HealthChecker against a fake server that answers
 * each check with hostile bytes. Every case is one check with its own `option httpchk GET /c<id>`
 * and `http-check expect` rule; the server reads the request line, takes the case id from it and
 * replays that case's answer: valid status lines with odd codes, versions and reasons; garbage;
 * partial heads then close or silence; heads far beyond 16 KiB; bytes dripped slowly; resets.
 *
 * Checks per case: the check concludes (within its timeout plus slack) with the status the answer
 * calls for (see `expected`): L7OK/L7STS by an independent evaluation of the expect rule for a
 * valid status line, L7RSP for garbage or an early close, L7TOUT for silence, SOCKERR allowed only
 * for resets. The checker never throws, holds at most one connection per check (the server sees
 * every connection closed), and heap growth stays bounded. `FUZZ_LONG=1` runs 100,000 cases;
 * replay with `FUZZ_SEED=...`, one case with `FUZZ_CASE=id`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import { TimerWheel, type HttpCheckConfig } from '@stickmesh/core';
import { HealthChecker, type CheckHandle, type CheckStatus } from '../../packages/proxy/src/health/checker.js';
import { Rng, fuzzRun } from '../helpers/rng.js';
import { waitFor } from '../helpers/wait.js';

const { long: LONG, cases: CASES, seed, replay } = fuzzRun(1500);
/** Check deadline (connect + status line) where the answer is silence: the check must time out. */
const SHORT_MS = 300;
/** Check deadline where the answer decides: long, so a loaded machine never turns it into L7TOUT. */
const LONG_MS = 3000;
/** A check concludes within its deadline plus this. */
const SLACK_MS = 1500;
const PARALLEL = 48;

type Expect = HttpCheckConfig['expect'];

/** What the fake server does with one check connection. */
interface Plan {
  /** Bytes written at once after the request line arrived. */
  bytes: Buffer;
  /** Then: close, reset, stay silent, or drip `drip` one byte every `dripMs`. */
  after: 'close' | 'reset' | 'hold' | 'drip';
  drip?: Buffer;
  dripMs?: number;
  /** Statuses the checker may conclude with. */
  allowed: CheckStatus[];
  /** The check's deadline: short where the answer is silence, long where it must not matter. */
  timeoutMs: number;
  /** For replay output. */
  what: string;
}

/** Independent evaluation of an expect rule against a code (ranges as generated, not parsed). */
function passes(rule: { expect: Expect; ranges: Array<[number, number]> }, code: number): boolean {
  const e = rule.expect;
  let hit: boolean;
  if (!e) hit = code >= 200 && code <= 399;
  else if (e.kind === 'rstatus') hit = new RegExp(e.value).test(String(code).padStart(3, '0'));
  else hit = rule.ranges.some(([a, b]) => code >= a && code <= b);
  return e?.negate ? !hit : hit;
}

function genExpect(rng: Rng): { expect: Expect; ranges: Array<[number, number]> } {
  switch (rng.int(0, 4)) {
    case 0:
      return { expect: undefined, ranges: [] };
    case 1: {
      const c = rng.pick([200, 204, 301, 404, 500, 0, 999]);
      return { expect: { kind: 'status', value: String(c), negate: rng.chance(0.3) }, ranges: [[c, c]] };
    }
    case 2: {
      const ranges: Array<[number, number]> = [];
      for (let k = rng.int(1, 3); k > 0; k--) {
        const a = rng.int(100, 599);
        ranges.push(rng.chance(0.5) ? [a, a] : [a, Math.min(599, a + rng.int(0, 120))]);
      }
      const value = ranges.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(',');
      return { expect: { kind: 'status', value, negate: rng.chance(0.3) }, ranges };
    }
    default: {
      const value = rng.pick(['^2', '^(2|3)0[0-9]$', '^[45]', '^1', '0$', '^...$']);
      return { expect: { kind: 'rstatus', value, negate: rng.chance(0.3) }, ranges: [] };
    }
  }
}

const ODD_CODES = [0, 1, 99, 100, 101, 103, 199, 200, 201, 204, 299, 300, 302, 399, 400, 404, 418, 499, 500, 503, 599, 600, 999];

function randomBytes(rng: Rng, n: number, avoidLf = false): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) {
    let c = rng.int(0, 255);
    if (avoidLf && c === 0x0a) c = 0x0b;
    b[i] = c;
  }
  return b;
}

/** Reason phrase bytes the status-line grammar accepts (no CR, LF). */
function cleanReason(rng: Rng): string {
  const alphabet = 'OK Not Found\tInternal Error éü~!@#$%^&*()_+-=[]{};:\'",.<>/?';
  let s = '';
  for (let k = rng.int(0, 40); k > 0; k--) s += alphabet[rng.int(0, alphabet.length - 1)];
  return s;
}

/** A case: the expect rule and what the server answers. Pure function of the case's generator. */
function generate(rng: Rng): { rule: { expect: Expect; ranges: Array<[number, number]> }; plan: Plan } {
  const rule = genExpect(rng);
  const verdict = (code: number): CheckStatus => (passes(rule, code) ? 'L7OK' : 'L7STS');
  const rest = () => (rng.chance(0.5) ? `Content-Length: 2\r\nX-A: ${'h'.repeat(rng.int(0, 3000))}\r\n\r\nok` : rng.chance(0.5) ? '\r\n' : '');
  const family = rng.int(0, 9);
  switch (family) {
    case 0:
    case 1: {
      // A valid status line: odd codes, versions, reasons, CRLF or bare LF, then a head or not.
      const code = rng.pick(ODD_CODES);
      const version = rng.pick(['HTTP/1.1', 'HTTP/1.0', 'HTTP/2', 'HTTP/0.9', 'HTTP/10.20']);
      const digits = String(code).padStart(3, '0');
      const reason = rng.chance(0.2) ? '' : ` ${cleanReason(rng)}`;
      const eol = rng.pick(['\r\n', '\n']);
      const line = `${version} ${digits}${reason}${eol}`;
      const after = rng.pick(['close', 'hold', 'close'] as const);
      return { rule, plan: { bytes: Buffer.from(line + rest(), 'latin1'), after, allowed: [verdict(code)], timeoutMs: LONG_MS, what: `valid-${after}` } };
    }
    case 2: {
      // Almost-status lines the grammar refuses.
      const code = rng.pick(ODD_CODES);
      const line = rng.pick([
        `HTTP/1.1 ${String(code).padStart(3, '0')}0 OK`,
        `HTTP/1.1  200 OK`,
        `HTTP/1.1 20 OK`,
        `HTTP/1.1 2x0 OK`,
        `http/1.1 200 OK`,
        `HTTP/1.1200 OK`,
        `HTTP/ 200 OK`,
        `HTTP/1.1 200OK`,
        ` HTTP/1.1 200 OK`,
        `HTTP/1.1 200 O\rK`,
        `ICY 200 OK`,
        `HTTP/1.1 -20 OK`,
        ``,
        `\r`,
      ]);
      return { rule, plan: { bytes: Buffer.from(`${line}\r\n${rest()}`, 'latin1'), after: rng.pick(['close', 'hold']), allowed: ['L7RSP'], timeoutMs: LONG_MS, what: 'near-miss' } };
    }
    case 3: {
      // Garbage with a line end somewhere (first byte never 'H', so it is never a status line).
      const g = randomBytes(rng, rng.int(1, 2000));
      g[0] = g[0] === 0x48 ? 0x47 : g[0]!;
      if (g.indexOf(0x0a) < 0) g[g.length - 1] = 0x0a;
      return { rule, plan: { bytes: g, after: rng.pick(['close', 'hold']), allowed: ['L7RSP'], timeoutMs: LONG_MS, what: 'garbage' } };
    }
    case 4: {
      // A partial status line, then close (L7RSP) or silence (L7TOUT).
      const full = `HTTP/1.1 ${rng.pick(ODD_CODES)} OK`;
      const cut = Buffer.from(full.slice(0, rng.int(0, full.length)), 'latin1');
      const after = rng.pick(['close', 'hold'] as const);
      const allowed: CheckStatus[] = [after === 'close' ? 'L7RSP' : 'L7TOUT'];
      return { rule, plan: { bytes: cut, after, allowed, timeoutMs: after === 'close' ? LONG_MS : SHORT_MS, what: `partial-${after}` } };
    }
    case 5: {
      // Far beyond the 16 KiB line limit, with or without an LF at the end.
      // The line limit is 16,384 bytes before the LF: 16,386 bytes with the LF last is one over.
      const n = rng.pick([16 * 1024 + 2, 20_000, 100_000, 1_000_000]);
      const b = Buffer.alloc(n, rng.pick([0x41, 0x20, 0x00, 0xff]));
      b.write('HTTP/1.1 200 ', 0, 'latin1');
      if (rng.chance(0.5)) b[n - 1] = 0x0a;
      return { rule, plan: { bytes: b, after: rng.pick(['close', 'hold']), allowed: ['L7RSP'], timeoutMs: LONG_MS, what: `huge-${n}` } };
    }
    case 6: {
      // Slow: a valid line dripped byte by byte; it ends in time (verdict) or not (L7TOUT).
      const code = rng.pick(ODD_CODES);
      const line = Buffer.from(`HTTP/1.1 ${String(code).padStart(3, '0')} OK\r\n`, 'latin1');
      // 1 ms per byte ends well within the long deadline; 40 ms per byte (over 600 ms) cannot
      // end within the short one; 10 ms per byte against the short deadline may go either way.
      const dripMs = rng.pick([1, 10, 40]);
      const allowed: CheckStatus[] = dripMs === 1 ? [verdict(code)] : dripMs === 40 ? ['L7TOUT'] : [verdict(code), 'L7TOUT'];
      const timeoutMs = dripMs === 1 ? LONG_MS : SHORT_MS;
      return { rule, plan: { bytes: Buffer.alloc(0), after: 'drip', drip: line, dripMs, allowed, timeoutMs, what: `drip-${dripMs}` } };
    }
    case 7:
      // Nothing at all: silence or an immediate close.
      return rng.chance(0.5)
        ? { rule, plan: { bytes: Buffer.alloc(0), after: 'hold', allowed: ['L7TOUT'], timeoutMs: SHORT_MS, what: 'silent' } }
        : { rule, plan: { bytes: Buffer.alloc(0), after: 'close', allowed: ['L7RSP'], timeoutMs: LONG_MS, what: 'closed' } };
    case 8:
      // A reset, after some bytes or none.
      return { rule, plan: { bytes: Buffer.from('HTTP/1.1 2', 'latin1'), after: 'reset', allowed: ['SOCKERR', 'L7RSP'], timeoutMs: LONG_MS, what: 'reset' } };
    default: {
      // A valid line split by random byte garbage before it: the first line decides.
      const g = randomBytes(rng, rng.int(1, 40), true);
      g[0] = 0x58;
      return { rule, plan: { bytes: Buffer.concat([g, Buffer.from('\nHTTP/1.1 200 OK\r\n\r\n')]), after: 'close', allowed: ['L7RSP'], timeoutMs: LONG_MS, what: 'junk-then-valid' } };
    }
  }
}

const caseRng = (id: number) => new Rng((seed + Math.imul(id, 0x9e3779b1)) >>> 0);

let server: net.Server;
let port = 0;
let open = 0;
let accepted = 0;
const live = new Set<net.Socket>();

/** Answers a check connection with its case's plan, once the request line names the case. */
function onCheckConnection(sock: net.Socket): void {
  accepted++;
  open++;
  live.add(sock);
  let head = '';
  let drip: NodeJS.Timeout | undefined;
  sock.on('error', () => {});
  sock.on('close', () => {
    open--;
    live.delete(sock);
    if (drip) clearInterval(drip);
  });
  const onData = (d: Buffer) => {
    head += d.toString('latin1');
    const m = /^GET \/c(\d+) HTTP\/1\.0\r\n/.exec(head);
    if (!m) return;
    sock.off('data', onData);
    const { plan } = generate(caseRng(Number(m[1])));
    if (plan.bytes.length > 0) sock.write(plan.bytes);
    switch (plan.after) {
      case 'close':
        sock.end();
        break;
      case 'reset':
        sock.resetAndDestroy();
        break;
      case 'drip': {
        let i = 0;
        const bytes = plan.drip!;
        drip = setInterval(() => {
          if (i < bytes.length && !sock.destroyed) sock.write(bytes.subarray(i, ++i));
          else clearInterval(drip);
        }, plan.dripMs!);
        break;
      }
      default:
        break;
    }
  };
  sock.on('data', onData);
}

beforeAll(async () => {
  server = net.createServer(onCheckConnection);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  port = (server.address() as net.AddressInfo).port;
});

afterAll(async () => {
  for (const s of live) s.destroy();
  await new Promise<void>((r) => server.close(() => r()));
});

describe(`health checks under hostile answers (${CASES} cases, seed ${seed})`, () => {
  it('every check concludes with the status its answer calls for, one connection at a time, bounded memory', async () => {
    const wheel = new TimerWheel(5, 1024);
    wheel.start();
    const checker = new HealthChecker(wheel);
    const failures: string[] = [];
    const counts = new Map<string, number>();
    const heapBefore = process.memoryUsage().heapUsed;
    const only = process.env.FUZZ_CASE !== undefined ? Number(process.env.FUZZ_CASE) : undefined;
    let next = only ?? 0;
    const last = only !== undefined ? only + 1 : CASES;
    let done = 0;

    const runCase = async (id: number): Promise<void> => {
      const { rule, plan } = generate(caseRng(id));
      let handle: CheckHandle | undefined;
      const t0 = Date.now();
      try {
        handle = checker.add({
          name: `fuzz/c${id}`,
          host: '127.0.0.1',
          port,
          // The first check runs within `inter` (1..20 ms); later ones never before the case ends.
          inter: 20,
          fastinter: 60_000,
          downinter: 60_000,
          rise: 1,
          fall: 1,
          timeoutMs: plan.timeoutMs,
          connectTimeoutMs: 0,
          http: { method: 'GET', uri: `/c${id}`, version: 'HTTP/1.0', expect: rule.expect },
          onChange: () => {},
        });
        const h = handle;
        await waitFor(() => h.checks >= 1, plan.timeoutMs + SLACK_MS, `case ${id} to conclude`, 2);
        const status = h.lastStatus as CheckStatus;
        counts.set(status, (counts.get(status) ?? 0) + 1);
        if (only !== undefined) console.log(`case ${id} ${plan.what}: ${h.lastReason} in ${h.lastDurationMs} ms`);
        if (!plan.allowed.includes(status)) {
          failures.push(`case ${id} (${plan.what}, expect ${JSON.stringify(rule.expect)}): ${h.lastReason}, wanted ${plan.allowed.join('|')}`);
        }
        if (h.lastDurationMs > plan.timeoutMs + SLACK_MS) failures.push(`case ${id} (${plan.what}): took ${h.lastDurationMs} ms`);
      } catch (err) {
        failures.push(`case ${id} (${plan.what}): ${(err as Error).message} after ${Date.now() - t0} ms`);
      } finally {
        handle?.remove();
        done++;
      }
    };

    const worker = async () => {
      while (next < last && failures.length < 10) await runCase(next++);
    };
    await Promise.all(Array.from({ length: PARALLEL }, () => worker()));
    checker.close();
    // Every check connection is closed by the checker (or by the server's own close).
    await waitFor(() => open === 0, 5000, 'every check connection to close').catch((e: Error) => failures.push(`${e.message}: ${open} open`));
    wheel.stop();
    const growthMb = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
    if (growthMb > 150) failures.push(`heap grew by ${growthMb.toFixed(0)} MiB`);
    console.log(`health fuzz: ${done} cases (seed ${seed}), ${accepted} connections, statuses ${JSON.stringify(Object.fromEntries(counts))}, ${failures.length} failures`);
    expect(failures, `replay: ${replay} npx vitest run test/fuzz/health.fuzz.test.ts`).toEqual([]);
    expect(done).toBe(last - (only ?? 0));
  }, LONG ? 3_600_000 : 120_000);
});
