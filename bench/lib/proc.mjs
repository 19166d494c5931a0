// Process, port and readiness helpers shared by the benchmark sections.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';

/** Absolute path of `cmd` found on PATH (plus the sbin directories Debian puts daemons in), or null. */
export function which(cmd) {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin', '/usr/local/sbin'];
  for (const d of dirs) {
    if (!d) continue;
    const p = path.join(d, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* not here */
    }
  }
  return null;
}

export { freePort } from './ports.mjs';

/** Number of CPUs this process may run on, and whether `taskset` can pin children to cores 0 and 1. */
export function cpuPlan() {
  const taskset = which('taskset');
  const cpus = os.availableParallelism();
  const pin = Boolean(taskset) && cpus >= 2 && process.env.BENCH_NO_PIN !== '1';
  return { taskset, cpus, pin };
}

/**
 * The argv to run `argv` pinned to `core` when pinning is on (taskset execs the command, so the
 * spawned pid is the pinned program itself), else `argv` unchanged.
 */
export function pinned(plan, core, argv) {
  return plan.pin ? [plan.taskset, '-c', String(core), ...argv] : argv;
}

const live = new Set();
// A benchmark interrupted halfway must not leave servers behind (some SIGSTOPped, deaf to
// SIGTERM): whatever is still running when this process exits is SIGKILLed.
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => process.exit(130));

/**
 * Spawns `argv` with stdout and stderr appended to files under `logDir` (stdout to /dev/null when
 * `stdoutNull`), so a chatty child can never block on a full pipe. Returns the child and the paths.
 */
export function spawnLogged(argv, { name, logDir, cwd, env, stdoutNull = false, stdin = 'ignore', stdout }) {
  const outPath = stdoutNull ? '/dev/null' : path.join(logDir, `${name}.out`);
  const errPath = path.join(logDir, `${name}.err`);
  const out = stdout ?? fs.openSync(outPath, 'a');
  const err = fs.openSync(errPath, 'a');
  // Each server gets a process group of its own: the bench SIGSTOPs the ones not being measured,
  // and a stopped process in a group that becomes orphaned (the bench started in the background
  // from a shell that then exits) gets SIGHUP from the kernel. The exit handler below still
  // kills every child when the bench ends, however it ends.
  const child = spawn(argv[0], argv.slice(1), { cwd, env: env ?? process.env, stdio: [stdin, out, err], detached: true });
  if (stdout === undefined) fs.closeSync(out);
  fs.closeSync(err);
  live.add(child);
  child.exited = new Promise((resolve) =>
    child.once('exit', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    }),
  );
  child.once('error', () => {});
  return { child, outPath, errPath };
}

/** The last `n` characters of a log file, or '' when it cannot be read. */
export function tail(file, n = 2000) {
  try {
    const s = fs.readFileSync(file, 'utf8');
    return s.slice(-n);
  } catch {
    return '';
  }
}

/** One HTTP (or, with `tls`, HTTPS without verification) GET with no connection reuse; resolves to the status code, rejects on any error or after 1 s. */
function getOnce(port, urlPath, tls = false) {
  return new Promise((resolve, reject) => {
    const get = tls ? https.get : http.get;
    const req = get({ host: '127.0.0.1', port, path: urlPath, agent: false, timeout: 1000, rejectUnauthorized: false }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode));
    });
    req.once('timeout', () => req.destroy(new Error('timeout')));
    req.once('error', reject);
  });
}

/**
 * Resolves once GET `urlPath` on 127.0.0.1:`port` answers 200, polling every 50 ms; rejects when
 * `deadlineMs` passes or `child` (if given) exits first, with the last error seen.
 */
