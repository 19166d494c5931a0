/**
 * Which admin listeners a CLI command asks, in order. The first source present wins:
 *
 *   1. `--admin URL`                 that node alone
 *   2. `--config FILE`               every node of FILE's peers sections (see adminNodesOf)
 *   3. `$STICKMESH_ADMIN`            that node alone
 *   4. `$STICKMESH_CONFIG`           as 2
 *   5. a running `stickmesh demo`    its three nodes (it records them in its temporary directory)
 *   6. http://127.0.0.1:9100
 *
 * With one node (1, 3, 6), an unreachable node's error names the nodes of the config or demo that
 * a later source would have given, so the user knows where else to look.
 */
import { readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, StickmeshError, loadConfig, urlHost, type StickmeshConfig } from '@stickmesh/core';
import { defaultAdminHost } from '../node.js';
import { DEFAULT_ADMIN_URL, type AdminNode } from './client.js';

/** File a running demo writes in its temporary directory (see commands/demo.ts). */
export const DEMO_RECORD = 'demo.json';
/** Prefix of the demo's temporary directory under os.tmpdir(). */
export const DEMO_DIR_PREFIX = 'stickmesh-demo-';
/** At most this many `stickmesh-demo-*` directories are looked at (left-overs of demos killed with -9). */
const MAX_DEMO_DIRS = 64;

/** What the demo records so the CLI can find its nodes without flags. */
export interface DemoRecord {
  pid: number;
  config: string;
  nodes: AdminNode[];
}

/** The nodes to ask, in order, and where they came from (for messages). */
export interface AdminPlan {
  nodes: AdminNode[];
  /** Named in the error when every node of `nodes` is unreachable (they were not tried); computed then. */
  others: () => AdminNode[];
  /** `--admin`, the config file's path, `$STICKMESH_ADMIN`, `the running demo (pid N)` or `default`. */
  source: string;
  /** The config file the nodes come from (--config, $STICKMESH_CONFIG), if they do. */
  configFile?: string;
  /** admin-token of the config, used when neither --token nor $STICKMESH_ADMIN_TOKEN is given. */
  token?: string;
}

/** A config that cannot give admin addresses (unreadable, invalid, or admin disabled); code SM_ADMIN_CONFIG. */
export class AdminConfigError extends StickmeshError {
  constructor(message: string) {
    super('SM_ADMIN_CONFIG', message);
  }
}

function isWildcard(host: string): boolean {
  return host === '' || host === '0.0.0.0' || host === '::' || host === '*';
}

/**
 * The admin URL of every node of `config`'s peers sections, in config order, one per distinct
 * URL (its label lists the nodes sharing it). A node's admin address is the one it binds
 * (node.ts startAdmin):
 *  - `admin-bind` with an address: that address on every node (an address such as 127.0.0.1 is
 *    each host's own, so this reaches the node on this host only);
 *  - `admin-bind` on every address (`:9100`, `0.0.0.0:9100`, `[::]:9100`): the node's peer address;
 *  - no `admin-bind`: defaultAdminHost (its peers address when that is a loopback address, so on
 *    a one-host cluster node N answers on its own 127.0.0.N, else 127.0.0.1).
 * Without a peers section: the single node's admin address. Port 0 (admin disabled) is an error.
 */
export function adminNodesOf(config: StickmeshConfig): AdminNode[] {
  const a = config.global.admin;
  if (a.port <= 0) throw new AdminConfigError('the config disables the admin listener (port 0)');
  const byUrl = new Map<string, string[]>();
  const add = (host: string, node: string | undefined): void => {
    const url = `http://${urlHost(host)}:${a.port}`;
    const names = byUrl.get(url) ?? [];
    if (node !== undefined && !names.includes(node)) names.push(node);
    byUrl.set(url, names);
  };
  for (const pc of config.peers) {
    for (const p of pc.peers) {
      if (a.loc && !isWildcard(a.host)) add(a.host, p.name);
      else if (a.loc) add(p.host ?? '127.0.0.1', p.name);
      else {
        let host: string;
        try {
          host = defaultAdminHost(config, p.name);
        } catch (err) {
          // A node missing from another peers section cannot start (node.ts): it has no admin.
          if (err instanceof ConfigError) continue;
          throw err;
        }
        add(host, p.name);
      }
    }
  }
  if (byUrl.size === 0) add(a.loc && !isWildcard(a.host) ? a.host : '127.0.0.1', config.global.localPeer);
  return [...byUrl].map(([url, names]) => (names.length > 0 ? { url, node: names.join('+') } : { url }));
}

