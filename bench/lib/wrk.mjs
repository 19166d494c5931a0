// Running wrk and reading its report.
import { spawn } from 'node:child_process';
import { pinned } from './proc.mjs';

const UNIT_MS = { us: 0.001, ms: 1, s: 1000, m: 60000, h: 3600000 };

/** A wrk duration such as `812.00us`, `1.20ms` or `2.01s` in milliseconds, or null. */
export function toMs(text) {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text.trim());
  return m ? Number(m[1]) * UNIT_MS[m[2]] : null;
}

/**
 * Parses the text wrk prints with --latency into numbers: req/s, p50/p90/p99 latency in ms,
 * requests completed, socket errors (connect+read+write+timeout) and non-2xx/3xx responses.
 * Throws when the Requests/sec line is missing (wrk failed to run).
 */
export function parseWrk(text) {
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(text);
  if (!rps) throw new Error(`unreadable wrk output:\n${text}`);
  const pct = (p) => {
    const m = new RegExp(`^\\s+${p}%\\s+(\\S+)`, 'm').exec(text);
    return m ? toMs(m[1]) : null;
  };
  const reqs = /^\s+(\d+) requests in ([\d.]+\w+)/m.exec(text);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  return {
    rps: Number(rps[1]),
    p50: pct(50),
    p90: pct(90),
    p99: pct(99),
    requests: reqs ? Number(reqs[1]) : null,
    socketErrors: sock ? sock.slice(1, 5).reduce((a, b) => a + Number(b), 0) : 0,
    non2xx: non2xx ? Number(non2xx[1]) : 0,
  };
}

/**
 * Runs `wrk -t1 -c<conns> -d<seconds>s --latency <url>` (pinned to core 1 when the plan pins) and
 * resolves to parseWrk's numbers plus the raw text. `close`: every request carries
 * `Connection: close`, so each one opens a new connection. Rejects if wrk exits non-zero or prints
 * no report.
 */
export function runWrk({ wrk, plan, url, conns, seconds, close = false }) {
  const extra = close ? ['-H', 'Connection: close'] : [];
  const argv = pinned(plan, 1, [wrk, '-t1', `-c${conns}`, `-d${seconds}s`, '--timeout', '5s', '--latency', ...extra, url]);
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`wrk exited ${code}: ${err || out}`));
      try {
        resolve({ ...parseWrk(out), raw: out });
      } catch (e) {
        reject(e);
      }
    });
  });
}

/**
 * New TLS connections: bench/lib/tls-handshakes.mjs with `conns` loops for `seconds` against
 * 127.0.0.1:`port` (pinned to core 1 like wrk), every connection a full handshake and one
 * `Connection: close` request. Resolves to runWrk's shape (req/s = completed connections/s)
 * plus `resumed` (0 when every handshake was full). Rejects if the client fails.
 */
export function runTlsHandshakes({ plan, port, conns, seconds }) {
  const script = new URL('./tls-handshakes.mjs', import.meta.url).pathname;
  const argv = pinned(plan, 1, [process.execPath, script, String(port), String(conns), String(seconds)]);
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`tls-handshakes exited ${code}: ${err || out}`));
      try {
        const r = JSON.parse(out.trim().split('\n').pop());
        resolve({ rps: r.rps, p50: r.p50, p90: r.p90, p99: r.p99, requests: r.connections, socketErrors: r.errors, non2xx: r.non200, resumed: r.resumed, raw: out });
      } catch (e) {
        reject(new Error(`unreadable tls-handshakes output: ${out}${err}`));
      }
    });
  });
}

/**
 * A fixed offered rate (bench/lib/fixed-rate.mjs): `rate` requests/s over `conns` keep-alive
 * connections for `seconds`, unpinned, arriving as `pace` says (poisson, even or tick; see there). `onStart()` and `onEnd()` are called when the generator's
 * clock starts and when it has stopped sending (so the caller can read a process's CPU over exactly
 * the run). Resolves to the generator's JSON; rejects if it fails.
 */
export function runFixedRate({ port, rate, seconds, conns, pace = 'poisson', onStart = () => {}, onEnd = () => {} }) {
  const script = new URL('./fixed-rate.mjs', import.meta.url).pathname;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, String(port), String(rate), String(seconds), String(conns), pace], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let result = null;
    child.stdout.on('data', (d) => {
      out += d;
      let i;
      while ((i = out.indexOf('\n')) >= 0) {
        const line = out.slice(0, i);
        out = out.slice(i + 1);
        try {
          const j = JSON.parse(line);
          if (j.phase === 'start') onStart();
          else {
            onEnd();
            result = j;
          }
        } catch {
          err += line;
        }
      }
    });
    child.stderr.on('data', (d) => (err += d));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0 || !result) return reject(new Error(`fixed-rate exited ${code}: ${err || out}`));
      resolve(result);
    });
  });
}
