/**
 * `stickmesh check` on the stock Debian /etc/haproxy/haproxy.cfg (haproxy 2.6.12-1+deb12u3,
 * copied verbatim into test/fixtures/debian-haproxy with its errors/*.http), which the README
 * invites users to check: it passes with warnings only for what has no meaning here, and the
 * warnings are printed beside errors as `haproxy -c` prints both.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = path.join(root, 'packages/cli/bin/stickmesh.js');
const fixture = path.join(root, 'test/fixtures/debian-haproxy');

function check(file: string) {
  return spawnSync(process.execPath, [bin, 'check', '-c', file], { encoding: 'utf8', timeout: 20000 });
}

describe('stickmesh check on the stock Debian haproxy.cfg', () => {
  it('passes with exit 0; only the directives without meaning here warn', () => {
    const text = readFileSync(path.join(fixture, 'haproxy.cfg'), 'utf8');
    expect(text.match(/^\s*errorfile \d+ \/etc\/haproxy\/errors\/\d+\.http$/gm)).toHaveLength(7);
    // The fixture's own error pages, wherever the package put its copies (or none).
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sm-debian-'));
    const file = path.join(dir, 'haproxy.cfg');
    writeFileSync(file, text.replaceAll('/etc/haproxy/errors/', `${fixture}/errors/`));
    const r = check(file);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trim().split('\n');
    expect(lines.every((l) => l.startsWith('[WARNING] '))).toBe(true);
    const warned = lines.map((l) => /:(\d+): '([^']+)'/.exec(l)?.slice(1, 3).join(' '));
    // log, chroot, stats socket/timeout, user, group, daemon; log global, option httplog/dontlognull.
    expect(warned).toEqual(['2 log', '3 log', '4 chroot', '5 stats', '6 stats', '7 user', '8 group', '9 daemon', '21 log', '23 option httplog', '24 option dontlognull']);
    expect(r.status).toBe(0);
  });

  it('prints the warnings beside the errors, like haproxy -c', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sm-debian-'));
    const file = path.join(dir, 'haproxy.cfg');
    const text = readFileSync(path.join(fixture, 'haproxy.cfg'), 'utf8').replaceAll('/etc/haproxy/errors/', `${fixture}/errors/`);
    writeFileSync(file, `${text}\nfrontend www\n\tbind 127.0.0.1:8080\n\tdefault_backend app\n\tlog global\n`);
    const r = check(file);
    expect(r.stderr).toMatch(/^\[WARNING\] .*:9: 'daemon': /m);
    expect(r.stderr).toMatch(/^.*haproxy\.cfg:38: 'default_backend': frontend 'www': backend 'app' does not exist$/m);
    // One report in file order, as haproxy -c prints as it parses: line numbers never go back.
    const lineNos = r.stderr.trim().split('\n').map((l) => Number(/:(\d+): '/.exec(l)?.[1]));
    expect(lineNos.every((n, i) => i === 0 || n >= lineNos[i - 1]!)).toBe(true);
    expect(lineNos.slice(-2)).toEqual([38, 39]);
    expect(r.stderr).toMatch(/^\[WARNING\] .*:39: 'log': /m);
    expect(r.status).toBe(1);
  });
});
