/**
 * DNS client of one `resolvers` section: queries its nameservers (node:dns `Resolver`, one per
 * nameserver, so a retry really goes to the next one), and caches answers by their TTL because
 * Node's resolver does not cache.
 *
 * - A name starting with `_` is an SRV name (`_service._proto.domain`): each record's target is
 *   resolved to its A/AAAA addresses, its port and weight come from the record (HAProxy's mapping
 *   of SRV weight 0..65535 to 1..256: weight / 256 + 1).
 * - Any other name is queried for A and AAAA together.
 * - `resolve_retries` attempts in all, rotating over the nameservers; each attempt waits at most
 *   `timeout retry`. A definitive answer (records, NODATA or NXDOMAIN) ends the attempts.
 * - Successful answers are kept for min(TTL, `hold valid`); SRV answers, whose TTL Node does not
 *   report, for the smallest TTL of their targets' addresses. Failures are never cached.
 * - Records that cannot become a server are left out and described in `DnsAnswer.ignored`: an
 *   address a server cannot have (0.0.0.0/8, multicast, 240.0.0.0/4 with 255.255.255.255, `::`,
 *   ff00::/8, or one of those IPv4-mapped), an SRV record with target `.` or port 0, SRV records
 *   beyond `MAX_SRV_RECORDS`, and an SRV target that does not resolve (the answer fails only when
 *   every target failed).
 * `accepted_payload_size` is accepted but cannot be applied: Node's resolver does not expose the
 * EDNS buffer size; a truncated UDP answer is retried over TCP by c-ares, so large answers still work.
 */
import { Resolver } from 'node:dns/promises';
import dns from 'node:dns';
import net from 'node:net';
import { urlHost, type ResolversConfig } from '@stickmesh/core';
import type { SlotTarget } from './slots.js';

export type DnsStatus = 'ok' | 'nx' | 'timeout' | 'refused' | 'other';

export interface DnsAnswer {
  status: DnsStatus;
  /** Addresses (A/AAAA), or SRV targets resolved to addresses; empty unless `ok`. */
  targets: SlotTarget[];
  /** Error detail for logs ('' when ok). */
  detail: string;
  /** Records of an `ok` answer that were left out; absent when none were. */
  ignored?: IgnoredRecords;
}

/** Records left out of an answer: how many, and why for the first `MAX_IGNORED_NOTES` of them. */
export interface IgnoredRecords {
  count: number;
  notes: string[];
}

/** Descriptions kept per answer; further ignored records are only counted. */
export const MAX_IGNORED_NOTES = 8;
/** SRV records resolved per answer (their targets are resolved in parallel); the rest are ignored. */
export const MAX_SRV_RECORDS = 64;
/** Longest remote name quoted in a note. */
const MAX_NOTE_NAME = 100;

function ignore(into: IgnoredRecords, note: string): void {
  into.count++;
  if (into.notes.length < MAX_IGNORED_NOTES) into.notes.push(note);
}

function quoteName(name: string): string {
  const s = name.length > MAX_NOTE_NAME ? `${name.slice(0, MAX_NOTE_NAME)}...` : name;
  return JSON.stringify(s);
}

/**
 * Why `address` (as node:dns reports it) cannot be a server's address, or undefined when it can.
 * Loopback and private ranges are allowed: tests and single-host setups use them.
 */
export function unusableAddress(address: string): string | undefined {
  const family = net.isIP(address);
  if (family === 4) return unusableV4(address);
  if (family !== 6) return 'not an IP address';
  const a = address.toLowerCase();
  if (a === '::') return 'unspecified address';
  if (a.startsWith('ff')) return 'multicast address';
  if (a.startsWith('::ffff:') && net.isIPv4(a.slice(7))) return unusableV4(a.slice(7));
  return undefined;
}

function unusableV4(a: string): string | undefined {
  const first = Number(a.slice(0, a.indexOf('.')));
  if (first === 0) return 'this-network address (0.0.0.0/8)';
  if (first >= 224 && first <= 239) return 'multicast address';
  if (first >= 240) return 'reserved or broadcast address';
  return undefined;
}

