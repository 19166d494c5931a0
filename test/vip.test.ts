/**
 * Active-standby pair behind a VRRP VIP, with the project's own deploy/keepalived files: two
 * stickmesh nodes (one `peers` section), keepalived and the /ready poller in network namespaces
 * lb1 and lb2 on a bridge, backends in their own namespaces, 500 clients (distinct source
 * addresses on the client namespace's loopback, routed via its eth0 address) keeping their
 * backend through `stick on src`. Kills the active node's stickmesh (kill -9), then, after the
 * restarted node resynced, the new active node's keepalived (kill -9): each time the VIP moves,
 * every client keeps its backend, and the outage seen by a prober sending a request every 10 ms
 * stays within 1 s. Last, stops the standby's keepalived (SIGTERM): its notify reader records STOP
 * and ends. Needs root, iproute2 and keepalived; fails (does not skip) without them.
 *
 * Stickiness is made to depend on replication: the 500 clients are placed while web3 is down,
 * then web3 comes up. A node without the entries would place about a third of them on web3
 * (new keys are placed by rendezvous hashing over the healthy servers).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from './helpers/wait.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const BIN = path.join(root, 'packages/cli/bin/stickmesh.js');
const KA_DIR = path.join(root, 'deploy/keepalived');
const PROBER = path.join(root, 'test/tools/vip-prober.mjs');
const KEEPALIVED = '/usr/sbin/keepalived';

const id = randomBytes(3).toString('hex');
const ns = (n: string) => `smt-${id}-${n}`;
const NET = '10.201.0';
const VIP = `${NET}.100`;
const CLIENT_IP = `${NET}.2`;
/** Client source addresses 10.202.x.y (see test/tools/vip-prober.mjs); 500 sticky, the rest spare. */
const CLIENT_PREFIX = '10.202';
const CLIENTS = 500;
const SPARE = 300;
const ADVERT = 0.2;
const LBS = { lb1: { ip: `${NET}.11`, priority: 150 }, lb2: { ip: `${NET}.12`, priority: 100 } } as const;
type Lb = keyof typeof LBS;
const WEBS = { web1: `${NET}.51`, web2: `${NET}.52`, web3: `${NET}.53` } as const;
const other = (lb: Lb): Lb => (lb === 'lb1' ? 'lb2' : 'lb1');

let tmp = '';
const namespaces: string[] = [];
const procs: ChildProcess[] = [];
const nodes = new Map<Lb, { proc: ChildProcess; requests: number; out: string[] }>();
const keepaliveds = new Map<Lb, ChildProcess>();
const kaLogs = new Map<Lb, string[]>();

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8' });
}

