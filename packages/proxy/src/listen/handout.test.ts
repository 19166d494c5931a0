import net from 'node:net';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { bindOn, type Frontend } from './bind.js';
import { Listener } from './listener.js';

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Connects, reads until the server closes, answers what it sent. */
function fetchText(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let text = '';
    s.on('data', (d: Buffer) => (text += d.toString()));
    s.on('error', reject);
    s.on('close', () => resolve(text));
  });
}

function answering(name: string, seen: string[]): Frontend {
  return {
    onConnection: (socket: net.Socket) => {
      seen.push(name);
      socket.end(name);
    },
  };
}

describe('handing a listening socket out to threads (nbthread)', () => {
  it("gives each thread maxAccept descriptors and stops this thread's own accepting; a worker thread serves on its descriptors", async () => {
    const seen: string[] = [];
    const main = await bindOn(answering('main', seen), { host: '127.0.0.1', port: 0, loc: { file: 't.cfg', line: 1 } });
    cleanups.push(() => main.close());
    const per = await main.handOut(2, 3);
    expect(per.map((fds) => fds.length)).toEqual([3, 3]);
    expect(new Set(per.flat()).size).toBe(6);
    expect(main.descriptors).toBe(0);
    // Thread 1: a real worker thread listening on its descriptors (it owns and closes them).
    const worker = new Worker(
      `const net = require('node:net'); const { workerData, parentPort } = require('node:worker_threads');
       let n = 0;
       for (const fd of workerData.fds) net.createServer((s) => s.end('worker')).listen({ fd }, () => { if (++n === workerData.fds.length) parentPort.postMessage('ready'); });`,
      { eval: true, workerData: { fds: per[0] } },
    );
    cleanups.push(async () => void (await worker.terminate()));
    await new Promise((r) => worker.once('message', r));
    // Thread 2: this thread, through Listener.fromFds.
    const l2 = await Listener.fromFds(main.host, main.port, per[1]!, answering('thread2', seen).onConnection);
    cleanups.push(() => l2.close());
    expect(l2.descriptors).toBe(3);
    const answers = await Promise.all(Array.from({ length: 60 }, () => fetchText(main.port)));
    expect(answers.every((a) => a === 'worker' || a === 'thread2')).toBe(true);
    expect(answers).toContain('worker');
    expect(seen).not.toContain('main');
  });

  it('refuses to listen on no descriptor, and names a bad one', async () => {
    await expect(Listener.fromFds('127.0.0.1', 1, [], () => {})).rejects.toThrow(/no descriptor/);
    await expect(Listener.fromFds('127.0.0.1', 1, [987654], () => {})).rejects.toThrow();
  });
});
