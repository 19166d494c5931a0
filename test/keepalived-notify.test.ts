/**
 * deploy/keepalived/stickmesh-notify.sh as keepalived runs it (vrrp_notify_fifo_script): one
 * reader for the whole life of keepalived, transitions arriving as lines on a FIFO. Needs mkfifo
 * and sh (coreutils); fails, does not skip, without them.
 */
import { describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, writeSync, closeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../deploy/keepalived/stickmesh-notify.sh', import.meta.url));

describe('keepalived notify reader', () => {
  it('records transitions in the order keepalived wrote them, however close together', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sm-notify-'));
    try {
      const fifo = path.join(dir, 'vrrp.fifo');
      const state = path.join(dir, 'run', 'vrrp-state');
      execFileSync('mkfifo', [fifo]);
      const reader = spawn('sh', [SCRIPT, state, fifo], { stdio: 'ignore', env: { PATH: process.env.PATH } });
      const exited = new Promise<number | null>((resolve) => reader.once('exit', (code) => resolve(code)));
      const fd = openSync(fifo, 'w');
      // 200 transitions in one burst, as a flapping node would produce; the last one must win.
      const states = ['FAULT', 'BACKUP', 'MASTER', 'BACKUP'];
      let burst = '';
      for (let i = 0; i < 200; i++) burst += `INSTANCE "stickmesh" ${states[i % 4]} ${i}\n`;
      burst += 'GROUP "other" MASTER 1\n'; // not an instance line: ignored
      writeSync(fd, burst);
      closeSync(fd); // keepalived exiting: the reader sees EOF and ends
      expect(await exited).toBe(0);
      const [st, prio, at] = readFileSync(state, 'utf8').trim().split(' ');
      expect(st).toBe('BACKUP');
      expect(prio).toBe('199');
      expect(Math.abs(Number(at) * 1000 - Date.now())).toBeLessThan(60000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
