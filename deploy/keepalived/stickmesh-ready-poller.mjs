#!/usr/bin/env node
// Feeds keepalived's track_file with the local stickmesh node's readiness: polls the admin
// `/ready` every INTERVAL ms and writes 0 (ready) or 1 (not ready) to FILE whenever the file does
// not hold the current state (atomically: write + rename, which keepalived's inotify watch picks
// up at once). Checking the file each time also undoes keepalived's `init_file 1 overwrite` when
// keepalived restarts while the node is healthy.
// FALL consecutive failures (refused, timeout, non-200) mark it down, RISE successes up again.
// The state starts down, so keepalived never gives the VIP to a node that has not resynced.
// usage: stickmesh-ready-poller.mjs FILE [URL=http://127.0.0.1:9100/ready]
//        env INTERVAL_MS=100 TIMEOUT_MS=300 FALL=2 RISE=3
import { readFileSync, renameSync, writeFileSync } from 'node:fs';

const [file, url = 'http://127.0.0.1:9100/ready'] = process.argv.slice(2);
if (!file) {
  console.error('usage: stickmesh-ready-poller.mjs FILE [URL]');
  process.exit(2);
}
const intervalMs = Number(process.env.INTERVAL_MS ?? 100);
const timeoutMs = Number(process.env.TIMEOUT_MS ?? 300);
const fall = Number(process.env.FALL ?? 2);
const rise = Number(process.env.RISE ?? 3);

let up = false;
let streak = 0;

function publish(value) {
  let current = '';
  try {
    current = readFileSync(file, 'utf8').trim();
  } catch {
    // missing: written below
  }
  if (current === String(value)) return;
  writeFileSync(`${file}.tmp`, `${value}\n`);
  renameSync(`${file}.tmp`, file);
}

async function check() {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await r.arrayBuffer();
    return r.status === 200;
  } catch {
    return false;
  }
}

publish(1);
for (;;) {
  const started = Date.now();
  const ok = await check();
  if (ok === up) streak = 0;
  else if (++streak >= (ok ? rise : fall)) {
    up = ok;
    streak = 0;
    console.log(JSON.stringify({ time: new Date().toISOString(), msg: up ? 'ready' : 'not ready', url }));
  }
  publish(up ? 0 : 1);
  await new Promise((r) => setTimeout(r, Math.max(0, intervalMs - (Date.now() - started))));
}
