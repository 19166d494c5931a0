/**
 * Seeded fuzz of DNS service discovery: the real resolver (node:dns, c-ares) asks a tiny UDP DNS
 * server on a loopback port, which answers each query with hostile packets; the answers go
 * through the resolver's checks and `server-template` slot assignment (ServerDiscovery).
 *
 * Each case has its own names (`c<id>.fuzz.test`, `_c<id>._tcp.fuzz.test`, SRV targets
 * `t<k>.c<id>.fuzz.test`), so the server answers every query from the case's own generator:
 * A/AAAA lists mixing usable addresses with 0.0.0.0, 255.255.255.255, multicast, `::`, ff02::1;
 * hundreds of records (beyond the slots); truncated packets; compression-pointer loops; wrong ids;
 * huge section counts; wrong record lengths and types; CNAME loops; error rcodes; byte mutations;
 * silence; SRV records with target `.`, port 0, odd weights, unresolvable or hostile targets and
 * more records than MAX_SRV_RECORDS.
 *
 * Checks per case: resolving never throws and ends within its retry budget; the slots keep their
 * count and hold only usable, distinct addresses with ports 1..65535 and weights 1..256; for a
 * well-formed answer, the slots hold exactly min(slots, usable addresses) of its usable
 * addresses, and unusable addresses in it are reported once (`onIgnored`, the log). The resolver's
 * cache stays within its bound and heap growth is bounded. `FUZZ_LONG=1` runs 100,000 cases;
 * replay with `FUZZ_SEED=...`, one case with `FUZZ_CASE=id`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import dgram from 'node:dgram';
import net from 'node:net';
import { TimerWheel, type ResolversConfig } from '@stickmesh/core';
import { DnsResolverSection, MAX_CACHE_ENTRIES, MAX_SRV_RECORDS, type DnsAnswer } from '../../packages/proxy/src/discovery/resolver.js';
import { ServerDiscovery } from '../../packages/proxy/src/discovery/discovery.js';
import type { Slot } from '../../packages/proxy/src/discovery/slots.js';
import { Rng, fuzzRun } from '../helpers/rng.js';

const { long: LONG, cases: CASES, seed, replay } = fuzzRun(400);
const PARALLEL = 32;
const RETRY_MS = 500;
/**
 * Attempts per query: a well-formed answer must survive event-loop stalls of a loaded machine
 * (a 100,000-case run with 2 x 300 ms saw 4 resolutions of well-formed answers time out).
 */
const RETRIES = 3;
/** A resolution (SRV, then its targets in parallel) ends within this. */
const CASE_BUDGET_MS = 2 * RETRIES * RETRY_MS + 2000;

const A = 1;
const CNAME = 5;
const TXT = 16;
const AAAA = 28;
const SRV = 33;

// ------------------------------------------------------------------ DNS wire helpers

