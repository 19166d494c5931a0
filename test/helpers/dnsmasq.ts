/**
 * A real DNS server for discovery tests: Debian's dnsmasq, authoritative for `example.local` only
 * (no upstream, no /etc/hosts, unknown names NXDOMAIN), on 127.0.0.1 and a port free for this test.
 * A records come from a hosts file re-read on SIGHUP; SRV records are command-line options, so
 * changing them restarts dnsmasq (same port). Fails, never skips, when dnsmasq is missing:
 * `npm test` installs it (scripts/ensure-test-deps.mjs).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync, mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Resolver } from 'node:dns/promises';
import { waitFor } from './wait.js';

export const DNSMASQ = '/usr/sbin/dnsmasq';

export interface SrvRecord {
  /** Target host name (must have an A record, see `targets`). */
  target: string;
  port: number;
  priority?: number;
  weight?: number;
}

export interface Dnsmasq {
  port: number;
  dir: string;
  /** Replaces the A records of `name` (SIGHUP) and resolves once dnsmasq answers the new set. */
  setA(name: string, ips: string[]): Promise<void>;
  /** Replaces the SRV records of `name` (restart on the same port) and waits until they are served. */
  setSrv(name: string, recs: SrvRecord[]): Promise<void>;
  /** Sorted A answer of `name` as dnsmasq gives it now ([] on NXDOMAIN/NODATA). */
  queryA(name: string): Promise<string[]>;
  stop(): Promise<void>;
}

/** A port free for both UDP and TCP on 127.0.0.1 a moment ago. */
async function freeDnsPort(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const u = dgram.createSocket('udp4');
    await new Promise<void>((r) => u.bind(0, '127.0.0.1', () => r()));
    const port = u.address().port;
    const ok = await new Promise<boolean>((r) => {
      const t = net.createServer();
      t.once('error', () => r(false));
      t.listen(port, '127.0.0.1', () => t.close(() => r(true)));
    });
    u.close();
    if (ok) return port;
  }
  throw new Error('no free UDP+TCP port');
}

export async function startDnsmasq(init: { a?: Record<string, string[]>; srv?: Record<string, SrvRecord[]>; ttl?: number } = {}): Promise<Dnsmasq> {
  if (!existsSync(DNSMASQ)) throw new Error(`${DNSMASQ} is missing: run 'apt-get install -y dnsmasq' (npm test does it as root)`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sm-dns-'));
  const port = await freeDnsPort();
  const a = new Map<string, string[]>(Object.entries(init.a ?? {}));
  const srv = new Map<string, SrvRecord[]>(Object.entries(init.srv ?? {}));
  const hosts = path.join(dir, 'hosts');
  let proc: ChildProcess | undefined;
  const resolver = new Resolver({ timeout: 500, tries: 1 });
  resolver.setServers([`127.0.0.1:${port}`]);

  const writeHosts = (): void => {
    const lines: string[] = [];
    for (const [name, ips] of a) for (const ip of ips) lines.push(`${ip} ${name}`);
    writeFileSync(hosts + '.tmp', lines.join('\n') + '\n');
    renameSync(hosts + '.tmp', hosts);
  };
  const queryA = async (name: string): Promise<string[]> => {
    try {
      return (await resolver.resolve4(name)).sort();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTFOUND' || code === 'ENODATA') return [];
      throw err;
    }
  };
  const run = async (): Promise<void> => {
    const args = [
      '-C', '/dev/null', '--keep-in-foreground', `--port=${port}`, '--listen-address=127.0.0.1', '--bind-interfaces',
      '--no-resolv', '--no-hosts', '--no-poll', '--local=/example.local/', `--addn-hosts=${hosts}`,
      `--local-ttl=${init.ttl ?? 0}`, `--auth-ttl=${init.ttl ?? 0}`, '--user=root', '--group=root',
      `--pid-file=${path.join(dir, 'dnsmasq.pid')}`, `--log-facility=${path.join(dir, 'dnsmasq.log')}`,
    ];
    for (const [name, recs] of srv) {
      for (const r of recs) args.push(`--srv-host=${name},${r.target},${r.port},${r.priority ?? 0},${r.weight ?? 10}`);
    }
    const p = spawn(DNSMASQ, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    proc = p;
    await waitFor(async () => {
      if (p.exitCode !== null) throw new Error(`dnsmasq exited ${p.exitCode}: ${err}`);
      await resolver.resolve4('probe.example.local').catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOTFOUND' && e.code !== 'ENODATA') throw e;
      });
      return true;
    }, 5000, 'dnsmasq to answer');
  };
  const stop = async (): Promise<void> => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGTERM');
    await exited;
  };
  writeHosts();
  await run();
  return {
    port,
    dir,
    queryA,
    async setA(name, ips) {
      a.set(name, ips);
      writeHosts();
      proc?.kill('SIGHUP');
      const want = [...ips].sort().join(',');
      await waitFor(async () => (await queryA(name)).join(',') === want, 5000, `dnsmasq to serve ${name} -> ${want}`);
    },
    async setSrv(name, recs) {
      srv.set(name, recs);
      await stop();
      await run();
      await waitFor(async () => (await resolver.resolveSrv(name).catch(() => [])).length === recs.length, 5000, `dnsmasq to serve SRV ${name}`);
    },
    stop,
  };
}