export async function waitHttp200(port, { urlPath = '/', deadlineMs = 15000, child, tls = false } = {}) {
  const end = Date.now() + deadlineMs;
  let last = 'no attempt';
  let exited = null;
  child?.exited.then((e) => (exited = e));
  while (Date.now() < end) {
    if (exited) throw new Error(`exited before answering (code ${exited.code}, signal ${exited.signal})`);
    try {
      const status = await getOnce(port, urlPath, tls);
      if (status === 200) return;
      last = `status ${status}`;
    } catch (e) {
      last = e.message;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no 200 from 127.0.0.1:${port}${urlPath} within ${deadlineMs} ms (last: ${last})`);
}

/** Parent pid of `pid` from /proc, or -1. */
function ppidOf(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return -1;
  }
}

/** VmRSS of one pid in bytes (0 when gone or unreadable). */
export function rssOf(pid) {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** `pid` and all its descendants, from the ppid field of every /proc/N/stat. */
export function treePids(pid) {
  const children = new Map();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pp = ppidOf(Number(name));
    if (!children.has(pp)) children.set(pp, []);
    children.get(pp).push(Number(name));
  }
  const out = [];
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop();
    out.push(p);
    stack.push(...(children.get(p) ?? []));
  }
  return out;
}

/** Fields 14.. of /proc/PID/stat (utime, stime, cutime, cstime, ...) as numbers, or null. */
function statTimes(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ').slice(11, 15).map(Number);
  } catch {
    return null;
  }
}

/**
 * A CPU accounting snapshot, in clock ticks: `busy` and `total` for the whole machine from
 * /proc/stat, and `ours` for the given pids (utime+stime each; pids listed twice count once) plus
 * this process and its reaped children (wrk lands in cutime/cstime once waited for).
 * cpuDelta(a, b) turns two snapshots into the CPU the rest of the machine used in between.
 */
export function cpuSnapshot(pids) {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = f;
  const busy = user + nice + system + irq + softirq + (steal ?? 0);
  let ours = 0;
  for (const pid of new Set(pids)) {
    const t = statTimes(pid);
    if (t) ours += t[0] + t[1];
  }
  const self = statTimes(process.pid);
  ours += self[0] + self[1] + self[2] + self[3];
  return { busy, total: busy + idle + iowait, ours };
}

/** CPU seconds (user + system) used so far by `pid` and its descendants (clock ticks of 10 ms). */
export function treeCpuSeconds(pid) {
  let ticks = 0;
  for (const p of treePids(pid)) {
    const t = statTimes(p);
    if (t) ticks += t[0] + t[1];
  }
  return ticks / 100;
}

/**
 * CPU used between two snapshots by processes that are not part of the benchmark, in cores
 * (1.0 = one core fully busy on average). Noise from a shared machine shows here.
 */
export function cpuDelta(a, b) {
  const ncpu = os.cpus().length;
  const total = b.total - a.total;
  if (total <= 0) return 0;
  return Math.max(0, (b.busy - a.busy - (b.ours - a.ours)) / (total / ncpu));
}

/**
 * Resident memory in bytes of `pid` plus all its descendants (VmRSS from /proc/PID/status), so a
 * master/worker server such as nginx is counted whole. Shared pages are counted once per process.
 */
export function treeRss(pid) {
  return treePids(pid).reduce((a, p) => a + rssOf(p), 0);
}

/**
 * Stops a child: `signal` first, SIGKILL if it has not exited after `graceMs`. Resolves to how it
 * exited. A child that already exited resolves at once.
 */
export async function stop(child, { signal = 'SIGTERM', graceMs = 5000 } = {}) {
  if (child.exitCode !== null || child.signalCode !== null) return child.exited;
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  const res = await child.exited;
  clearTimeout(timer);
  return res;
}

/** Runs a command to completion, returning {status, stdout, stderr}; never throws. */
export function run(argv, opts = {}) {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  return { status: r.status, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
}

/**
 * CPU clock ticks (utime+stime) of every thread of `pid`, from /proc/PID/task/TID/stat, as a Map
 * tid -> ticks; empty when the process is gone. One process's threads (worker_threads, HAProxy's
 * nbthread) are tasks of one pid.
 */
export function threadTicks(pid) {
  const out = new Map();
  let tids;
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(tid), Number(f[11]) + Number(f[12]));
    } catch {
      /* the thread ended between the listing and the read */
    }
  }
  return out;
}