/** Starts CMD inside namespace NS (`ip netns exec` execs, so the child pid is CMD's pid). */
function inNs(n: string, cmd: string[], env: Record<string, string> = {}, onLine?: (l: string) => void): ChildProcess {
  const child = spawn('ip', ['netns', 'exec', n, ...cmd], { cwd: tmp, env: { PATH: process.env.PATH, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  procs.push(child);
  let partial = '';
  const feed = (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) onLine?.(l);
  };
  child.stdout!.on('data', feed);
  child.stderr!.on('data', feed);
  return child;
}

function keepLast(buf: string[], l: string, n = 300): void {
  buf.push(l);
  if (buf.length > n) buf.shift();
}

function addHost(name: string, addr: string): void {
  const n = ns(name);
  ip('netns', 'add', n);
  namespaces.push(n);
  // The switch side of each veth is named after the host; eth0 goes straight into the host's ns.
  ip('-n', ns('sw'), 'link', 'add', `p-${name}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', n);
  ip('-n', ns('sw'), 'link', 'set', `p-${name}`, 'master', 'br0', 'up');
  ip('-n', n, 'link', 'set', 'lo', 'up');
  ip('-n', n, 'addr', 'add', `${addr}/24`, 'dev', 'eth0');
  ip('-n', n, 'link', 'set', 'eth0', 'up');
}

function startWeb(name: keyof typeof WEBS): void {
  inNs(ns(name), [process.execPath, path.join(root, 'deploy/demo-backend.mjs'), name, '8080', '0.0.0.0']);
}

function startNode(lb: Lb): void {
  const entry = { proc: undefined as unknown as ChildProcess, requests: 0, out: [] as string[] };
  entry.proc = inNs(
    ns(lb),
    [process.execPath, BIN, 'start', '--config', path.join(KA_DIR, 'haproxy.cfg'), '--node', lb],
    {
      NODE_IP: LBS[lb].ip,
      LB1_IP: LBS.lb1.ip,
      LB2_IP: LBS.lb2.ip,
      WEB1: `${WEBS.web1}:8080`,
      WEB2: `${WEBS.web2}:8080`,
      WEB3: `${WEBS.web3}:8080`,
      STICKMESH_PEERS_SECRET: 'vip-test-secret',
      // No snapshots: a restarted node gets its entries from the peer's resync only.
      STICKMESH_DATA_DIR: '',
    },
    (l) => {
      if (l.includes('"msg":"request"')) entry.requests++;
      else keepLast(entry.out, l);
    },
  );
  nodes.set(lb, entry);
}

function startKeepalived(lb: Lb): void {
  const dir = path.join(tmp, lb);
  const conf = path.join(dir, 'keepalived.conf');
  // The node-specific top file, as deploy/keepalived/keepalived.conf defines it for production.
  writeFileSync(
    conf,
    [
      `$NODE=${lb}`,
      '$IFACE=eth0',
      `$NODE_IP=${LBS[lb].ip}`,
      `$PEER_IP=${LBS[other(lb)].ip}`,
      `$PRIORITY=${LBS[lb].priority}`,
      `$VIP=${VIP}/24`,
      '$VRID=51',
      `$ADVERT=${ADVERT}`,
      `$READY_FILE=${dir}/ready`,
      `$NOTIFY="${tmp}/bin/stickmesh-notify.sh ${dir}/vrrp-state"`,
      `$NOTIFY_FIFO=${dir}/vrrp-notify.fifo`,
      `include ${path.join(KA_DIR, 'stickmesh-vrrp.conf')}`,
      '',
    ].join('\n'),
  );
  const logs: string[] = [];
  kaLogs.set(lb, logs);
  // -n no fork (the child pid is the parent keepalived), -P VRRP only, -l -D -G log to stderr.
  keepaliveds.set(lb, inNs(ns(lb), [KEEPALIVED, '-n', '-P', '-l', '-D', '-G', '-f', conf, '-p', `${dir}/ka.pid`, '-r', `${dir}/ka-vrrp.pid`], {}, (l) => keepLast(logs, l)));
}

function startPoller(lb: Lb): void {
  inNs(ns(lb), [process.execPath, path.join(KA_DIR, 'stickmesh-ready-poller.mjs'), path.join(tmp, lb, 'ready')]);
}

function vrrpState(lb: Lb): { state: string; at: number } {
  try {
    const [state, , at] = readFileSync(path.join(tmp, lb, 'vrrp-state'), 'utf8').trim().split(' ');
    return { state: state!, at: Number(at) * 1000 };
  } catch {
    return { state: 'NONE', at: 0 };
  }
}

/** Pids of the live notify readers (deploy/keepalived/stickmesh-notify.sh) in LB's namespace. */
function notifyReaders(lb: Lb): number[] {
  return ip('netns', 'pids', ns(lb))
    .split('\n')
    .filter(Boolean)
    .map(Number)
    .filter((pid) => {
      try {
        // A zombie's cmdline is empty: it has exited, only its parent has not reaped it yet.
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('stickmesh-notify.sh');
      } catch {
        return false;
      }
    });
}

function holdsVip(lb: Lb): boolean {
  return ip('-n', ns(lb), '-4', 'addr', 'show', 'dev', 'eth0').includes(` ${VIP}/`);
}

function readyFile(lb: Lb): string {
  try {
    return readFileSync(path.join(tmp, lb, 'ready'), 'utf8').trim();
  } catch {
    return '';
  }
}

/** Runs the prober to completion in the client namespace and returns its JSON output. */
async function runProber<T>(args: string[]): Promise<T> {
  let out = '';
  const child = inNs(ns('client'), [process.execPath, PROBER, ...args], {}, (l) => (out += l));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  if (code !== 0) throw new Error(`prober ${args[0]} exited ${code}: ${out.slice(0, 500)}`);
  return JSON.parse(out) as T;
}

const sweep = (url: string, first: number, count: number) => runProber<Record<string, string>>(['sweep', url, CLIENT_PREFIX, String(first), String(count)]);

interface ProbeSummary {
  samples: number;
  failures: number;
  samplesAfterMark: number;
  failuresAfterMark: number;
  clientsChecked: number;
  mismatches: number;
  mismatchExamples: unknown[];
  maxGapMs: number;
  gapStartsAfterMarkMs: number | null;
}

/** Probes the VIP while `fault` runs (after 1 s of steady traffic), until `recovered` + 2 s. */
async function failover(mappingFile: string, fault: () => void, recovered: () => boolean): Promise<ProbeSummary & { markAt: number }> {
  let out = '';
  const child = inNs(ns('client'), [process.execPath, PROBER, 'probe', `http://${VIP}/`, CLIENT_PREFIX, '0', String(CLIENTS), mappingFile, '10', '500', '30'], {}, (l) => (out += l));
  const exited = new Promise<number | null>((r) => child.once('exit', r));
  await new Promise((r) => setTimeout(r, 1000));
  child.stdin!.write('mark\n');
  const markAt = Date.now();
  fault();
  await waitFor(recovered, 10000, 'the standby to become MASTER', 20);
  await new Promise((r) => setTimeout(r, 2000));
  child.stdin!.write('stop\n');
  expect(await exited).toBe(0);
  return { ...(JSON.parse(out) as ProbeSummary), markAt };
}

function killPid(pid: number | undefined, sig: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

beforeAll(() => {
  const missing = [
    process.getuid?.() === 0 ? '' : 'root (network namespaces)',
    existsSync(KEEPALIVED) ? '' : `${KEEPALIVED} (apt-get install -y keepalived)`,
    (() => {
      try {
        execFileSync('ip', ['-V']);
        return '';
      } catch {
        return 'the ip command (apt-get install -y iproute2)';
      }
    })(),
  ].filter(Boolean);
  if (missing.length > 0) throw new Error(`the VIP failover test needs: ${missing.join(', ')}`);

  tmp = mkdtempSync(path.join(os.tmpdir(), 'smt-vip-'));
  // keepalived runs notify scripts only if no directory on their path is writable by others.
  execFileSync('mkdir', ['-p', '-m', '0755', `${tmp}/bin`, `${tmp}/lb1`, `${tmp}/lb2`]);
  copyFileSync(path.join(KA_DIR, 'stickmesh-notify.sh'), `${tmp}/bin/stickmesh-notify.sh`);
  chmodSync(`${tmp}/bin/stickmesh-notify.sh`, 0o755);

  // The switch: a bridge in its own namespace (the host's firewall never sees lab traffic).
  ip('netns', 'add', ns('sw'));
  namespaces.push(ns('sw'));
  ip('-n', ns('sw'), 'link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0');
  ip('-n', ns('sw'), 'link', 'set', 'br0', 'up');
  addHost('client', CLIENT_IP);
  for (const [lb, { ip: addr }] of Object.entries(LBS)) addHost(lb, addr);
  for (const [w, addr] of Object.entries(WEBS)) addHost(w, addr);
  // Client source addresses on the client's loopback; the nodes reach them via its eth0 address,
  // so one neighbour entry serves all of them.
  const batch = Array.from({ length: CLIENTS + SPARE }, (_, i) => `addr add ${CLIENT_PREFIX}.${1 + Math.floor(i / 250)}.${1 + (i % 250)}/32 dev lo`).join('\n');
  execFileSync('ip', ['-n', ns('client'), '-batch', '-'], { input: `${batch}\n` });
  for (const lb of Object.keys(LBS)) ip('-n', ns(lb), 'route', 'add', `${CLIENT_PREFIX}.0.0/16`, 'via', CLIENT_IP);
});

afterAll(async () => {
  for (const p of procs) killPid(p.pid, 'SIGKILL');
  // Anything else still inside our namespaces (e.g. keepalived's VRRP child) was started by us.
  for (const n of namespaces) {
    try {
      for (const pid of ip('netns', 'pids', n).split('\n').filter(Boolean)) killPid(Number(pid), 'SIGKILL');
    } catch {
      /* namespace already gone */
    }
  }
  await new Promise((r) => setTimeout(r, 200));
  for (const n of [...namespaces].reverse()) {
    try {
      ip('netns', 'del', n);
    } catch {
      /* already gone */
    }
  }
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('active-standby pair behind a keepalived VIP', () => {
  it('moves the VIP within 1 s on kill -9 of stickmesh and of keepalived, and every client keeps its backend', async () => {
    startWeb('web1');
    startWeb('web2');
    for (const lb of ['lb1', 'lb2'] as const) {
      startNode(lb);
      startPoller(lb);
      startKeepalived(lb);
    }
    const diag = () =>
      JSON.stringify({
        lb1: { state: vrrpState('lb1'), ready: readyFile('lb1'), node: nodes.get('lb1')!.out.slice(-5), ka: kaLogs.get('lb1')!.slice(-8) },
        lb2: { state: vrrpState('lb2'), ready: readyFile('lb2'), node: nodes.get('lb2')!.out.slice(-5), ka: kaLogs.get('lb2')!.slice(-8) },
      });
    const master = () => (['lb1', 'lb2'] as const).find((lb) => vrrpState(lb).state === 'MASTER');
    await waitFor(() => master() && vrrpState(other(master()!)).state === 'BACKUP' && holdsVip(master()!), 20000, 'a MASTER and a BACKUP').catch((e: Error) => {
      throw new Error(`${e.message}: ${diag()}`);
    });
    let active: Lb = master()!;

    // 500 clients placed while web3 is down.
    const mapping = await sweep(`http://${VIP}/`, 0, CLIENTS);
    expect(Object.keys(mapping)).toHaveLength(CLIENTS);
    expect(new Set(Object.values(mapping))).toEqual(new Set(['web1', 'web2']));
    const mappingFile = path.join(tmp, 'mapping.json');
    writeFileSync(mappingFile, JSON.stringify(mapping));

    // web3 comes up; wait until both nodes place new clients on it (spare addresses, fresh each try).
    startWeb('web3');
    let spare = CLIENTS;
    for (const lb of ['lb1', 'lb2'] as const) {
      await waitFor(async () => {
        if (spare + 20 > CLIENTS + SPARE) throw new Error('out of spare client addresses');
        const seen = await sweep(`http://${LBS[lb].ip}/`, spare, 20);
        spare += 20;
        return Object.values(seen).includes('web3');
      }, 15000, `${lb} to use web3`, 300);
    }

    const report: Record<string, unknown> = {};
    const check = async (name: string, fault: () => void) => {
      const standby = other(active);
      const before = nodes.get(standby)!.requests;
      const r = await failover(mappingFile, fault, () => vrrpState(standby).state === 'MASTER' && holdsVip(standby)).catch((e: Error) => {
        throw new Error(`${name}: ${e.message}: ${diag()}`);
      });
      const after = await sweep(`http://${VIP}/`, 0, CLIENTS);
      const changed = Object.keys(mapping).filter((a) => after[a] !== mapping[a]);
      report[name] = {
        from: active,
        to: standby,
        outageMs: r.maxGapMs,
        takeoverMs: vrrpState(standby).at - r.markAt,
        failedRequests: r.failuresAfterMark,
        requestsAfterFault: r.samplesAfterMark,
        clientsProbedDuringFailover: r.clientsChecked,
        mismatchesDuringFailover: r.mismatches,
        clientsSweptAfter: Object.keys(after).length,
        changedMappings: changed.length,
      };
      console.log(`[vip] ${name}: ${JSON.stringify(report[name])}`);
      expect(r.mismatches, JSON.stringify(r.mismatchExamples)).toBe(0);
      expect(changed, JSON.stringify(changed.slice(0, 5).map((a) => [a, mapping[a], after[a]]))).toEqual([]);
      expect(r.maxGapMs).toBeLessThanOrEqual(1000);
      expect(nodes.get(standby)!.requests).toBeGreaterThan(before);
      active = standby;
    };

    // 1. kill -9 of stickmesh on the active node: its poller marks it down, keepalived goes FAULT
    // and hands the VIP over with a priority-0 advert.
    const failedNode = active;
    await check('kill -9 stickmesh', () => killPid(nodes.get(failedNode)!.proc.pid, 'SIGKILL'));
    expect(holdsVip(failedNode)).toBe(false);
    expect(vrrpState(failedNode).state).toBe('FAULT');

    // The killed node comes back: resync from the active node, /ready, poller up, BACKUP (nopreempt).
    startNode(failedNode);
    await waitFor(() => readyFile(failedNode) === '0' && vrrpState(failedNode).state === 'BACKUP', 15000, `${failedNode} BACKUP again`).catch((e: Error) => {
      throw new Error(`${e.message}: ${diag()}`);
    });
    expect(master()).toBe(active);

    // 2. kill -9 of keepalived on the active node (parent stopped first so it cannot restart its
    // VRRP child): no more adverts, the standby takes over after 3 adverts + skew. The crashed
    // node keeps the VIP configured (nothing removes it), its stickmesh still serves.
    const crashed = active;
    await check('kill -9 keepalived', () => {
      const ka = keepaliveds.get(crashed)!;
      const child = Number(readFileSync(path.join(tmp, crashed, 'ka-vrrp.pid'), 'utf8'));
      killPid(ka.pid, 'SIGSTOP');
      killPid(child, 'SIGKILL');
      killPid(ka.pid, 'SIGKILL');
    });
    // keepalived restarted on the crashed node (systemd Restart=always) removes the stale VIP and
    // joins as BACKUP; the poller rewrites the ready file keepalived reset to 1 at start.
    expect(holdsVip(crashed)).toBe(true);
    startKeepalived(crashed);
    await waitFor(() => !holdsVip(crashed) && readyFile(crashed) === '0' && vrrpState(crashed).state === 'BACKUP', 10000, `${crashed} BACKUP without the VIP`).catch((e: Error) => {
      throw new Error(`${e.message}: ${diag()}`);
    });
    expect(master()).toBe(active);
    expect(holdsVip(active)).toBe(true);
    // The killed keepalived's reader ended at EOF: one reader on the FIFO, the restarted one's.
    await waitFor(() => notifyReaders(crashed).length === 1, 5000, `one notify reader on ${crashed}`).catch((e: Error) => {
      throw new Error(`${e.message}: ${JSON.stringify(notifyReaders(crashed))}`);
    });

    // 3. Graceful stop of the standby's keepalived: it signals its scripts (SIGTERM) before it
    // writes STOP; the reader records STOP and ends, so none is left when keepalived has exited.
    const stopped = keepaliveds.get(crashed)!;
    killPid(stopped.pid, 'SIGTERM');
    await waitFor(() => stopped.exitCode !== null || stopped.signalCode !== null, 10000, `${crashed} keepalived to exit`);
    expect(vrrpState(crashed).state).toBe('STOP');
    expect(notifyReaders(crashed)).toEqual([]);
    expect(master()).toBe(active);
    expect(holdsVip(active)).toBe(true);
    console.log(`[vip] summary over ${CLIENTS} clients: ${JSON.stringify(report)}`);
  }, 85000);
});
