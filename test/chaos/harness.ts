/**
 * Chaos harness: N stickmesh node processes and B backend processes on loopback, sticky traffic
 * from thousands of clients (each its own 127.20.x.y source address, half of them also carrying
 * the persistence cookie), and a seeded schedule of faults, one at a time:
 *
 *   kill       SIGKILL a node, traffic continues on the others, then restart it
 *   restart    SIGTERM (drain + snapshot), then start again
 *   freeze     SIGSTOP a node, then SIGCONT
 *   reload     SIGHUP with a changed config file
 *   backend    SIGKILL a backend, then start it again on the same port
 *   partition  cut the link between two nodes      isolate  cut every link of one node
 *   split      cut every link between two groups   delay    delay every link of one node
 *   reset      reset every connection of one node's links
 *
 * Peers never dial each other directly: each node's `server` lines in the peers section point at a
 * per-pair `Link` (see link.ts) on a harness-owned port, so any link can be cut, delayed or reset.
 *
 * The mapping rule (documented in docs/RELIABILITY.md): a response received is an acknowledged
 * mapping client -> server at the time it arrived. A mapping is *guaranteed* once
 *   - it was acknowledged at least `WINDOW_MS` before the onset of a fault, with the cluster
 *     healthy in between (every fault is healed and converged before the next one), or
 *   - the tables of all nodes were seen identical after it was acknowledged (a checkpoint).
 * A guaranteed mapping must be served again, through any node, until the client is served by
 * another server with the harness' consent: its server was down (process dead, or not yet seen
 * UP by every node after revival) at some time between the acknowledgement and the check.
 * A request whose response never came (timeout, reset) may still have taken effect; such a client
 * is "tainted" and has no guarantee until the next checkpoint, unless it already held a guaranteed
 * mapping (a node that knows the mapping can only store the same server again).
 * A served response that contradicts a guaranteed mapping without such consent is a lost mapping.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../helpers/backends.js';
import { spawnNode } from '../helpers/cluster.js';
import { Rng } from '../helpers/rng.js';
import { waitFor } from '../helpers/wait.js';
import { Link } from './link.js';

const BACKEND = fileURLToPath(new URL('./backend.mjs', import.meta.url));

/** Replication window: peers flush local writes within 5 ms; 50 ms leaves 10x for lag under load. */
export const WINDOW_MS = 50;
/** Bar for time-to-identical tables after a heal. */
export const CONVERGE_BAR_MS = 1000;
const COOKIE = 'SRV';

export type FaultKind = 'kill' | 'restart' | 'freeze' | 'reload' | 'backend' | 'partition' | 'isolate' | 'split' | 'delay' | 'reset';

const WEIGHTS: Array<[FaultKind, number]> = [
  ['kill', 3], ['freeze', 2], ['restart', 1], ['reload', 2], ['backend', 2],
  ['partition', 2], ['isolate', 1], ['split', 1], ['delay', 2], ['reset', 1],
];

export interface ChaosOptions {
  seed: number;
  faults: number;
  /** Node count (3 to 5); derived from the seed when absent. */
  nodes?: number;
  clients?: number;
  backends?: number;
  /** Stick table size; a small one makes the table-full scenario (then only cookie clients are guaranteed). */
  tableSize?: number;
  concurrency?: number;
  /** With a full table, require identical tables anyway (they currently diverge: see converge). */
  strictFull?: boolean;
  log?: (line: string) => void;
}

export interface Fault {
  i: number;
  kind: FaultKind;
  target: string;
  holdMs: number;
  detail: string;
  onsetAt?: number;
  convergeMs?: number;
  lost?: number;
}

export interface Loss {
  client: string;
  expected: string;
  got: string;
  via: string;
  ackedAt: number;
  at: number;
  fault: number;
  phase: string;
}

export interface ChaosReport {
  seed: number;
  nodes: number;
  clients: number;
  tableSize: number;
  faults: Fault[];
  requests: number;
  acks: number;
  failedRequests: number;
  checked: number;
  crashes: string[];
  lost: Loss[];
  problems: string[];
  maxConvergeMs: number;
  /** Heals after which a full table stayed different between nodes (only counted with strictFull: false). */
  divergent: number;
  durationMs: number;
  replay: string;
}

