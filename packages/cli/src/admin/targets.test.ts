import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { AdminConfigError, DEMO_DIR_PREFIX, DEMO_RECORD, adminNodesOfFile, planAdmin, removeDeadDemos, runningDemo } from './targets.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'sm-targets-'));
let n = 0;
function cfg(text: string): string {
  const f = path.join(dir, `c${n++}.cfg`);
  writeFileSync(f, text);
  return f;
}
const BODY = 'defaults\n    mode http\n    timeout connect 1s\n    timeout client 1s\n    timeout server 1s\nfrontend fe\n    bind 127.0.0.1:18080\n    default_backend be\nbackend be\n    server web1 127.0.0.1:9001\n';
const cluster = fileURLToPath(new URL('../../../../examples/cluster.cfg', import.meta.url));

describe('adminNodesOfFile: the admin address each node of a config binds (node.ts startAdmin)', () => {
  it("examples/cluster.cfg (admin-bind \"${NODE_IP}:9100\"): node N's own 127.0.0.N:9100", () => {
    expect(adminNodesOfFile(cluster, {}).nodes).toEqual([
      { url: 'http://127.0.0.1:9100', node: 'node1' },
      { url: 'http://127.0.0.2:9100', node: 'node2' },
      { url: 'http://127.0.0.3:9100', node: 'node3' },
    ]);
  });

  it('without admin-bind: the loopback peer address of each node, else 127.0.0.1 shared by all', () => {
    const loop = cfg('peers p\n    server a 127.0.0.5:10000\n    server b 127.0.0.6:10000\n' + BODY);
    expect(adminNodesOfFile(loop, {}).nodes).toEqual([
      { url: 'http://127.0.0.5:9100', node: 'a' },
      { url: 'http://127.0.0.6:9100', node: 'b' },
    ]);
    const hosts = cfg('peers p\n    server lb1 10.0.0.1:10000\n    server lb2 10.0.0.2:10000\n' + BODY);
    expect(adminNodesOfFile(hosts, {}).nodes).toEqual([{ url: 'http://127.0.0.1:9100', node: 'lb1+lb2' }]);
  });

  it("admin-bind on every address: each peer's address; on one address: that address; the config's token", () => {
    const any = cfg('global\n    admin-bind :9200\npeers p\n    server lb1 10.0.0.1:10000\n    server lb2 10.0.0.2:10000\n' + BODY);
    expect(adminNodesOfFile(any, {}).nodes).toEqual([
      { url: 'http://10.0.0.1:9200', node: 'lb1' },
      { url: 'http://10.0.0.2:9200', node: 'lb2' },
    ]);
    const one = cfg('global\n    admin-bind 127.0.0.1:9300\n    admin-token s3cret\npeers p\n    server lb1 10.0.0.1:10000\n    server lb2 10.0.0.2:10000\n' + BODY);
    expect(adminNodesOfFile(one, {})).toEqual({ nodes: [{ url: 'http://127.0.0.1:9300', node: 'lb1+lb2' }], token: 's3cret' });
    expect(adminNodesOfFile(cfg(BODY), {}).nodes).toEqual([{ url: 'http://127.0.0.1:9100' }]);
  });

  it('a missing file, an invalid config or a disabled admin listener is an AdminConfigError naming the problem', () => {
    expect(() => adminNodesOfFile(path.join(dir, 'nope.cfg'), {})).toThrow(`cannot read ${path.join(dir, 'nope.cfg')}: no such file or directory`);
    expect(() => adminNodesOfFile(cfg('frontend\n'), {})).toThrow(AdminConfigError);
    expect(() => adminNodesOfFile(cfg('global\n    admin-bind 127.0.0.1:0\n' + BODY), {})).toThrow(/disables the admin listener/);
  });
});

describe('planAdmin: --admin, --config, $STICKMESH_ADMIN, $STICKMESH_CONFIG, a running demo, the default', () => {
  const demos = mkdtempSync(path.join(os.tmpdir(), 'sm-demos-'));
  const record = (name: string, pid: number) => {
    mkdirSync(path.join(demos, name));
    writeFileSync(path.join(demos, name, DEMO_RECORD), JSON.stringify({ pid, config: cluster, nodes: [{ url: 'http://127.0.0.1:9100', node: 'node1' }, { url: 'http://127.0.0.2:9100', node: 'node2' }] }));
  };
  const empty = mkdtempSync(path.join(os.tmpdir(), 'sm-nodemo-'));

  it('takes the first source given', () => {
    const env = { STICKMESH_ADMIN: 'http://127.0.0.9:1', STICKMESH_CONFIG: cluster };
    expect(planAdmin({ admin: 'http://127.0.0.7:9100/', config: cluster }, env, empty)).toMatchObject({ nodes: [{ url: 'http://127.0.0.7:9100' }], source: '--admin' });
    expect(planAdmin({ config: cluster }, env, empty)).toMatchObject({ source: cluster, nodes: [{ node: 'node1' }, { node: 'node2' }, { node: 'node3' }] });
    expect(planAdmin({}, env, empty)).toMatchObject({ nodes: [{ url: 'http://127.0.0.9:1' }], source: '$STICKMESH_ADMIN' });
    expect(planAdmin({}, { STICKMESH_CONFIG: cluster }, empty).nodes).toHaveLength(3);
    expect(planAdmin({}, {}, empty)).toMatchObject({ nodes: [{ url: 'http://127.0.0.1:9100' }], source: 'default' });
  });

  it("one node given: its error will name the config's other nodes", () => {
    const p = planAdmin({ admin: 'http://127.0.0.1:9100' }, { STICKMESH_CONFIG: cluster }, empty);
    expect(p.others().map((o) => o.node)).toEqual(['node2', 'node3']);
  });

  it("finds a running demo's nodes, and skips the record of a demo that is gone", () => {
    expect(runningDemo(demos)).toBeUndefined();
    // A pid far above pid_max (2^22) is no process.
    record(`${DEMO_DIR_PREFIX}dead`, 99_999_999);
    expect(runningDemo(demos)).toBeUndefined();
    record(`${DEMO_DIR_PREFIX}live`, process.pid);
    expect(runningDemo(demos)?.pid).toBe(process.pid);
    const p = planAdmin({}, {}, demos);
    expect(p.source).toBe(`the running demo (pid ${process.pid})`);
    expect(p.nodes.map((x) => x.node)).toEqual(['node1', 'node2']);
    expect(planAdmin({ admin: 'http://127.0.0.1:9100' }, {}, demos).others()).toEqual([{ url: 'http://127.0.0.2:9100', node: 'node2' }]);
  });

  it("removes the directories of demos that are gone, and only those", () => {
    mkdirSync(path.join(demos, `${DEMO_DIR_PREFIX}norecord`));
    expect(removeDeadDemos(demos)).toEqual([path.join(demos, `${DEMO_DIR_PREFIX}dead`)]);
    expect(readdirSync(demos).sort()).toEqual([`${DEMO_DIR_PREFIX}live`, `${DEMO_DIR_PREFIX}norecord`]);
  });
});
