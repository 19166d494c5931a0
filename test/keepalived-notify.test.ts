/**
 * deploy/keepalived/stickmesh-notify.sh as keepalived runs it (vrrp_notify_fifo_script): one
 * reader for the whole life of keepalived, transitions arriving as lines on a FIFO. Needs mkfifo
 * and sh (coreutils) and Linux's /proc/PID/wchan; fails, does not skip, without them.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from './helpers/wait.js';

const SCRIPT = fileURLToPath(new URL('../deploy/keepalived/stickmesh-notify.sh', import.meta.url));

interface Reader {
  proc: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  fifo: string;
  state: string;
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

/** Starts the reader on a fresh FIFO; the state file is in a directory it has to create. */
function startReader(): Reader {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sm-notify-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const fifo = path.join(dir, 'vrrp.fifo');
  const state = path.join(dir, 'run', 'vrrp-state');
  execFileSync('mkfifo', [fifo]);
  const proc = spawn('sh', [SCRIPT, state, fifo], { stdio: 'ignore', env: { PATH: process.env.PATH } });
  cleanups.push(() => proc.exitCode === null && proc.signalCode === null && proc.kill('SIGKILL'));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { proc, exited, fifo, state };
}

/** Opens the FIFO's write end as keepalived does (read-write: never blocks, no EOF while open). */
function openLikeKeepalived(r: Reader): number {
  const fd = openSync(r.fifo, 'r+');
  cleanups.push(() => {
    try {
      closeSync(fd);
    } catch {
      /* closed by the test */
    }
  });
  return fd;
}

function readState(r: Reader): { state: string; priority: string; at: number } | undefined {
  try {
    const [state, priority, at] = readFileSync(r.state, 'utf8').trim().split(' ');
    return { state: state!, priority: priority!, at: Number(at) * 1000 };
  } catch {
    return undefined;
  }
}

/** The reader's exit, or a failure if it is still running after `ms`. */
function exitOf(r: Reader, ms = 5000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the reader was still running after ${ms} ms`)), ms);
  });
  return Promise.race([r.exited, late]).finally(() => clearTimeout(timer));
}

const line = (event: string, priority: number) => `INSTANCE "stickmesh" ${event} ${priority}\n`;

describe('keepalived notify reader', () => {
  it('records transitions in the order keepalived wrote them, however close together', async () => {
    const r = startReader();
    const fd = openSync(r.fifo, 'w');
    // 200 transitions in one burst, as a flapping node would produce; the last one must win.
    const states = ['FAULT', 'BACKUP', 'MASTER', 'BACKUP'];
    let burst = '';
    for (let i = 0; i < 200; i++) burst += line(states[i % 4]!, i);
    burst += 'GROUP "other" MASTER 1\n'; // not an instance line: ignored
    writeSync(fd, burst);
    closeSync(fd); // keepalived exiting: the reader sees EOF and ends
    expect(await exitOf(r)).toEqual({ code: 0, signal: null });
    const s = readState(r)!;
    expect(s.state).toBe('BACKUP');
    expect(s.priority).toBe('199');
    expect(Math.abs(s.at - Date.now())).toBeLessThan(60000);
  });

  it('keeps the state through events that are not state changes', async () => {
    const r = startReader();
    const fd = openSync(r.fifo, 'w'); // returns once the reader has the FIFO open
    // A master hearing a lower-priority master (a healed split), then priority changes
    // (notify_priority_changes): none of them is a state, the file must still say MASTER.
    writeSync(fd, line('MASTER', 150) + line('MASTER_RX_LOWER_PRI', 150) + line('MASTER_PRIORITY', 140) + line('BACKUP_PRIORITY', 130));
    closeSync(fd); // EOF: the reader has handled every line before it exits
    expect(await exitOf(r)).toEqual({ code: 0, signal: null });
    expect(readState(r)).toMatchObject({ state: 'MASTER', priority: '150' });
  });

  it('survives the SIGTERM keepalived sends before its STOP line, records STOP and ends', async () => {
    const r = startReader();
    const fd = openLikeKeepalived(r);
    writeSync(fd, line('MASTER', 150));
    await waitFor(() => readState(r)?.state === 'MASTER', 5000, 'MASTER recorded');
    // keepalived's shutdown: SIGTERM to its scripts, VIPs released, then STOP; the FIFO stays open
    // until its scripts have exited, so STOP must end the reader, EOF cannot.
    r.proc.kill('SIGTERM');
    writeSync(fd, line('BACKUP', 150));
    await waitFor(() => readState(r)?.state === 'BACKUP', 5000, 'BACKUP recorded after SIGTERM');
    writeSync(fd, line('STOP', 150));
    expect(await exitOf(r)).toEqual({ code: 0, signal: null });
    expect(readState(r)).toMatchObject({ state: 'STOP', priority: '150' });
  });

  it('ends on SIGTERM while no writer has opened the FIFO yet', async () => {
    // keepalived starts the reader, then opens the FIFO; its parent-death signal is SIGTERM.
    const r = startReader();
    // Only once the shell is blocked opening the FIFO has it run everything before that line.
    const wchan = () => readFileSync(`/proc/${r.proc.pid}/wchan`, 'utf8');
    await waitFor(() => wchan() === 'wait_for_partner', 5000, 'the reader blocked opening the FIFO (/proc/PID/wchan)');
    r.proc.kill('SIGTERM');
    expect(await exitOf(r)).toEqual({ code: null, signal: 'SIGTERM' });
    expect(readState(r)).toBeUndefined();
  });
});
