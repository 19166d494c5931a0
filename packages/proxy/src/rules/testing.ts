/**
 * Stand-ins for the rule engine's inputs, for unit tests and the rules micro-benchmark: a
 * SampleSource built from a request description, and an in-memory Counters whose rates are plain
 * event counts (no time window). Not used by the data plane.
 */
import type { CounterKind, CounterStats, Counters, KeyShares, StoredType } from '@stickmesh/core';
import type { CompileEnv, HttpResponseSample, HttpSample, SampleSource, StickCounterSlot, TableResolver } from './types.js';

export class FakeHttp implements HttpSample {
  readonly names: string[];
  readonly lower: string[];
  readonly values: string[];
  constructor(
    readonly method: string,
    readonly target: string,
    headers: [string, string][] = [],
    readonly versionMinor = 1,
  ) {
    this.names = headers.map((h) => h[0]);
    this.lower = this.names.map((n) => n.toLowerCase());
    this.values = headers.map((h) => h[1]);
  }
  get headerCount(): number {
    return this.names.length;
  }
  headerNameIs(i: number, lower: string): boolean {
    return this.lower[i] === lower;
  }
  headerValue(i: number): string {
    return this.values[i] ?? '';
  }
  headerName(i: number): string {
    return this.names[i] ?? '';
  }
}

export class FakeResponse implements HttpResponseSample {
  readonly lower: string[];
  readonly values: string[];
  constructor(
    readonly status: number,
    headers: [string, string][] = [],
  ) {
    this.lower = headers.map((h) => h[0].toLowerCase());
    this.values = headers.map((h) => h[1]);
  }
  get headerCount(): number {
    return this.lower.length;
  }
  headerNameIs(i: number, lower: string): boolean {
    return this.lower[i] === lower;
  }
  headerValue(i: number): string {
    return this.values[i] ?? '';
  }
}

export interface FakeSourceInit {
  clientIp?: string;
  clientPort?: number;
  localIp?: string;
  localPort?: number;
  ssl?: boolean;
  sni?: string;
  reqBytes?: number;
  frontendName?: string;
  backendName?: string;
  sc?: (StickCounterSlot | undefined)[];
  http?: HttpSample;
  res?: HttpResponseSample;
}

export function fakeSource(init: FakeSourceInit = {}): SampleSource {
  return {
    clientIp: init.clientIp ?? '192.0.2.10',
    clientPort: init.clientPort ?? 40000,
    localIp: init.localIp ?? '127.0.0.1',
    localPort: init.localPort ?? 8080,
    ssl: init.ssl ?? false,
    sni: init.sni,
    reqBytes: init.reqBytes,
    frontendName: init.frontendName ?? 'fe',
    backendName: init.backendName ?? 'be',
    sc: init.sc ?? [undefined, undefined, undefined],
    http: init.http,
    res: init.res,
  };
}

/** In-memory Counters: one row of numbers per key; rates count events without a window; `size` bounds the keys. */
export class FakeCounters implements Counters {
  readonly mode = 'local' as const;
  private readonly keys = new Map<string, number>();
  private readonly rows: Float64Array[] = [];
  private readonly refs: number[] = [];
  private readonly names: string[] = [];
  acquires = 0;
  constructor(
    readonly id: string,
    readonly data: readonly StoredType[],
    readonly size = 1000,
  ) {}
  column(kind: CounterKind, idx = 0): number {
    return this.data.findIndex((d) => d.kind === kind && d.idx === idx);
  }
  acquire(key: string): number {
    this.acquires++;
    let slot = this.keys.get(key);
    if (slot === undefined) {
      if (this.keys.size >= this.size) return -1;
      slot = this.rows.length;
      this.rows.push(new Float64Array(this.data.length));
      this.refs.push(0);
      this.names.push(key);
      this.keys.set(key, slot);
    }
    this.refs[slot]!++;
    return slot;
  }
  release(slot: number): void {
    this.refs[slot]!--;
  }
  references(slot: number): number {
    return this.refs[slot] ?? 0;
  }
  find(key: string): number {
    return this.keys.get(key) ?? -1;
  }
  add(slot: number, col: number, n: number): void {
    this.rows[slot]![col]! += n;
  }
  set(slot: number, col: number, value: number): void {
    this.rows[slot]![col] = value;
  }
  read(slot: number, col: number): number {
    return this.rows[slot]![col]!;
  }
  get count(): number {
    return this.keys.size;
  }
  get stats(): CounterStats {
    return { count: this.count, capacity: this.size, evictions: 0, expired: 0, trackFailures: 0, remoteApplied: 0, remoteRejected: 0 };
  }
  shares(key: string): KeyShares | undefined {
    void key;
    return undefined;
  }
  /** Tracks `key` as HAProxy's track-scN would: the slot a SampleSource's `sc[N]` holds. */
  track(key: string): StickCounterSlot {
    const slot = this.acquire(key);
    if (slot < 0) throw new Error(`FakeCounters ${this.id}: full`);
    return { counters: this, slot, key };
  }
}

/** Stored types from HAProxy's `store` text, e.g. `gpc0,http_req_rate(10s),gpc(3)` (the fake ignores periods). */
export function stored(text: string): StoredType[] {
  const out: StoredType[] = [];
  for (const item of text.split(/,(?![^(]*\))/)) {
    const m = /^([a-z_0-9]+?)(?:\(([^)]*)\))?$/.exec(item.trim());
    if (!m) throw new Error(`stored(): bad item "${item}"`);
    const name = m[1]!;
    const args = m[2] ? m[2].split(',') : [];
    const legacy = /^(gpc|gpt)(\d)(_rate)?$/.exec(name);
    if (legacy) {
      out.push({ kind: (legacy[3] ? 'gpc_rate' : legacy[1]) as CounterKind, idx: Number(legacy[2]), period: 0 });
    } else if (name === 'gpc' || name === 'gpt' || name === 'gpc_rate') {
      const n = Number(args[0] ?? '1');
      for (let i = 0; i < n; i++) out.push({ kind: name, idx: i, period: 0 });
    } else {
      out.push({ kind: name as CounterKind, idx: 0, period: 0 });
    }
  }
  return out;
}

/** A TableResolver over fake tables by id. */
export function fakeTables(tables: FakeCounters[]): TableResolver {
  const byId = new Map(tables.map((t) => [t.id, t]));
  return {
    counters: (id) => byId.get(id),
    entryCount: (id) => byId.get(id)?.count ?? 0,
    capacity: (id) => byId.get(id)?.size ?? 0,
  };
}

export function fakeEnv(tables: FakeCounters[] = [], ownTable?: string, acls: CompileEnv['acls'] = new Map()): CompileEnv {
  return { acls, tables: fakeTables(tables), ownTable };
}
