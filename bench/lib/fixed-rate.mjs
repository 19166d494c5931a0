// An open-loop HTTP/1.1 load at a fixed offered rate, for CPU-per-request figures: wrk has no
// fixed-rate mode (it sends the next request as soon as the last answered, so the rate is
// whatever the proxy can do), and wrk2 is not packaged in Debian.
//
// Request i is due at t0 + i / rate whatever happened before: a 1 ms timer moves every request
// that has fallen due into a queue, and the keep-alive connection idle the longest takes the next
// one (one request in flight per connection, no pipelining). Oldest-idle first spreads requests
// over every connection as that many clients would; taking the most recently idle one would carry
// a low rate on a few connections, all on one of a multi-threaded proxy's threads. Latency is measured from the time a request
// was due, not sent, so a proxy that falls behind shows it (no coordinated omission). Bound: the
// queue holds at most one second of requests (`rate`); a request due beyond that is dropped and
// counted, and a run with drops did not sustain the rate (`sustained: false`).
//
// Usage: node bench/lib/fixed-rate.mjs PORT RATE SECONDS CONNS
// Prints {"phase":"start"} when the clock starts (every connection is up), then one JSON line: {offered, seconds, conns, sent, completed, dropped, errors, non200,
// achieved (completed/s), sustained, p50, p99, maxQueue}.
import net from 'node:net';

const [port, rate, seconds, conns] = process.argv.slice(2).map(Number);
if (!(port > 0 && rate > 0 && seconds > 0 && conns > 0)) {
  process.stderr.write('usage: node fixed-rate.mjs PORT RATE SECONDS CONNS\n');
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

function tick() {
  const now = performance.now() - t0;
  const end = Math.min(now, seconds * 1000);
  const due = Math.floor((end * rate) / 1000);
  for (; scheduled < due; scheduled++) {
    if (qLen === queue.length) {
      dropped++;
      continue;
    }
    queue[(qHead + qLen) % queue.length] = (scheduled * 1000) / rate;
    qLen++;
  }
  maxQueue = Math.max(maxQueue, qLen);
  while (qLen > 0 && idle.length) send(idle.shift());
  if (now >= seconds * 1000) finish();
}

let timer;
function finish() {
  ending = true;
  clearInterval(timer);
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
}, 5);