/** The nodes of config file `file`; an unreadable or invalid file is an AdminConfigError naming it. */
export function adminNodesOfFile(file: string, env: NodeJS.ProcessEnv): { nodes: AdminNode[]; token?: string } {
  let config: StickmeshConfig;
  try {
    config = loadConfig(file, env).config;
  } catch (err) {
    if (err instanceof ConfigError) throw new AdminConfigError(`${file} is not a valid config:\n${err.lines().join('\n')}`);
    if (err instanceof StickmeshError) throw new AdminConfigError(err.message);
    throw err;
  }
  const nodes = adminNodesOf(config);
  return config.global.admin.token ? { nodes, token: config.global.admin.token } : { nodes };
}

/** True when process `pid` exists (EPERM: it exists but is another user's). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Every demo record under `dir` (at most MAX_DEMO_DIRS directories looked at), with its directory and whether its demo runs. */
function demoRecords(dir: string): Array<{ dir: string; rec: DemoRecord; mtime: number; running: boolean }> {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.startsWith(DEMO_DIR_PREFIX)).slice(0, MAX_DEMO_DIRS);
  } catch {
    return [];
  }
  const out: Array<{ dir: string; rec: DemoRecord; mtime: number; running: boolean }> = [];
  for (const n of names) {
    const f = path.join(dir, n, DEMO_RECORD);
    try {
      const rec = JSON.parse(readFileSync(f, 'utf8')) as DemoRecord;
      if (!Number.isInteger(rec.pid) || !Array.isArray(rec.nodes) || !rec.nodes.every((x) => typeof x?.url === 'string')) continue;
      out.push({ dir: path.join(dir, n), rec, mtime: statSync(f).mtimeMs, running: alive(rec.pid) });
    } catch {
      continue;
    }
  }
  return out;
}

/**
 * The record of the newest running demo under `dir` (default os.tmpdir()), or undefined. A
 * record whose process is gone (a demo killed with -9 leaves its directory) is skipped.
 */
export function runningDemo(dir = os.tmpdir()): DemoRecord | undefined {
  let best: { rec: DemoRecord; mtime: number } | undefined;
  for (const d of demoRecords(dir)) if (d.running && (!best || d.mtime > best.mtime)) best = d;
  return best?.rec;
}

/**
 * Removes the directories of demos that are gone (killed with -9, so they could not remove their
 * own); only directories holding a demo record, whose process does not exist. Returns them.
 */
export function removeDeadDemos(dir = os.tmpdir()): string[] {
  const removed: string[] = [];
  for (const d of demoRecords(dir)) {
    if (d.running) continue;
    try {
      rmSync(d.dir, { recursive: true, force: true });
      removed.push(d.dir);
    } catch {
      continue;
    }
  }
  return removed;
}

/**
 * The nodes a command asks (see the order at the top of this file). `values` are the command's
 * `--admin` and `--config`; `demoDir` is where demos are looked for (tests).
 */
export function planAdmin(values: { admin?: string | undefined; config?: string | undefined }, env: NodeJS.ProcessEnv = process.env, demoDir?: string): AdminPlan {
  const one = (url: string, source: string): AdminPlan => {
    const u = url.replace(/\/+$/, '');
    // Only to name them in an error: the config or demo that a later source would have used.
    const others = (): AdminNode[] => {
      try {
        const list = env.STICKMESH_CONFIG ? adminNodesOfFile(env.STICKMESH_CONFIG, env).nodes : (runningDemo(demoDir)?.nodes ?? []);
        return list.filter((o) => o.url !== u);
      } catch {
        return [];
      }
    };
    return { nodes: [{ url: u }], others, source };
  };
  const fromFile = (file: string): AdminPlan => {
    const { nodes, token } = adminNodesOfFile(file, env);
    return { nodes, others: () => [], source: file, configFile: file, ...(token ? { token } : {}) };
  };
  if (values.admin !== undefined) return one(values.admin, '--admin');
  if (values.config !== undefined) return fromFile(values.config);
  if (env.STICKMESH_ADMIN) return one(env.STICKMESH_ADMIN, '$STICKMESH_ADMIN');
  if (env.STICKMESH_CONFIG) return fromFile(env.STICKMESH_CONFIG);
  const demo = runningDemo(demoDir);
  if (demo && demo.nodes.length > 0) return { nodes: demo.nodes, others: () => [], source: `the running demo (pid ${demo.pid})` };
  return { nodes: [{ url: DEFAULT_ADMIN_URL }], others: () => [], source: 'default' };
}
