// Config scale benchmark: large and hostile config files through the loader and a live reload.
// Run: npx tsc -b && node bench/config-scale.mjs [--quick]
// Prints a short report, then one JSON line (the last line) with every figure:
// - check: `loadConfig` of a generated haproxy.cfg with 25,000 and 100,000 servers (median of 3;
//   their ratio shows linearity: 4.0 is linear, the quadratic duplicate check made it ~16), plus
//   `stickmesh check` of the 100,000-server file as a process, wall time and peak RSS.
// - garbage: `stickmesh check` of 4 MiB of `a\n` (2,097,152 problems): wall time, peak RSS, lines printed.
// - reload: a running node (in this process) reloads a config of 40,000 servers (`check inter 60s`),
//   parsing with `loadConfigAsync`; the longest event-loop stall (a 5 ms interval's largest gap)
//   against the peers' dead-peer limit of 3 s, and the reload's wall time.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { loadConfig, loadConfigAsync, parseConfigText } from '../packages/core/dist/index.js';
import { StickmeshNode } from '../packages/cli/dist/node.js';
import { repoRoot } from './lib/targets.mjs';

const quick = process.argv.includes('--quick');
const dir = mkdtempSync(path.join(os.tmpdir(), 'sm-config-scale-'));
const bin = path.join(repoRoot, 'packages/cli/bin/stickmesh.js');

function servers(n, opts = '') {
  const head = 'global\n  admin-bind 127.0.0.1:0\ndefaults\n  mode http\n  timeout connect 1s\nfrontend fe\n  bind 127.0.0.1:0\n  default_backend be\nbackend be\n';
  const lines = [head];
  for (let i = 0; i < n; i++) lines.push(`  server s${i} 127.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:${8000 + (i % 1000)}${opts}\n`);
  return lines.join('');
}

function file(name, text) {
  const f = path.join(dir, name);
  writeFileSync(f, text);
  return f;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Median ms of 3 `loadConfig(f)`, whether it loads or throws (a garbage file throws). */
function timeLoad(f) {
  const runs = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    try {
      loadConfig(f, {});
    } catch {
      /* timed all the same */
    }
    runs.push(performance.now() - t0);
  }
  return Math.round(median(runs));
}

/** Runs the CLI under /usr/bin/time when present: wall ms, peak RSS MB, stderr lines. */
function cli(args) {
  const timeBin = '/usr/bin/time';
  const t0 = performance.now();
  const hasTime = spawnSync(timeBin, ['-f', '%M', 'true']).status === 0;
  const r = hasTime
    ? spawnSync(timeBin, ['-f', 'RSSKB=%M', process.execPath, bin, ...args], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
    : spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const ms = Math.round(performance.now() - t0);
  const rss = hasTime ? /RSSKB=(\d+)/.exec(r.stderr)?.[1] : undefined;
  const lines = r.stderr.trimEnd().split('\n').filter((l) => !l.startsWith('RSSKB=') && !l.startsWith('Command exited with non-zero status'));
  return { ms, exit: r.status, rssMB: rss ? Math.round(Number(rss) / 1024) : null, lines };
}

async function reloadStall(n) {
  const logger = pino({ level: 'silent' });
  const small = parseConfigText(servers(2, ' check inter 60s'), 'small.cfg', 'haproxy', { STICKMESH_ADMIN_PORT: '0' });
  const node = await StickmeshNode.start(small, { node: 'lb1', logger, env: {} });
  const f = file('reload.cfg', servers(n, ' check inter 60s'));
  let maxGap = 0;
  let last = performance.now();
  const iv = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last - 5);
    last = now;
  }, 5);
  await new Promise((r) => setTimeout(r, 100));
  maxGap = 0;
  const t0 = performance.now();
  const next = await loadConfigAsync(f, { STICKMESH_ADMIN_PORT: '0' });
  await node.reload(next);
  const ms = Math.round(performance.now() - t0);
  // The first health checks run over the next seconds: keep watching through their spread.
  await new Promise((r) => setTimeout(r, quick ? 2000 : 5000));
  clearInterval(iv);
  await node.stop(0, false);
  return { servers: n, reloadMs: ms, maxStallMs: Math.round(maxGap) };
}

const out = { bench: 'config-scale' };
const small = quick ? 10_000 : 25_000;
const big = quick ? 40_000 : 100_000;
const fSmall = file('small.cfg', servers(small));
const fBig = file('big.cfg', servers(big));
const [a, b] = [timeLoad(fSmall), timeLoad(fBig)];
const checkBig = cli(['check', '-c', fBig]);
out.check = { [`load${small}Ms`]: a, [`load${big}Ms`]: b, ratio: Number((b / a).toFixed(2)), linearRatio: big / small, cliMs: checkBig.ms, cliExit: checkBig.exit, cliRssMB: checkBig.rssMB };
const fGarbage = file('garbage.cfg', 'a\n'.repeat(2 * 1024 * 1024));
const garbage = cli(['check', '-c', fGarbage]);
const startup = cli(['check', '-c', file('tiny.cfg', 'global\n  maxconn 10\n')]);
out.garbage = { bytes: 4 * 1024 * 1024, loadMs: timeLoad(fGarbage), cliMs: garbage.ms, cliStartupMs: startup.ms, cliExit: garbage.exit, cliRssMB: garbage.rssMB, linesPrinted: garbage.lines.length, last: garbage.lines.at(-1) };
out.reload = await reloadStall(quick ? 10_000 : 40_000);
rmSync(dir, { recursive: true, force: true });

console.log(`check: loadConfig ${small} servers ${a} ms, ${big} servers ${b} ms (ratio ${out.check.ratio}, linear ${big / small}); stickmesh check ${big} servers ${checkBig.ms} ms, RSS ${checkBig.rssMB} MB`);
console.log(`garbage: loadConfig of 4 MiB of 'a\\n' ${out.garbage.loadMs} ms; stickmesh check ${garbage.ms} ms (of a 2-line file: ${startup.ms} ms), RSS ${garbage.rssMB} MB, ${garbage.lines.length} lines, last: ${out.garbage.last}`);
console.log(`reload: ${out.reload.servers} checked servers in ${out.reload.reloadMs} ms, longest event-loop stall ${out.reload.maxStallMs} ms (a peer is dead after 3000 ms)`);
console.log(JSON.stringify(out));
process.exit(0);
