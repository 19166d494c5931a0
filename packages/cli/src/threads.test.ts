import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '@stickmesh/core';
import { ThreadPool, type ThreadPoolOptions } from './threads.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'sm-threads-'));
const config = parseConfigText('global\n    nbthread 2\n', 'x.cfg', 'haproxy', {}).config;

/** A stand-in for thread-main.js: `body` runs with `port` (parentPort) and `init` (workerData). */
function entry(name: string, body: string): URL {
  const file = path.join(dir, `${name}.mjs`);
  writeFileSync(file, `import { parentPort as port, workerData as init } from 'node:worker_threads';\n${body}\n`);
  return pathToFileURL(file);
}

const pools: ThreadPool[] = [];
afterEach(async () => {
  for (const p of pools.splice(0)) await p.terminate();
});

function options(e: URL, over: Partial<ThreadPoolOptions> = {}): ThreadPoolOptions {
  return { count: 2, node: 'n1', config, binds: [{}, {}], tables: {}, writeLog: () => {}, onNotify: () => {}, onDeath: () => {}, entry: e, ...over };
}

const READY = `port.postMessage({ t: 'sm:ready' });`;

describe('ThreadPool', () => {
  it('starts every thread with its id and descriptors, and resolves once each is ready', async () => {
    const ids: number[] = [];
    const e = entry('ready', `port.postMessage({ t: 'sm:notify', id: init.id, binds: init.binds }); ${READY}`);
    const pool = await ThreadPool.start(options(e, { binds: [{ a: { host: 'h', port: 1, fds: [7] } }, {}], onNotify: () => ids.push(0) }));
    pools.push(pool);
    expect(pool.size).toBe(2);
    expect(ids).toHaveLength(2);
  });

  it('rejects the start when a thread fails before it is ready, and ends the others', async () => {
    const e = entry('fails', `if (init.id === 2) throw new Error('cannot listen'); ${READY}`);
    await expect(ThreadPool.start(options(e))).rejects.toThrow(/thread 2: .*cannot listen/);
  });

  it('reports a thread that dies after the start once, with its id and why', async () => {
    const deaths: Array<[number, string]> = [];
    const e = entry('dies', `${READY} port.on('message', (m) => { if (m.t === 'sm:open' && init.id === 2) setTimeout(() => { throw new Error('boom'); }, 10); });`);
    const pool = await ThreadPool.start(options(e, { onDeath: (id, why) => deaths.push([id, why]) }));
    pools.push(pool);
    pool.open();
    const deadline = Date.now() + 5000;
    while (deaths.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 100)); // its 'exit' follows the 'error': still one report
    expect(deaths).toHaveLength(1);
    expect(deaths[0]![0]).toBe(2);
    expect(deaths[0]![1]).toMatch(/boom/);
  });

  it("writes a thread's transferred log buffer through main's writer and acknowledges it; a drain waits for sm:drained and is no death", async () => {
    const got: string[] = [];
    const deaths: number[] = [];
    const e = entry(
      'logs',
      `${READY}
       port.on('message', (m) => {
         if (m.t === 'sm:drain') {
           const buf = new TextEncoder().encode('line ' + init.id + '\\n').buffer;
           port.postMessage({ t: 'sm:log', buf, len: buf.byteLength, lines: 1 }, [buf]);
         }
         if (m.t === 'sm:logged') port.postMessage({ t: 'sm:drained' });
       });`,
    );
    const pool = await ThreadPool.start(options(e, { writeLog: (b, len) => got.push(b.subarray(0, len).toString()), onDeath: (id) => deaths.push(id) }));
    await pool.drain(1000);
    expect(got.sort()).toEqual(['line 1\n', 'line 2\n']);
    expect(deaths).toEqual([]);
  });
});