/** The node:dns calls this client needs (a seam for tests). */
export interface DnsBackend {
  resolve4(name: string, o: { ttl: true }): Promise<Array<{ address: string; ttl: number }>>;
  resolve6(name: string, o: { ttl: true }): Promise<Array<{ address: string; ttl: number }>>;
  resolveSrv(name: string): Promise<Array<{ name: string; port: number; priority: number; weight: number }>>;
}

/** Cached answers kept per section. At the bound the oldest inserted entry is dropped. */
export const MAX_CACHE_ENTRIES = 1024;

interface Cached {
  answer: DnsAnswer;
  expires: number;
}

function statusOf(err: unknown): DnsStatus | 'nodata' {
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case dns.NOTFOUND:
      return 'nx';
    case dns.NODATA:
      return 'nodata';
    case dns.TIMEOUT:
      return 'timeout';
    case dns.REFUSED:
    case dns.CONNREFUSED:
      return 'refused';
    default:
      return 'other';
  }
}

/** Maps an SRV weight (0..65535) to a server weight (1..256) as HAProxy does. */
export function srvWeight(w: number): number {
  return Math.min(256, Math.floor(w / 256) + 1);
}

export class DnsResolverSection {
  readonly cfg: ResolversConfig;
  private readonly backends: DnsBackend[];
  private readonly cache = new Map<string, Cached>();
  /** Queries in flight by name; bounded by the names configured (entries leave when settled). */
  private readonly inflight = new Map<string, Promise<{ answer: DnsAnswer; ttlMs: number }>>();
  private readonly now: () => number;
  /** Queries sent to a nameserver (each attempt counts), for stats and tests. */
  queries = 0;

  constructor(cfg: ResolversConfig, opts: { now?: () => number; backends?: DnsBackend[] } = {}) {
    this.cfg = cfg;
    this.now = opts.now ?? Date.now;
    this.backends =
      opts.backends ??
      expandNameservers(cfg).map((server) => {
        const r = new Resolver({ timeout: cfg.timeoutRetry, tries: 1 });
        r.setServers([server]);
        return r as unknown as DnsBackend;
      });
  }