function encodeName(name: string): Buffer {
  const parts: Buffer[] = [];
  for (const label of name.split('.')) {
    if (label === '') continue;
    const b = Buffer.from(label, 'latin1');
    parts.push(Buffer.from([b.length]), b);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

function rr(name: Buffer, type: number, ttl: number, rdata: Buffer, rdlength = rdata.length): Buffer {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(type, 0);
  fixed.writeUInt16BE(1, 2);
  fixed.writeUInt32BE(ttl >>> 0, 4);
  fixed.writeUInt16BE(rdlength & 0xffff, 8);
  return Buffer.concat([name, fixed, rdata]);
}

function ipv4(a: string): Buffer {
  return Buffer.from(a.split('.').map(Number));
}

function ipv6(a: string): Buffer {
  const out = Buffer.alloc(16);
  let s = a;
  let tail4: Buffer | undefined;
  const m = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (m) {
    s = `${m[1]}0:0`;
    tail4 = ipv4(m[2]!);
  }
  const [head = '', tail = ''] = s.split('::');
  const h = head ? head.split(':') : [];
  const t = s.includes('::') ? (tail ? tail.split(':') : []) : [];
  const groups = s.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  if (tail4) tail4.copy(out, 12);
  return out;
}

function srvData(priority: number, weight: number, port: number, target: string): Buffer {
  const b = Buffer.alloc(6);
  b.writeUInt16BE(priority, 0);
  b.writeUInt16BE(weight, 2);
  b.writeUInt16BE(port, 4);
  return Buffer.concat([b, encodeName(target)]);
}

interface Query {
  id: number;
  rd: boolean;
  name: string;
  type: number;
  /** The question section as received (echoed back). */
  question: Buffer;
}

function parseQuery(msg: Buffer): Query | undefined {
  if (msg.length < 17) return undefined;
  let i = 12;
  const labels: string[] = [];
  while (i < msg.length && msg[i] !== 0) {
    const n = msg[i]!;
    if (n > 63 || i + 1 + n > msg.length) return undefined;
    labels.push(msg.toString('latin1', i + 1, i + 1 + n));
    i += 1 + n;
  }
  if (i + 5 > msg.length) return undefined;
  return {
    id: msg.readUInt16BE(0),
    rd: (msg[2]! & 1) === 1,
    name: labels.join('.').toLowerCase(),
    type: msg.readUInt16BE(i + 1),
    question: msg.subarray(12, i + 5),
  };
}

function response(q: Query, o: { rcode?: number; answers?: Buffer[]; an?: number; qd?: number; id?: number; tc?: boolean; question?: Buffer }): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(o.id ?? q.id, 0);
  h.writeUInt16BE(0x8400 | (q.rd ? 0x0100 : 0) | 0x0080 | (o.tc ? 0x0200 : 0) | ((o.rcode ?? 0) & 0xf), 2);
  const answers = o.answers ?? [];
  h.writeUInt16BE(o.qd ?? 1, 4);
  h.writeUInt16BE(o.an ?? answers.length, 6);
  return Buffer.concat([h, o.question ?? q.question, ...answers]);
}

/** Pointer to the question name (offset 12), the usual compressed owner name. */
const QNAME_PTR = Buffer.from([0xc0, 0x0c]);

// ------------------------------------------------------------------ case plans

const BAD_V4 = ['0.0.0.0', '255.255.255.255', '224.0.0.1', '239.255.255.250', '0.1.2.3', '240.0.0.1', '250.1.2.3'];
const BAD_V6 = ['::', 'ff02::1', 'ff05::1:3', '::ffff:0.0.0.0', '::ffff:255.255.255.255', '::ffff:224.0.0.9'];

/** Independent of the resolver's own rule: what the test calls unusable. */
function isUnusable(a: string): boolean {
  if (BAD_V4.includes(a) || BAD_V6.includes(a)) return true;
  if (net.isIPv4(a)) {
    const f = Number(a.split('.')[0]);
    return f === 0 || f >= 224;
  }
  const l = a.toLowerCase();
  if (l === '::' || l.startsWith('ff')) return true;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(l);
  return mapped ? isUnusable(mapped[1]!) : false;
}

function goodV4(rng: Rng): string {
  return rng.chance(0.5) ? `10.${rng.int(0, 255)}.${rng.int(0, 255)}.${rng.int(1, 254)}` : `127.${rng.int(0, 255)}.${rng.int(0, 255)}.${rng.int(1, 254)}`;
}
function goodV6(rng: Rng): string {
  return rng.pick([`2001:db8::${rng.int(1, 0xffff).toString(16)}`, `fd00:${rng.int(1, 0xffff).toString(16)}::1`, `::ffff:10.0.${rng.int(0, 255)}.${rng.int(1, 254)}`]);
}

/** How one name's A or AAAA query is answered. */
type AddrAnswer =
  | { kind: 'records'; addrs: string[]; ttl: number }
  | { kind: 'rcode'; rcode: number }
  | { kind: 'drop' }
  | { kind: 'hostile'; how: number };

function ttlFor(rng: Rng): number {
  // Mostly short (c-ares keeps its own cache by TTL); sometimes the extremes.
  return rng.chance(0.97) ? rng.int(0, 5) : rng.pick([0x7fffffff, 0x80000000, 0xffffffff]);
}

function addrAnswer(rng: Rng, type: number, many: boolean): AddrAnswer {
  const r = rng.int(0, 99);
  if (r < 55 || many) {
    const n = many ? rng.int(60, type === A ? 1500 : 700) : rng.int(0, 12);
    const addrs: string[] = [];
    for (let k = 0; k < n; k++) {
      const bad = rng.chance(0.3);
      addrs.push(type === A ? (bad ? rng.pick(BAD_V4) : goodV4(rng)) : bad ? rng.pick(BAD_V6) : goodV6(rng));
    }
    return { kind: 'records', addrs, ttl: ttlFor(rng) };
  }
  if (r < 65) return { kind: 'rcode', rcode: rng.pick([0, 1, 2, 3, 4, 5, rng.int(6, 15)]) };
  if (r < 69) return { kind: 'drop' };
  return { kind: 'hostile', how: rng.int(0, 11) };
}

/** A well-formed answer's usable and unusable addresses, or undefined when it is not well-formed. */
function addrsOf(a: AddrAnswer): { usable: string[]; unusable: number; failed: boolean } | undefined {
  if (a.kind === 'records') {
    const usable = a.addrs.filter((x) => !isUnusable(x));
    return { usable, unusable: a.addrs.length - usable.length, failed: false };
  }
  if (a.kind === 'rcode') return a.rcode === 0 || a.rcode === 3 ? { usable: [], unusable: 0, failed: a.rcode === 3 } : undefined;
  return undefined;
}

interface SrvRecordPlan {
  k: number;
  port: number;
  weight: number;
  /** '.' for "service not offered", else the target name. */
  target: string;
}

interface CasePlan {
  slots: number;
  srv: boolean;
  a: AddrAnswer;
  aaaa: AddrAnswer;
  /** SRV: how the SRV query is answered (records, or an A-style failure kind). */
  srvAnswer?: { kind: 'records'; recs: SrvRecordPlan[]; ttl: number } | Exclude<AddrAnswer, { kind: 'records' }>;
  /** SRV target k's A and AAAA answers. */
  targets?: Array<{ a: AddrAnswer; aaaa: AddrAnswer }>;
}

const caseRng = (id: number, salt = 0) => new Rng((seed + Math.imul(id, 0x9e3779b1) + Math.imul(salt, 0x85ebca6b)) >>> 0);

function planCase(id: number): CasePlan {
  const rng = caseRng(id);
  const slots = rng.int(1, 8);
  const many = rng.chance(0.05);
  if (!rng.chance(0.3)) return { slots, srv: false, a: addrAnswer(rng, A, many), aaaa: addrAnswer(rng, AAAA, false) };
  const n = rng.chance(0.05) ? rng.int(MAX_SRV_RECORDS + 1, MAX_SRV_RECORDS + 140) : rng.int(0, 8);
  const recs: SrvRecordPlan[] = [];
  const targets: Array<{ a: AddrAnswer; aaaa: AddrAnswer }> = [];
  for (let k = 0; k < n; k++) {
    const odd = rng.int(0, 9);
    recs.push({
      k,
      port: odd === 0 ? 0 : odd === 1 ? 65535 : rng.int(1, 65535),
      weight: rng.pick([0, 1, 255, 256, 65535, rng.int(0, 65535)]),
      target: odd === 2 ? '.' : `t${k}.c${id}.fuzz.test`,
    });
    // Targets beyond the first 64 are never asked: keep their plans cheap.
    const big = n > 16;
    targets.push({ a: big ? { kind: 'records', addrs: [goodV4(rng)], ttl: 1 } : addrAnswer(rng, A, false), aaaa: big ? { kind: 'rcode', rcode: 0 } : addrAnswer(rng, AAAA, false) });
  }
  const srvAnswer: CasePlan['srvAnswer'] = rng.chance(0.85)
    ? { kind: 'records', recs, ttl: ttlFor(rng) }
    : rng.chance(0.3)
      ? { kind: 'rcode', rcode: rng.pick([0, 1, 2, 3, 5, rng.int(6, 15)]) }
      : rng.chance(0.1)
        ? { kind: 'drop' }
        : { kind: 'hostile', how: rng.int(0, 11) };
  return { slots, srv: true, a: { kind: 'drop' }, aaaa: { kind: 'drop' }, srvAnswer, targets };
}

/** The packet (or nothing) the server sends for `q` under answer plan `a`; `rng` drives the hostile shapes. */
function build(q: Query, a: AddrAnswer, rng: Rng, good: () => Buffer[]): Buffer | undefined {
  switch (a.kind) {
    case 'drop':
      return undefined;
    case 'rcode':
      return response(q, { rcode: a.rcode });
    case 'records':
      return response(q, { answers: good() });
    case 'hostile':
      break;
  }
  const ok = response(q, { answers: good().length > 0 ? good() : [rr(QNAME_PTR, A, 1, ipv4('10.0.0.1'))] });
  switch (a.how) {
    case 0: // truncated at a random byte
      return ok.subarray(0, rng.int(0, ok.length - 1));
    case 1: {
      // The answer's owner name is a pointer to itself.
      const at = 12 + q.question.length;
      return response(q, { answers: [Buffer.concat([Buffer.from([0xc0 | (at >> 8), at & 0xff]), rr(Buffer.alloc(0), q.type, 1, q.type === AAAA ? ipv6('2001:db8::1') : ipv4('10.0.0.1'))])] });
    }
    case 2: {
      // Two pointers pointing at each other.
      const at = 12 + q.question.length;
      const loop = Buffer.from([0xc0 | ((at + 2) >> 8), (at + 2) & 0xff, 0xc0 | (at >> 8), at & 0xff]);
      return response(q, { answers: [Buffer.concat([loop, rr(Buffer.alloc(0), q.type, 1, ipv4('10.0.0.2'))])] });
    }
    case 3: // a wrong id: c-ares must drop it and time out
      return response(q, { id: (q.id + 1 + rng.int(0, 1000)) & 0xffff, answers: good() });
    case 4: // section counts far beyond the records present
      return response(q, { answers: good(), an: rng.pick([65535, 1000, good().length + 1]) });
    case 5: // question count 0 or 2
      return response(q, { qd: rng.pick([0, 2]), answers: good() });
    case 6: // A/AAAA with the wrong rdata length
      return response(q, { answers: [rr(QNAME_PTR, q.type, 1, Buffer.alloc(rng.pick([0, 3, 5, 15, 17])))] });
    case 7: // records of other types, and a CNAME loop
      return response(q, {
        answers: [
          rr(QNAME_PTR, TXT, 1, Buffer.from('\x05hello')),
          rr(QNAME_PTR, CNAME, 1, encodeName(`loop.${q.name}`)),
          rr(encodeName(`loop.${q.name}`), CNAME, 1, QNAME_PTR),
        ],
      });
    case 8: { // random byte mutations of a good answer
      const m = Buffer.from(ok);
      for (let k = rng.int(1, 6); k > 0; k--) m[rng.int(2, m.length - 1)] = rng.int(0, 255);
      return m;
    }
    case 9: // random garbage, empty included
      return Buffer.from(Array.from({ length: rng.int(0, 600) }, () => rng.int(0, 255)));
    case 10: // the truncation bit: c-ares retries over TCP, where nobody listens
      return response(q, { tc: true, answers: [] });
    default: // an answer for another question
      return response(q, { question: Buffer.concat([encodeName(`other.${q.name}`), q.question.subarray(q.question.length - 4)]), answers: good() });
  }
}

function addrRecords(q: Query, a: AddrAnswer): Buffer[] {
  if (a.kind !== 'records') return [];
  return a.addrs.map((x) => rr(QNAME_PTR, q.type, a.ttl, q.type === A ? ipv4(x) : ipv6(x)));
}

/** The server's answer to one query, from the case plan its name belongs to. */
function answerFor(q: Query): Buffer | undefined {
  let m = /^c(\d+)\.fuzz\.test$/.exec(q.name);
  if (m && (q.type === A || q.type === AAAA)) {
    const id = Number(m[1]);
    const plan = planCase(id);
    const a = q.type === A ? plan.a : plan.aaaa;
    return build(q, a, caseRng(id, q.type), () => addrRecords(q, a));
  }
  m = /^t(\d+)\.c(\d+)\.fuzz\.test$/.exec(q.name);
  if (m && (q.type === A || q.type === AAAA)) {
    const id = Number(m[2]);
    const k = Number(m[1]);
    const t = planCase(id).targets?.[k];
    if (!t) return response(q, { rcode: 3 });
    const a = q.type === A ? t.a : t.aaaa;
    return build(q, a, caseRng(id, 1000 + k * 64 + q.type), () => addrRecords(q, a));
  }
  m = /^_c(\d+)\._tcp\.fuzz\.test$/.exec(q.name);
  if (m && q.type === SRV) {
    const id = Number(m[1]);
    const s = planCase(id).srvAnswer!;
    if (s.kind === 'records') {
      return response(q, { answers: s.recs.map((r) => rr(QNAME_PTR, SRV, s.ttl, srvData(r.k % 3, r.weight, r.port, r.target))) });
    }
    return build(q, s, caseRng(id, SRV), () => [rr(QNAME_PTR, SRV, 1, srvData(0, 10, 8080, `t0.c${id}.fuzz.test`))]);
  }
  return response(q, { rcode: 3 });
}

/** What a well-formed case must end with: the usable addresses (as `addr|port`) and whether any unusable were sent. */
function expectation(plan: CasePlan): { usable: Set<string>; unusable: boolean } | undefined {
  if (!plan.srv) {
    const a = addrsOf(plan.a);
    const b = addrsOf(plan.aaaa);
    if (!a || !b) return undefined;
    // NXDOMAIN on A decides alone only when AAAA failed too; mixed NX/records cases are skipped.
    if (a.failed || b.failed) return undefined;
    return { usable: new Set([...a.usable, ...b.usable].map((x) => `${x}|8080`)), unusable: a.unusable + b.unusable > 0 };
  }
  const s = plan.srvAnswer!;
  if (s.kind !== 'records') return undefined;
  const usable = new Set<string>();
  let unusable = false;
  let picked = 0;
  const seen = new Set<string>();
  for (const r of s.recs) {
    if (r.target === '.' || r.port === 0) {
      unusable = true;
      continue;
    }
    if (seen.has(`${r.target}|${r.port}`)) continue;
    if (picked >= MAX_SRV_RECORDS) {
      unusable = true;
      continue;
    }
    seen.add(`${r.target}|${r.port}`);
    picked++;
    const t = plan.targets![r.k]!;
    const a = addrsOf(t.a);
    const b = addrsOf(t.aaaa);
    if (!a || !b || a.failed || b.failed) return undefined;
    for (const x of [...a.usable, ...b.usable]) usable.add(`${x}|${r.port}`);
    if (a.unusable + b.unusable > 0) unusable = true;
  }
  return { usable, unusable };
}

// ------------------------------------------------------------------ the server

let sock4: dgram.Socket;
let dnsPort = 0;
let queries = 0;

beforeAll(async () => {
  sock4 = dgram.createSocket('udp4');
  sock4.on('message', (msg, rinfo) => {
    queries++;
    const q = parseQuery(msg);
    if (!q) return;
    const out = answerFor(q);
    if (out) sock4.send(out, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => sock4.bind(0, '127.0.0.1', () => r()));
  dnsPort = sock4.address().port;
});

afterAll(() => {
  sock4.close();
});

// ------------------------------------------------------------------ the test

describe(`DNS discovery under hostile answers (${CASES} cases, seed ${seed})`, () => {
  it('never throws, keeps slots in bounds with usable addresses only, logs what it ignores, bounded memory', async () => {
    const cfg: ResolversConfig = {
      name: 'fuzz',
      nameservers: [{ name: 'ns1', host: '127.0.0.1', port: dnsPort }],
      resolveRetries: RETRIES,
      timeoutResolve: 1000,
      timeoutRetry: RETRY_MS,
      hold: { valid: 10_000, obsolete: 0, nx: 0, timeout: 0, refused: 0, other: 0 },
      acceptedPayloadSize: 512,
      loc: { file: 'fuzz.cfg', line: 1 },
    };
    // c-ares fails every query in flight on a channel when one malformed packet arrives on it
    // (EBADRESP), so a case's exact outcome is only checked on a section of its own. The first
    // SHARED workers share one section: cross-case interference, checked for the invariants only.
    const SHARED = 8;
    const shared = new DnsResolverSection(cfg);
    const sections = Array.from({ length: PARALLEL }, (_, w) => (w < SHARED ? shared : new DnsResolverSection(cfg)));
    const wheel = new TimerWheel(50, 64);
    const failures: string[] = [];
    const heapBefore = process.memoryUsage().heapUsed;
    const only = process.env.FUZZ_CASE !== undefined ? Number(process.env.FUZZ_CASE) : undefined;
    let next = only ?? 0;
    const last = only !== undefined ? only + 1 : CASES;
    let done = 0;
    let checked = 0;
    let ignoredLogs = 0;
    const statuses = new Map<string, number>();

    const runCase = async (id: number, section: DnsResolverSection, exact: boolean): Promise<void> => {
      const plan = planCase(id);
      const fqdn = plan.srv ? `_c${id}._tcp.fuzz.test` : `c${id}.fuzz.test`;
      const slots: Slot[] = Array.from({ length: plan.slots }, () => ({ target: undefined, obsoleteSince: 0 }));
      const logged: DnsAnswer[] = [];
      const changes: number[][] = [];
      let status = '';
      let detail = '';
      const d = new ServerDiscovery({
        name: `be/c${id}`,
        fqdn,
        port: 8080,
        weight: 7,
        resolver: section,
        wheel,
        slots,
        onChange: (changed) => changes.push(changed),
        onError: (a) => {
          status = a.status;
        },
        onIgnored: (a) => logged.push(a),
      });
      const t0 = Date.now();
      try {
        // The answer as the resolver reports it (never a rejection), then the same answer applied.
        const answer = await section.resolve(fqdn, 8080, 7);
        status ||= answer.status;
        detail = answer.detail;
        d.apply(answer);
      } catch (err) {
        failures.push(`case ${id}: resolve threw ${(err as Error).stack ?? String(err)}`);
        return;
      } finally {
        done++;
      }
      const ms = Date.now() - t0;
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      ignoredLogs += logged.length;
      const show = () => `case ${id} (${JSON.stringify(plan).slice(0, 300)})`;
      if (only !== undefined) console.log(show(), status, JSON.stringify(slots), JSON.stringify(logged));
      if (ms > CASE_BUDGET_MS) failures.push(`${show()}: took ${ms} ms`);
      if (slots.length !== plan.slots) failures.push(`${show()}: ${slots.length} slots, not ${plan.slots}`);
      for (const c of changes) for (const i of c) if (!(i >= 0 && i < plan.slots)) failures.push(`${show()}: changed slot ${i}`);
      const keys = new Set<string>();
      for (const s of slots) {
        const t = s.target;
        if (!t) continue;
        const key = `${t.address}|${t.port}`;
        if (keys.has(key)) failures.push(`${show()}: ${key} in two slots`);
        keys.add(key);
        if (net.isIP(t.address) === 0 || isUnusable(t.address)) failures.push(`${show()}: unusable address ${t.address} in a slot`);
        if (!Number.isInteger(t.port) || t.port < 1 || t.port > 65535) failures.push(`${show()}: port ${t.port}`);
        if (!Number.isInteger(t.weight) || t.weight < 1 || t.weight > 256) failures.push(`${show()}: weight ${t.weight}`);
      }
      const want = exact ? expectation(plan) : undefined;
      if (want && status === 'ok') {
        checked++;
        for (const k of keys) if (!want.usable.has(k)) failures.push(`${show()}: slot holds ${k}, not in the answer's usable addresses`);
        if (keys.size !== Math.min(plan.slots, want.usable.size)) {
          failures.push(`${show()}: ${keys.size} slots filled, want ${Math.min(plan.slots, want.usable.size)}; ignored ${JSON.stringify(logged[0]?.ignored)}`);
        }
        if (want.unusable && logged.length !== 1) failures.push(`${show()}: unusable records reported ${logged.length} times, want once`);
        if (!want.unusable && logged.length !== 0) failures.push(`${show()}: reported ignored records ${JSON.stringify(logged[0]?.ignored)} for a clean answer`);
      } else if (want && status !== 'ok') {
        failures.push(`${show()}: a well-formed answer ended ${status} ${detail}`);
      }
    };

    const worker = async (w: number) => {
      // A replayed case runs on a section of its own.
      const own = only !== undefined || w >= SHARED;
      while (next < last && failures.length < 10) await runCase(next++, own ? sections[w]! : shared, own);
    };
    await Promise.all(Array.from({ length: only !== undefined ? 1 : PARALLEL }, (_, w) => worker(only !== undefined ? PARALLEL - 1 : w)));
    for (const section of new Set(sections)) {
      const cacheSize = (section as unknown as { cache: Map<string, unknown> }).cache.size;
      if (cacheSize > MAX_CACHE_ENTRIES) failures.push(`resolver cache holds ${cacheSize} > ${MAX_CACHE_ENTRIES}`);
    }
    const growthMb = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
    if (growthMb > 150) failures.push(`heap grew by ${growthMb.toFixed(0)} MiB`);
    console.log(
      `dns fuzz: ${done} cases (seed ${seed}), ${queries} queries answered, ${checked} well-formed answers checked exactly, ` +
        `${ignoredLogs} ignored-record logs, statuses ${JSON.stringify(Object.fromEntries(statuses))}, ${failures.length} failures`,
    );
    expect(failures, `replay: ${replay} npx vitest run test/fuzz/dns.fuzz.test.ts`).toEqual([]);
    expect(done).toBe(last - (only ?? 0));
  }, LONG ? 3_600_000 : 120_000);
});
