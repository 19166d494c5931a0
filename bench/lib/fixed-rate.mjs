// An open-loop HTTP/1.1 load at a fixed offered rate, for CPU-per-request figures: wrk has no
// fixed-rate mode (it sends the next request as soon as the last answered, so the rate is
// whatever the proxy can do), and wrk2 is not packaged in Debian.
//
// Request i is due at its arrival time whatever happened before, and the keep-alive connection
// idle the longest takes the next
// one (one request in flight per connection, no pipelining). Oldest-idle first spreads requests
// over every connection as that many clients would; taking the most recently idle one would carry
// a low rate on a few connections, all on one of a multi-threaded proxy's threads. Latency is measured from the time a request
// was due, not sent, so a proxy that falls behind shows it (no coordinated omission). Bound: the
// queue holds at most one second of requests (`rate`); a request due beyond that is dropped and
// counted, and a run with drops did not sustain the rate (`sustained: false`).
//
// Arrivals (PACE, default poisson):
//   poisson  independent clients: exponential gaps of mean 1/rate (seeded, so every run offers
//            the same sequence). A pacer thread sleeps until each arrival (Atomics.wait, sub-ms)
//            and wakes the sender, so requests leave when due, one by one.
//   even     request i at i / rate, paced the same way.
//   tick     request i at i / rate, released by a 1 ms timer: at 2,000 req/s requests leave in
//            pairs every millisecond, which hands a single-threaded proxy two requests per
//            wake-up and a two-threaded one one per thread. Kept to compare with older figures.
//
// Usage: node bench/lib/fixed-rate.mjs PORT RATE SECONDS CONNS [PACE]
// Prints {"phase":"start"} when the clock starts (every connection is up), then one JSON line: {offered, seconds, conns, sent, completed, dropped, errors, non200,
// achieved (completed/s), sustained, p50, p99, maxQueue}.
import net from 'node:net';
import { Worker } from 'node:worker_threads';

const [port, rate, seconds, conns] = process.argv.slice(2, 6).map(Number);
const pace = process.argv[6] ?? 'poisson';
if (!(port > 0 && rate > 0 && seconds > 0 && conns > 0) || !['poisson', 'even', 'tick'].includes(pace)) {
  process.stderr.write('usage: node fixed-rate.mjs PORT RATE SECONDS CONNS [poisson|even|tick]\n');
  process.exit(2);
}

