#!/usr/bin/env node
// New TLS connections per second: `node tls-handshakes.mjs PORT CONNS SECONDS`. CONNS loops, each
// opening a TLS connection (no session offered, so every one is a full handshake: Node's client
// never resumes unless given a session), sending `GET / HTTP/1.1` with `Connection: close`,
// reading the response to its end, then opening the next. Prints one JSON line: completed
// connections per second, latency percentiles (connect to end of response, ms), errors, and how
// many connections the server resumed (must be 0: it proves every handshake was full).
//
// Why not wrk with `Connection: close`: wrk keeps the SSL object across reconnects and resumes
// the previous session when the server issues tickets (about half of its connections to a Node
// server resumed in a trial), so its rate mixes full and abbreviated handshakes in proportions
// that depend on the server.
import tls from 'node:tls';

const [port, conns, seconds] = process.argv.slice(2).map(Number);
if (!(port > 0 && conns > 0 && seconds > 0)) {
  process.stderr.write('usage: node tls-handshakes.mjs PORT CONNS SECONDS\n');
  process.exit(2);
}

const REQ = Buffer.from('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
const ALPN = ['http/1.1'];
/** Latencies in 0.1 ms buckets up to 10 s (bounded: 100,000 counters). */
const hist = new Uint32Array(100_000);
let done = 0;
let errors = 0;
let non200 = 0;
let resumed = 0;
let stopping = false;
const start = performance.now();
const end = start + seconds * 1000;
let live = 0;

function one() {
  if (stopping || performance.now() >= end) {
    stopping = true;
    if (--live === 0) report();
    return;
  }
  const t0 = performance.now();
  let first = null;
  let failed = false;
  const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ALPN });
  s.setNoDelay(true);
  s.once('secureConnect', () => {
    if (s.isSessionReused()) resumed++;
    s.write(REQ);
  });
  s.on('data', (d) => {
    if (first === null) first = d.subarray(0, 12).toString('latin1');
  });
  s.once('error', () => {
    failed = true;
  });
  s.once('close', () => {
    if (failed || first === null) errors++;
    else {
      if (first !== 'HTTP/1.1 200') non200++;
      done++;
      const b = Math.min(hist.length - 1, Math.round((performance.now() - t0) * 10));
      hist[b]++;
    }
    one();
  });
}

function pct(p) {
  const total = hist.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  let seen = 0;
  for (let i = 0; i < hist.length; i++) {
    seen += hist[i];
    if (seen >= total * p) return i / 10;
  }
  return null;
}

function report() {
  const elapsed = (performance.now() - start) / 1000;
  process.stdout.write(`${JSON.stringify({ rps: done / elapsed, connections: done, errors, non200, resumed, p50: pct(0.5), p90: pct(0.9), p99: pct(0.99), seconds: elapsed })}\n`);
  process.exit(0);
}

for (let i = 0; i < conns; i++) {
  live++;
  one();
}
