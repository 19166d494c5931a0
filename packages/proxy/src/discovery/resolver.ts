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
 * `accepted_payload_size` is accepted but cannot be applied: Node's resolver does not expose the
 * EDNS buffer size; a truncated UDP answer is retried over TCP by c-ares, so large answers still work.
 */
import { Resolver } from 'node:dns/promises';
import dns from 'node:dns';
import type { ResolversConfig } from '@stickmesh/core';
import type { SlotTarget } from './slots.js';

export type DnsStatus = 'ok' | 'nx' | 'timeout' | 'refused' | 'other';

export interface DnsAnswer {
  status: DnsStatus;
  /** Addresses (A/AAAA), or SRV targets resolved to addresses; empty unless `ok`. */
  targets: SlotTarget[];
  /** Error detail for logs ('' when ok). */
  detail: string;
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
    const targets: SlotTarget[] = [];
    let ttlMs = Infinity;
    for (const r of srv) {
      const a = await this.addresses(r.name, r.port, srvWeight(r.weight));
      if (a.answer.status !== 'ok') return a;
      targets.push(...a.answer.targets);
      ttlMs = Math.min(ttlMs, a.ttlMs);
    }
    return { answer: { status: 'ok', targets, detail: '' }, ttlMs: ttlMs === Infinity ? 0 : ttlMs };
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
    let ttl = Infinity;
    for (const r of recs) ttl = Math.min(ttl, r.ttl);
    return {
      answer: { status: 'ok', targets: recs.map((r) => ({ address: r.address, port, weight })), detail: '' },
      ttlMs: ttl === Infinity ? 0 : ttl * 1000,
    };
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
    else out.push(ns.host.includes(':') ? `[${ns.host}]:${ns.port}` : `${ns.host}:${ns.port}`);
  }
  return out;
}