const REQUEST = Buffer.from(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUser-Agent: stickmesh-bench-fixed-rate\r\n\r\n`);
const LAT_MAX = Math.ceil(rate * seconds) + 1;
const latencies = new Float64Array(LAT_MAX);
let nLat = 0;
const queue = new Float64Array(rate); // due times (ms since t0), a ring of one second of requests
let qHead = 0;
let qLen = 0;
let maxQueue = 0;
let sent = 0;
let completed = 0;
let dropped = 0;
let errors = 0;
let non200 = 0;
let scheduled = 0;
let t0 = 0;
let ending = false;
const idle = [];

/** One keep-alive connection: sends a request, reads one response (Content-Length framed), repeats. */
function connect() {
  const c = { sock: null, due: 0, buf: '', need: -1, busy: false };
  const sock = net.connect({ host: '127.0.0.1', port });
  c.sock = sock;
  sock.setNoDelay(true);
  sock.on('connect', () => ready(c));
  sock.on('data', (chunk) => {
    c.buf += chunk.toString('latin1');
    for (;;) {
      if (c.need < 0) {
        const end = c.buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = c.buf.slice(0, end);
        const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
        if (!cl) {
          // Every upstream of the bench answers with Content-Length; anything else is an error.
          errors++;
          sock.destroy();
          return;
        }
        if (!head.startsWith('HTTP/1.1 200')) non200++;
        c.need = end + 4 + Number(cl[1]);
      }
      if (c.buf.length < c.need) return;
      c.buf = c.buf.slice(c.need);
      c.need = -1;
      const now = performance.now() - t0;
      completed++;
      if (nLat < LAT_MAX) latencies[nLat++] = now - c.due;
      c.busy = false;
      ready(c);
    }
  });
  sock.on('error', () => {});
  sock.on('close', () => {
    if (c.busy) errors++;
    c.busy = false;
    const i = idle.indexOf(c);
    if (i >= 0) idle.splice(i, 1);
    if (!ending) setTimeout(connect, 10);
  });
}

function ready(c) {
  if (ending) return;
  if (qLen > 0) send(c);
  else idle.push(c);
}

function send(c) {
  c.due = queue[qHead];
  qHead = (qHead + 1) % queue.length;
  qLen--;
  c.busy = true;
  sent++;
  c.sock.write(REQUEST);
}

/**
 * Arrival times in ms from t0, in order, for the whole run (bound: rate x seconds entries): even
 * spacing for `even`/`tick`, exponential gaps for `poisson` from a fixed-seed generator.
 */
function arrivals() {
  const n = Math.floor(rate * seconds);
  const at = new Float64Array(new SharedArrayBuffer(8 * Math.max(1, n)));
  if (pace !== 'poisson') {
    for (let i = 0; i < n; i++) at[i] = (i * 1000) / rate;
    return at;
  }
  let x = 0x2545f491;
  let t = 0;
  for (let i = 0; i < n; i++) {
    // xorshift32, then an exponential gap of mean 1000 / rate ms.
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const u = ((x >>> 0) + 1) / 4294967297;
    t += (-Math.log(u) * 1000) / rate;
    at[i] = t;
  }
  return at;
}
const due = arrivals();

function tick() {
  const now = performance.now() - t0;
  for (; scheduled < due.length && due[scheduled] <= now; scheduled++) {
    if (qLen === queue.length) {
      dropped++;
      continue;
    }
    queue[(qHead + qLen) % queue.length] = due[scheduled];
    qLen++;
  }
  maxQueue = Math.max(maxQueue, qLen);
  while (qLen > 0 && idle.length) send(idle.shift());
  if (now >= seconds * 1000) finish();
}

/**
 * The pacer (poisson, even): a thread that sleeps until each arrival and then wakes the sender
 * with a message (arrivals already due when it wakes share one). The sender's event loop stays
 * free for the sockets; the run's end is checked by a 1 ms timer as in tick mode.
 */
const PACER_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
const { at, origin } = workerData;
const nap = new Int32Array(new SharedArrayBuffer(4));
for (let i = 0; i < at.length; ) {
  const wait = origin + at[i] - (performance.timeOrigin + performance.now());
  if (wait > 0.02) Atomics.wait(nap, 0, 0, wait);
  const now = performance.timeOrigin + performance.now() - origin;
  while (i < at.length && at[i] <= now) i++;
  parentPort.postMessage(0);
}
`;
let pacer;
function startPacer() {
  if (pace === 'tick') return;
  pacer = new Worker(PACER_SOURCE, { eval: true, workerData: { at: due, origin: performance.timeOrigin + t0 } });
  pacer.on('message', tick);
  pacer.unref();
}

let timer;
function finish() {
  ending = true;
  clearInterval(timer);
  if (pacer) void pacer.terminate();
  // What is still queued or in flight at the end was offered and not served within the run.
  const lat = Array.from(latencies.subarray(0, nLat)).sort((a, b) => a - b);
  const pct = (p) => (lat.length ? Math.round(lat[Math.min(lat.length - 1, Math.ceil((p / 100) * lat.length) - 1)] * 1000) / 1000 : null);
  const offered = Math.floor(rate * seconds);
  const out = {
    offered,
    rate,
    seconds,
    conns,
    sent,
    completed,
    dropped,
    errors,
    non200,
    unserved: offered - completed,
    pace,
    achieved: completed / seconds,
    sustained: dropped === 0 && errors === 0 && completed >= offered * 0.99,
    p50: pct(50),
    p99: pct(99),
    maxQueue,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
  process.exit(0);
}

for (let i = 0; i < conns; i++) connect();
// Start the clock once every connection is up (at most 2 s), so connecting is not in the run.
const waitStart = performance.now();
const startWhenReady = setInterval(() => {
  if (idle.length < conns && performance.now() - waitStart < 2000) return;
  clearInterval(startWhenReady);
  t0 = performance.now();
  // The parent reads the proxy's CPU at this line and at the result line: the run, nothing else.
  process.stdout.write('{"phase":"start"}\n');
  timer = setInterval(tick, 1);
  startPacer();
}, 5);