  /** Resolves `name` (SRV when it starts with `_`), from the cache while its answer is fresh. */
  async resolve(name: string, defaultPort: number, defaultWeight: number): Promise<DnsAnswer> {
    const key = `${name}|${defaultPort}|${defaultWeight}`;
    const hit = this.cache.get(key);
    if (hit && hit.expires > this.now()) return hit.answer;
    let p = this.inflight.get(key);
    if (!p) {
      p = this.query(name, defaultPort, defaultWeight).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    const { answer, ttlMs } = await p;
    if (answer.status === 'ok') {
      const life = Math.min(ttlMs, this.cfg.hold.valid);
      this.cache.delete(key);
      if (life > 0) {
        if (this.cache.size >= MAX_CACHE_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
        this.cache.set(key, { answer, expires: this.now() + life });
      }
    }
    return answer;
  }

  private async query(name: string, port: number, weight: number): Promise<{ answer: DnsAnswer; ttlMs: number }> {
    if (!name.startsWith('_')) return this.addresses(name, port, weight);
    const srv = await this.attempts((b) => b.resolveSrv(name));
    if (!Array.isArray(srv)) return { answer: { status: srv.status, targets: [], detail: srv.detail }, ttlMs: 0 };
    const ignored: IgnoredRecords = { count: 0, notes: [] };
    const picked: Array<{ name: string; port: number; weight: number }> = [];
    const seen = new Set<string>();
    for (const r of srv) {
      const target = typeof r.name === 'string' ? r.name : '';
      if (target === '' || target === '.') ignore(ignored, 'SRV target "." (service not offered)');
      else if (!Number.isInteger(r.port) || r.port < 1 || r.port > 65535) ignore(ignored, `SRV ${quoteName(target)}: port ${r.port}`);
      else if (seen.has(`${target}|${r.port}`)) continue;
      else if (picked.length >= MAX_SRV_RECORDS) ignore(ignored, `SRV ${quoteName(target)}: beyond ${MAX_SRV_RECORDS} records`);
      else {
        seen.add(`${target}|${r.port}`);
        picked.push({ name: target, port: r.port, weight: srvWeight(r.weight) });
      }
    }
    const resolved = await Promise.all(picked.map((r) => this.addresses(r.name, r.port, r.weight)));
    const targets: SlotTarget[] = [];
    let ttlMs = Infinity;
    let firstFailure: { answer: DnsAnswer; ttlMs: number } | undefined;
    let answered = 0;
    resolved.forEach((a, i) => {
      if (a.answer.status !== 'ok') {
        ignore(ignored, `SRV target ${quoteName(picked[i]!.name)}: ${a.answer.status}`);
        firstFailure ??= a;
        return;
      }
      answered++;
      for (const n of a.answer.ignored?.notes ?? []) ignore(ignored, n);
      if (a.answer.ignored) ignored.count += a.answer.ignored.count - a.answer.ignored.notes.length;
      targets.push(...a.answer.targets);
      ttlMs = Math.min(ttlMs, a.ttlMs);
    });
    // Every target failed: the answer is that failure (the `hold` rules then apply).
    if (answered === 0 && firstFailure) return firstFailure;
    const answer: DnsAnswer = { status: 'ok', targets, detail: '' };
    if (ignored.count > 0) answer.ignored = ignored;
    return { answer, ttlMs: ttlMs === Infinity ? 0 : ttlMs };
  }

  private async addresses(name: string, port: number, weight: number): Promise<{ answer: DnsAnswer; ttlMs: number }> {
    const [v4, v6] = await Promise.all([
      this.attempts((b) => b.resolve4(name, { ttl: true })),
      this.attempts((b) => b.resolve6(name, { ttl: true })),
    ]);
    const recs = [...(Array.isArray(v4) ? v4 : []), ...(Array.isArray(v6) ? v6 : [])];
    if (!Array.isArray(v4) && !Array.isArray(v6)) {
      // Neither family answered: report the IPv4 failure (NXDOMAIN wins over a missing AAAA).
      return { answer: { status: v4.status, targets: [], detail: v4.detail }, ttlMs: 0 };
    }
    const failed = [v4, v6].find((x) => !Array.isArray(x) && x.status !== 'nx');
    if (failed && !Array.isArray(failed) && recs.length === 0) return { answer: { status: failed.status, targets: [], detail: failed.detail }, ttlMs: 0 };
    const ignored: IgnoredRecords = { count: 0, notes: [] };
    const targets: SlotTarget[] = [];
    let ttl = Infinity;
    for (const r of recs) {
      const why = unusableAddress(r.address);
      if (why !== undefined) {
        ignore(ignored, `${quoteName(name)} ${r.address}: ${why}`);
        continue;
      }
      targets.push({ address: r.address, port, weight });
      // A TTL with the top bit set reads as negative: RFC 2181 §8 says treat it as 0.
      ttl = Math.min(ttl, Math.max(0, r.ttl));
    }
    const answer: DnsAnswer = { status: 'ok', targets, detail: '' };
    if (ignored.count > 0) answer.ignored = ignored;
    return { answer, ttlMs: ttl === Infinity ? 0 : ttl * 1000 };
  }

  /**
   * Runs one query over the nameservers, `resolve_retries` attempts in all. Returns the records
   * (NODATA gives `[]`), or the last failure.
   */
  private async attempts<T>(q: (b: DnsBackend) => Promise<T[]>): Promise<T[] | { status: DnsStatus; detail: string }> {
    let last: { status: DnsStatus; detail: string } = { status: 'other', detail: 'no nameserver' };
    const tries = Math.max(1, this.cfg.resolveRetries);
    for (let i = 0; i < tries && this.backends.length > 0; i++) {
      this.queries++;
      try {
        return await q(this.backends[i % this.backends.length]!);
      } catch (err) {
        const st = statusOf(err);
        if (st === 'nodata') return [];
        last = { status: st, detail: (err as Error).message };
        if (st === 'nx') return last;
      }
    }
    return last;
  }
}

/** `host:port` strings for the section's nameservers (`parse-resolv-conf` expands to the system's). */
function expandNameservers(cfg: ResolversConfig): string[] {
  const out: string[] = [];
  for (const ns of cfg.nameservers) {
    if (ns.name === 'resolv.conf' && ns.host === 'resolv.conf') out.push(...dns.getServers());
    else out.push(`${urlHost(ns.host)}:${ns.port}`);
  }
  return out;
}
