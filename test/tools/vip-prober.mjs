#!/usr/bin/env node
// Client side of the VIP failover test, run inside the client network namespace. Client i has
// source address PREFIX.(1 + i/250).(1 + i%250) (the test adds them to the namespace); every
// request is a fresh connection (agent: false), as a new client's would be.
//
//   sweep URL PREFIX FIRST COUNT
//     one GET per client FIRST..FIRST+COUNT-1; prints {"<addr>": "<x-served-by>" | "FAIL", ...}
//   probe URL PREFIX FIRST COUNT MAPPING_FILE [INTERVAL_MS=10] [TIMEOUT_MS=500] [MAX_SEC=60]
//     every INTERVAL_MS a GET from the next client (round robin), not waiting for the previous
//     one; each answer is checked against MAPPING_FILE ({addr: server}). stdin lines: `mark`
//     records the fault moment, `stop` (or MAX_SEC, or stdin closing) ends the run and prints
//     one JSON summary: samples, failures, mismatches, and maxGapMs, the longest time between
//     the send times of two consecutive successful requests from 1 s before the mark on
//     (the outage as clients see it, to within INTERVAL_MS).
import http from 'node:http';
import { readFileSync } from 'node:fs';
import readline from 'node:readline';

const [mode, url, prefix, firstArg, countArg, ...rest] = process.argv.slice(2);
if (!['sweep', 'probe'].includes(mode) || !url || !prefix) {
  console.error('usage: vip-prober.mjs sweep|probe URL PREFIX FIRST COUNT [...]');
  process.exit(2);
}
const first = Number(firstArg);
const count = Number(countArg);
const addr = (i) => `${prefix}.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;

function get(localAddress, timeoutMs) {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, localAddress, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200 ? String(res.headers['x-served-by']) : 'FAIL'));
      res.on('error', () => resolve('FAIL'));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve('FAIL'));
  });
}

if (mode === 'sweep') {
  const out = {};
  let next = first;
  const worker = async () => {
    while (next < first + count) {
      const a = addr(next++);
      out[a] = await get(a, 2000);
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  process.stdout.write(`${JSON.stringify(out)}\n`);
  process.exit(0);
}

const [mappingFile, intervalArg = '10', timeoutArg = '500', maxSecArg = '60'] = rest;
const mapping = JSON.parse(readFileSync(mappingFile, 'utf8'));
const intervalMs = Number(intervalArg);
const timeoutMs = Number(timeoutArg);
const t0 = Date.now();
const samples = [];
const inflight = new Set();
let mark = null;
let stopped = false;

readline.createInterface({ input: process.stdin }).on('line', (l) => {
  if (l.trim() === 'mark') mark = Date.now();
  if (l.trim() === 'stop') stopped = true;
}).on('close', () => (stopped = true));

for (let i = 0, tick = t0; !stopped && Date.now() - t0 < Number(maxSecArg) * 1000; i++) {
  const a = addr(first + (i % count));
  const sent = Date.now();
  const p = get(a, timeoutMs).then((server) => {
    samples.push({ sent, addr: a, server });
    inflight.delete(p);
  });
  inflight.add(p);
  tick += intervalMs;
  await new Promise((r) => setTimeout(r, Math.max(0, tick - Date.now())));
}
await Promise.all(inflight);

samples.sort((x, y) => x.sent - y.sent);
const from = (mark ?? t0) - 1000;
let maxGapMs = 0;
let gapAt = null;
let lastOk = null;
for (const s of samples) {
  if (s.sent < from || s.server === 'FAIL') continue;
  if (lastOk !== null && s.sent - lastOk > maxGapMs) {
    maxGapMs = s.sent - lastOk;
    gapAt = lastOk - (mark ?? t0);
  }
  lastOk = s.sent;
}
const after = samples.filter((s) => mark !== null && s.sent >= mark);
const mismatches = samples.filter((s) => s.server !== 'FAIL' && mapping[s.addr] !== s.server);
process.stdout.write(
  `${JSON.stringify({
    samples: samples.length,
    failures: samples.filter((s) => s.server === 'FAIL').length,
    samplesAfterMark: after.length,
    failuresAfterMark: after.filter((s) => s.server === 'FAIL').length,
    clientsChecked: new Set(samples.filter((s) => s.server !== 'FAIL').map((s) => s.addr)).size,
    mismatches: mismatches.length,
    mismatchExamples: mismatches.slice(0, 5),
    maxGapMs,
    gapStartsAfterMarkMs: gapAt,
    intervalMs,
  })}\n`,
);
process.exit(0);