interface Node {
  name: string;
  proxyPort: number;
  peersPort: number;
  adminPort: number;
  dataDir: string;
  env: Record<string, string>;
  proc: ChildProcess | undefined;
  /** Routable: started, ready, not frozen. */
  routable: boolean;
  expectExit: boolean;
  logs: string[];
  /** `reloaded` log lines seen since the process started. */
  reloads: number;
}

interface Backend {
  name: string;
  port: number;
  proc: ChildProcess | undefined;
  expectExit: boolean;
  /** [down from, up on every node at] intervals; an open one has `to` = Infinity. */
  down: Array<{ from: number; to: number }>;
}

interface Client {
  ip: string;
  cookieMode: boolean;
  cookie: string | undefined;
  busy: boolean;
  tainted: boolean;
  exp: { server: string; at: number; via: string; guaranteed: boolean } | undefined;
}

function weighted(rng: Rng): FaultKind {
  const total = WEIGHTS.reduce((s, [, w]) => s + w, 0);
  let r = rng.next() * total;
  for (const [k, w] of WEIGHTS) {
    if ((r -= w) < 0) return k;
  }
  return 'kill';
}

/** One HTTP GET; resolves with the server that answered, or throws. */
function get(port: number, localAddress: string, cookie: string | undefined, timeoutMs: number): Promise<{ status: number; server: string; setCookie: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: '/', agent: false, localAddress, headers: cookie ? { cookie } : {}, timeout: timeoutMs },
      (res) => {
        res.resume();
        res.on('end', () => {
          const sc = (res.headers['set-cookie'] ?? []).find((c) => c.startsWith(`${COOKIE}=`));
          resolve({ status: res.statusCode ?? 0, server: String(res.headers['x-served-by'] ?? ''), setCookie: sc?.split(';')[0] });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function getJson<T>(url: string, timeoutMs = 1000): Promise<T> {
  const r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  return (await r.json()) as T;
}

export class Chaos {
  readonly opts: Required<Omit<ChaosOptions, 'log'>> & { log: (line: string) => void };
  readonly rng: Rng;
  readonly dir: string;
  readonly cfgFile: string;
  nodes: Node[] = [];
  backends: Backend[] = [];
  links = new Map<string, Link>();
  clients: Client[] = [];
  report: ChaosReport;
  private faultIndex = -1;
  private phase = 'warmup';
  private trafficOn = false;
  private inflight = 0;
  private workers: Array<Promise<void>> = [];
  private reloadGen = 0;
  private readonly started = Date.now();

  constructor(o: ChaosOptions) {
    this.rng = new Rng(o.seed);
    // Always drawn, so that CHAOS_NODES does not shift the rest of the schedule.
    const drawn = this.rng.int(3, 5);
    const nodes = o.nodes ?? drawn;
    this.opts = {
      seed: o.seed,
      faults: o.faults,
      nodes,
      clients: o.clients ?? 2000,
      backends: o.backends ?? 3,
      tableSize: o.tableSize ?? 100_000,
      concurrency: o.concurrency ?? 32,
      strictFull: o.strictFull ?? true,
      log: o.log ?? (() => {}),
    };
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'sm-chaos-'));
    this.cfgFile = path.join(this.dir, 'chaos.cfg');
    this.report = {
      seed: o.seed,
      nodes,
      clients: this.opts.clients,
      tableSize: this.opts.tableSize,
      faults: [],
      requests: 0,
      acks: 0,
      failedRequests: 0,
      checked: 0,
      crashes: [],
      lost: [],
      problems: [],
      maxConvergeMs: 0,
      divergent: 0,
      durationMs: 0,
      replay: `CHAOS_SEED=${o.seed} CHAOS_FAULTS=${o.faults} CHAOS_NODES=${nodes} CHAOS_CLIENTS=${o.clients ?? 2000}${o.tableSize ? ` CHAOS_TABLE_SIZE=${o.tableSize}` : ''}`,
    };
  }

  private get guaranteeSrc(): boolean {
    return this.opts.tableSize >= this.opts.clients;
  }

  // ---------------------------------------------------------------- setup

  async setup(): Promise<void> {
    for (let i = 1; i <= this.opts.backends; i++) {
      const b: Backend = { name: `web${i}`, port: await freePort(), proc: undefined, expectExit: false, down: [] };
      this.backends.push(b);
      await this.startBackend(b);
    }
    for (let i = 1; i <= this.opts.nodes; i++) {
      const name = `n${i}`;
      this.nodes.push({
        name, proxyPort: await freePort(), peersPort: await freePort(), adminPort: await freePort(),
        dataDir: path.join(this.dir, name), env: {}, proc: undefined, routable: false, expectExit: false, logs: [], reloads: 0,
      });
    }
    for (const n of this.nodes) n.env[`PEER_${n.name}`] = String(n.peersPort);
    // Only the lower name of a pair dials, so one link per pair, from the lower to the higher node.
    for (const a of this.nodes) {
      for (const b of this.nodes) {
        if (a.name >= b.name) continue;
        const l = new Link(`${a.name}-${b.name}`, { host: '127.0.0.1', port: b.peersPort });
        await l.listen();
        this.links.set(l.name, l);
        a.env[`PEER_${b.name}`] = String(l.port);
        b.env[`PEER_${a.name}`] = String(a.peersPort);
      }
    }
    this.writeConfig();
    await Promise.all(this.nodes.map((n) => this.startNode(n)));
    await Promise.all(this.nodes.map((n) => this.waitRoutable(n)));
    for (let i = 0; i < this.opts.clients; i++) {
      this.clients.push({ ip: `127.20.${Math.floor(i / 250)}.${(i % 250) + 1}`, cookieMode: i % 2 === 1, cookie: undefined, busy: false, tainted: false, exp: undefined });
    }
  }

  private writeConfig(): void {
    const peers = this.nodes.map((n) => `    server ${n.name} "127.0.0.1:\${PEER_${n.name}}"`).join('\n');
    const servers = this.backends.map((b) => `    server ${b.name} 127.0.0.1:${b.port} check inter 200ms fall 1 rise 1 cookie ${b.name}`).join('\n');
    writeFileSync(this.cfgFile, `# generation ${this.reloadGen}
global
    admin-bind "127.0.0.1:\${ADMIN_PORT}"
peers mesh
    bind "127.0.0.1:\${PEERS_PORT}"
${peers}
    shared-secret "\${STICKMESH_PEERS_SECRET}"
    resync-timeout 3s
    table sessions type ip size ${this.opts.tableSize} expire 30m
defaults
    mode http
    timeout connect 500ms
    timeout client ${5 + (this.reloadGen % 2)}s
    timeout server 5s
    retries 2
    option redispatch
frontend web
    bind "127.0.0.1:\${PROXY_PORT}"
    default_backend app
backend app
    balance roundrobin
    cookie ${COOKIE} insert indirect nocache
    stick on src table mesh/sessions
${servers}
`);
  }

  private async startBackend(b: Backend): Promise<void> {
    const proc = spawn(process.execPath, [BACKEND, String(b.port), b.name], { stdio: ['ignore', 'pipe', 'pipe'] });
    b.proc = proc;
    b.expectExit = false;
    proc.on('exit', (code, sig) => {
      if (!b.expectExit) this.report.crashes.push(`backend ${b.name} exited (code ${code}, signal ${sig}) during fault ${this.faultIndex}`);
    });
    await new Promise<void>((resolve, reject) => {
      proc.stdout!.once('data', () => resolve());
      proc.once('exit', () => reject(new Error(`backend ${b.name} did not start`)));
    });
  }

  private async startNode(n: Node): Promise<void> {
    n.expectExit = false;
    n.routable = false;
    n.reloads = 0;
    const keep = (line: string) => {
      // Request logs are dropped; the rest is kept (bounded) for crash reports.
      if (line.includes('"msg":"request"')) return;
      if (line.includes('"msg":"reloaded"')) n.reloads++;
      n.logs.push(line);
      if (n.logs.length > 300) n.logs.splice(0, 100);
    };
    const proc = spawnNode(this.cfgFile, n, { drainMs: 1000, secret: 'chaos-secret' }, (l, stream) => keep(stream === 'stderr' ? `stderr: ${l}` : l));
    n.proc = proc;
    proc.on('exit', (code, sig) => {
      n.routable = false;
      if (!n.expectExit) {
        this.report.crashes.push(`node ${n.name} exited (code ${code}, signal ${sig}) during fault ${this.faultIndex}: ${n.logs.slice(-8).join(' | ')}`);
      }
    });
    await waitFor(async () => {
      if (proc.exitCode !== null) throw new Error(`${n.name} exited: ${n.logs.slice(-5).join(' | ')}`);
      return (await fetch(`http://127.0.0.1:${n.adminPort}/healthz`, { signal: AbortSignal.timeout(500) })).ok;
    }, 15000, `${n.name} to serve /healthz`);
  }

  private async waitRoutable(n: Node): Promise<void> {
    await waitFor(async () => (await fetch(`http://127.0.0.1:${n.adminPort}/ready`, { signal: AbortSignal.timeout(500) })).status === 200, 15000, `${n.name} /ready`);
    n.routable = true;
  }

  private async stopNode(n: Node, signal: NodeJS.Signals): Promise<void> {
    const p = n.proc;
    n.routable = false;
    n.expectExit = true;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill(signal);
    await exited;
  }

  async teardown(): Promise<void> {
    this.trafficOn = false;
    await Promise.all(this.workers);
    for (const n of this.nodes) {
      n.expectExit = true;
      if (n.proc && n.proc.exitCode === null && n.proc.signalCode === null) {
        n.proc.kill('SIGKILL');
      }
    }
    for (const b of this.backends) {
      b.expectExit = true;
      b.proc?.kill('SIGKILL');
    }
    for (const l of this.links.values()) await l.close();
    rmSync(this.dir, { recursive: true, force: true });
  }

  // ---------------------------------------------------------------- traffic

  private startTraffic(): void {
    this.trafficOn = true;
    this.workers = Array.from({ length: this.opts.concurrency }, () => this.worker());
  }

  /** Stops issuing requests and waits for the in-flight ones. */
  private async stopTraffic(): Promise<void> {
    this.trafficOn = false;
    await Promise.all(this.workers);
    this.workers = [];
  }

  private async worker(): Promise<void> {
    while (this.trafficOn) {
      const nodes = this.nodes.filter((n) => n.routable);
      const c = this.idleClient();
      if (nodes.length === 0 || !c) {
        await new Promise((r) => setTimeout(r, 5));
        continue;
      }
      await this.send(c, this.rng.pick(nodes));
    }
  }

  private idleClient(): Client | undefined {
    for (let tries = 0; tries < 8; tries++) {
      const c = this.rng.pick(this.clients);
      if (!c.busy) return c;
    }
    return undefined;
  }

  /** One request of client `c` through node `n`, checked against its guaranteed mapping. */
  private async send(c: Client, n: Node): Promise<void> {
    c.busy = true;
    this.inflight++;
    this.report.requests++;
    try {
      const r = await get(n.proxyPort, c.ip, c.cookieMode ? c.cookie : undefined, 2000);
      if (r.status !== 200 || !r.server) throw new Error(`status ${r.status}`);
      this.onAck(c, r.server, n.name, r.setCookie);
    } catch {
      this.report.failedRequests++;
      if (!c.exp?.guaranteed) {
        c.tainted = true;
        c.exp = undefined;
      }
    } finally {
      c.busy = false;
      this.inflight--;
    }
  }

  private onAck(c: Client, server: string, via: string, setCookie: string | undefined): void {
    const now = Date.now();
    this.report.acks++;
    if (c.cookieMode && setCookie) c.cookie = setCookie;
    const e = c.exp;
    if (e?.guaranteed) {
      this.report.checked++;
      if (server === e.server) {
        e.at = now;
        e.via = via;
        return;
      }
      if (!this.excused(e.server, e.at, now)) {
        const loss: Loss = { client: c.ip, expected: e.server, got: server, via, ackedAt: e.at, at: now, fault: this.faultIndex, phase: this.phase };
        this.report.lost.push(loss);
        if (this.report.lost.length <= 5) this.opts.log(`LOST ${JSON.stringify(loss)}`);
      }
    }
    c.exp = { server, at: now, via, guaranteed: false };
  }

  /** True when `server` was down at some time in [from, to]: its clients may legitimately move. */
  private excused(server: string, from: number, to: number): boolean {
    const b = this.backends.find((x) => x.name === server);
    if (!b) return false;
    return b.down.some((d) => d.from <= to && d.to >= from);
  }

  /** A client is guaranteed only when the table can hold it (cookie clients never need the table). */
  private guaranteeable(c: Client): boolean {
    return c.cookieMode ? c.cookie !== undefined : this.guaranteeSrc;
  }

  /** Onset of a fault: mappings acknowledged >= WINDOW_MS ago, on a healthy cluster, become guaranteed. */
  private promoteAtOnset(onset: number): void {
    for (const c of this.clients) {
      if (c.exp && !c.exp.guaranteed && !c.tainted && c.exp.at <= onset - WINDOW_MS && this.guaranteeable(c)) c.exp.guaranteed = true;
    }
  }

  /** After identical tables: every untainted acknowledged mapping is held by every node. */
  private promoteAtCheckpoint(): void {
    for (const c of this.clients) {
      if (c.exp && !c.tainted && this.guaranteeable(c)) c.exp.guaranteed = true;
    }
  }

  /** Sends one request per client through a random routable node and checks every guaranteed mapping. */
  private async verifyAll(): Promise<void> {
    const nodes = this.nodes.filter((n) => n.routable);
    let next = 0;
    const one = async () => {
      while (next < this.clients.length) {
        const c = this.clients[next++]!;
        await this.send(c, this.rng.pick(nodes));
      }
    };
    await Promise.all(Array.from({ length: this.opts.concurrency * 2 }, one));
    for (const c of this.clients) c.tainted = false;
  }

  // ---------------------------------------------------------------- convergence

  /**
   * Polls every routable node's `/tables` until all digests and counts agree; returns the ms it took.
   * Full tables converge too (every node keeps the newest `size` versions); `strictFull: false`
   * relaxes that to "at most `size` entries", counting divergence in `divergent`.
   */
  private async converge(since: number): Promise<number> {
    const nodes = this.nodes.filter((n) => n.routable);
    const full = !this.guaranteeSrc;
    let last = '';
    let counts: number[] = [];
    try {
      await waitFor(async () => {
        const views = await Promise.all(nodes.map((n) => getJson<Array<{ id: string; count: number; digest: string }>>(`http://127.0.0.1:${n.adminPort}/tables`)));
        const keys = views.map((v) => v.map((t) => `${t.id}:${t.count}:${t.digest}`).join(','));
        counts = views.map((v) => v[0]?.count ?? 0);
        last = nodes.map((n, i) => `${n.name}=${keys[i]}`).join(' ');
        return keys.every((k) => k === keys[0]);
      }, full && !this.opts.strictFull ? 1000 : 20000, 'identical tables', 10);
    } catch {
      if (full && !this.opts.strictFull) {
        this.report.divergent++;
        if (counts.some((c) => c > this.opts.tableSize)) this.report.problems.push(`fault ${this.faultIndex}: a table holds more than its size ${this.opts.tableSize}: ${last}`);
        return NaN;
      }
      this.report.problems.push(`fault ${this.faultIndex}: tables did not converge within 20 s: ${last}`);
      return NaN;
    }
    return Date.now() - since;
  }

  /** Waits until every routable node sees `b` UP (health checks) and closes its down interval. */
  private async backendUpEverywhere(b: Backend): Promise<void> {
    await waitFor(async () => {
      for (const n of this.nodes.filter((x) => x.routable)) {
        const servers = await getJson<Array<{ server: string; health: string }>>(`http://127.0.0.1:${n.adminPort}/api/servers`);
        if (servers.find((s) => s.server === b.name)?.health !== 'up') return false;
      }
      return true;
    }, 10000, `${b.name} UP on every node`);
    const open = b.down.find((d) => d.to === Infinity);
    if (open) open.to = Date.now();
  }

  // ---------------------------------------------------------------- schedule

  /** The whole schedule, drawn from the seed before anything runs. */
  schedule(): Fault[] {
    const out: Fault[] = [];
    const names = this.nodes.map((n) => n.name);
    for (let i = 0; i < this.opts.faults; i++) {
      const kind = weighted(this.rng);
      const target = this.rng.pick(names);
      let detail = '';
      let holdMs = this.rng.int(200, 1500);
      if (kind === 'freeze') holdMs = this.rng.int(300, 4000);
      if (kind === 'partition') detail = this.rng.pick(names.filter((x) => x !== target));
      if (kind === 'split') detail = this.rng.shuffle([...names]).slice(0, this.rng.int(1, Math.floor(names.length / 2))).join(',');
      if (kind === 'delay') detail = String(this.rng.int(10, 300));
      if (kind === 'backend') detail = this.rng.pick(this.backends).name;
      if (kind === 'reload' || kind === 'reset') holdMs = this.rng.int(100, 500);
      out.push({ i, kind, target, holdMs, detail });
    }
    return out;
  }

  private linksOf(pred: (a: string, b: string) => boolean): Link[] {
    return [...this.links.entries()].filter(([k]) => pred(k.split('-')[0]!, k.split('-')[1]!)).map(([, l]) => l);
  }

  private node(name: string): Node {
    return this.nodes.find((n) => n.name === name)!;
  }

  /** Injects the fault, lets traffic run for its hold time, and returns the heal step. */
  private async inject(f: Fault): Promise<() => Promise<number | void>> {
    const n = this.node(f.target);
    const hold = () => new Promise((r) => setTimeout(r, f.holdMs));
    switch (f.kind) {
      case 'kill':
      case 'restart':
        await this.stopNode(n, f.kind === 'kill' ? 'SIGKILL' : 'SIGTERM');
        await hold();
        return async () => {
          await this.startNode(n);
          // Time-to-identical counts from the process answering /healthz, not from its boot.
          const up = Date.now();
          await this.waitRoutable(n);
          return up;
        };
      case 'freeze':
        n.routable = false;
        n.proc!.kill('SIGSTOP');
        await hold();
        return async () => {
          n.proc!.kill('SIGCONT');
          n.routable = true;
        };
      case 'reload': {
        this.reloadGen++;
        this.writeConfig();
        const mark = n.reloads;
        n.proc!.kill('SIGHUP');
        await waitFor(() => n.reloads > mark, 10000, `${n.name} reload`);
        await hold();
        return async () => {};
      }
      case 'backend': {
        const b = this.backends.find((x) => x.name === f.detail)!;
        b.expectExit = true;
        b.down.push({ from: Date.now(), to: Infinity });
        const exited = new Promise<void>((r) => b.proc!.once('exit', () => r()));
        b.proc!.kill('SIGKILL');
        await exited;
        await hold();
        return async () => {
          await this.startBackend(b);
          await this.backendUpEverywhere(b);
        };
      }
      case 'partition':
      case 'isolate':
      case 'split': {
        const group = new Set(f.kind === 'split' ? f.detail.split(',') : [f.target]);
        const cut = this.linksOf((a, b) =>
          f.kind === 'partition' ? (a === f.target && b === f.detail) || (a === f.detail && b === f.target) : group.has(a) !== group.has(b),
        );
        for (const l of cut) l.cut();
        await hold();
        return async () => {
          for (const l of cut) l.heal();
        };
      }
      case 'delay': {
        const ls = this.linksOf((a, b) => a === f.target || b === f.target);
        for (const l of ls) l.delay(Number(f.detail));
        await hold();
        return async () => {
          for (const l of ls) l.heal();
        };
      }
      case 'reset': {
        for (const l of this.linksOf((a, b) => a === f.target || b === f.target)) l.reset();
        await hold();
        return async () => {};
      }
    }
  }

  // ---------------------------------------------------------------- run

  async run(): Promise<ChaosReport> {
    const faults = this.schedule();
    this.startTraffic();
    // Warm-up: every client acknowledged at least once where possible.
    await waitFor(() => this.clients.filter((c) => c.exp).length >= this.clients.length * 0.9, 60000, 'warm-up traffic', 50);
    await this.stopTraffic();
    await this.converge(Date.now());
    await this.checkpoint();
    for (const f of faults) {
      this.faultIndex = f.i;
      const lostBefore = this.report.lost.length;
      this.phase = `fault ${f.i} ${f.kind}`;
      this.startTraffic();
      // A fault may wait between faults: traffic runs on the healthy cluster first.
      await new Promise((r) => setTimeout(r, this.rng.int(100, 400)));
      f.onsetAt = Date.now();
      this.promoteAtOnset(f.onsetAt);
      this.opts.log(`fault ${f.i} ${f.kind} ${f.target} ${f.detail} hold ${f.holdMs} ms`);
      let heal: () => Promise<number | void>;
      try {
        heal = await this.inject(f);
      } catch (err) {
        this.report.problems.push(`fault ${f.i} ${f.kind} ${f.target}: inject failed: ${(err as Error).message}`);
        heal = async () => {};
      }
      await this.stopTraffic();
      this.phase = `heal ${f.i} ${f.kind}`;
      let healAt = Date.now();
      try {
        healAt = (await heal()) ?? healAt;
      } catch (err) {
        this.report.problems.push(`fault ${f.i} ${f.kind} ${f.target}: heal failed: ${(err as Error).message}`);
      }
      // Time-to-identical counts from the heal step (for kill/restart: from /healthz of the new process).
      f.convergeMs = await this.converge(healAt);
      if (f.convergeMs > this.report.maxConvergeMs) this.report.maxConvergeMs = f.convergeMs;
      if (f.convergeMs > CONVERGE_BAR_MS) this.report.problems.push(`fault ${f.i} ${f.kind} ${f.target}: tables identical after ${f.convergeMs} ms (bar ${CONVERGE_BAR_MS} ms)`);
      this.phase = `check ${f.i} ${f.kind}`;
      await this.checkAlive();
      await this.checkpoint();
      f.lost = this.report.lost.length - lostBefore;
      this.report.faults.push(f);
    }
    await this.stopTraffic();
    this.report.durationMs = Date.now() - this.started;
    return this.report;
  }

  /** Checkpoint: tables identical (just checked), so every untainted mapping is guaranteed; verify them all. */
  private async checkpoint(): Promise<void> {
    await this.stopTraffic();
    this.promoteAtCheckpoint();
    await this.verifyAll();
  }

  private async checkAlive(): Promise<void> {
    for (const n of this.nodes) {
      if (!n.proc || n.proc.exitCode !== null || n.proc.signalCode !== null) {
        this.report.problems.push(`fault ${this.faultIndex}: node ${n.name} is not running after the heal`);
        continue;
      }
      try {
        await waitFor(async () => (await fetch(`http://127.0.0.1:${n.adminPort}/healthz`, { signal: AbortSignal.timeout(1000) })).ok, 5000, `${n.name} /healthz`);
      } catch (err) {
        this.report.problems.push(`fault ${this.faultIndex}: ${(err as Error).message}`);
      }
    }
  }
}

/** One-paragraph summary of a report, with the replay line. */
export function summarize(r: ChaosReport): string {
  const kinds = new Map<string, number>();
  for (const f of r.faults) kinds.set(f.kind, (kinds.get(f.kind) ?? 0) + 1);
  const conv = r.faults.map((f) => f.convergeMs ?? NaN).filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  const p = (q: number) => conv[Math.min(conv.length - 1, Math.floor(q * conv.length))] ?? NaN;
  return [
    `chaos seed=${r.seed} nodes=${r.nodes} clients=${r.clients} table-size=${r.tableSize} faults=${r.faults.length} (${[...kinds].map(([k, v]) => `${k} ${v}`).join(', ')})`,
    `requests=${r.requests} acks=${r.acks} failed=${r.failedRequests} guaranteed-checks=${r.checked} full-table-divergent=${r.divergent} crashes=${r.crashes.length} lost=${r.lost.length} problems=${r.problems.length}`,
    `time-to-identical ms: median ${p(0.5)} p95 ${p(0.95)} max ${r.maxConvergeMs}; duration ${Math.round(r.durationMs / 1000)} s`,
    `replay: ${r.replay} npx vitest run test/chaos`,
  ].join('\n');
}
