import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LOG_CHUNK_BYTES, LogSink, createLogger, writeRawInfo } from './log.js';
import { waitFor } from '../../../test/helpers/wait.js';

const dirs: string[] = [];
const procs: ChildProcess[] = [];
const fds: number[] = [];
afterEach(() => {
  vi.restoreAllMocks();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  for (const p of procs.splice(0)) p.kill('SIGKILL');
  for (const fd of fds.splice(0)) fs.closeSync(fd);
});

function tmpFile(): { file: string; fd: number } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stickmesh-log-'));
  dirs.push(dir);
  const file = path.join(dir, 'out.log');
  return { file, fd: fs.openSync(file, 'w') };
}

const line = (i: number): string => `{"n":${i},"pad":"${'x'.repeat(90)}"}\n`;

describe('LogSink', () => {
  it('writes every line, in order, in a few writes instead of one per line', async () => {
    const { file, fd } = tmpFile();
    const writev = vi.spyOn(fs, 'writevSync'); // a regular file is written with blocking writes
    const sink = new LogSink(fd);
    let all = '';
    for (let i = 0; i < 5000; i++) {
      sink.write(line(i));
      all += line(i);
    }
    await sink.flushed(5000);
    expect(fs.readFileSync(file, 'utf8')).toBe(all);
    // ~500 kB in 64 KiB chunks: all gathered in one turn, so one writev (or a few after partial writes).
    expect(writev.mock.calls.length).toBeGreaterThan(0);
    expect(writev.mock.calls.length).toBeLessThan(10);
    expect(sink.heldBytes).toBe(0);
    expect(sink.dropped).toBe(0);
  });

  it('writes a line larger than a chunk whole, between its neighbours', async () => {
    const { file, fd } = tmpFile();
    const sink = new LogSink(fd);
    const big = `{"big":"${'é'.repeat(LOG_CHUNK_BYTES)}"}\n`;
    sink.write(line(1));
    sink.write(big);
    sink.write(line(2));
    await sink.flushed(5000);
    expect(fs.readFileSync(file, 'utf8')).toBe(line(1) + big + line(2));
  });

  it('writes a quiet trickle of lines within the flush interval', async () => {
    const { file, fd } = tmpFile();
    const sink = new LogSink(fd);
    sink.write(line(7));
    await waitFor(() => fs.readFileSync(file, 'utf8') === line(7), 2000, 'the lone line written');
  });

  it('counts every line after the fd failed for good as dropped, and keeps taking lines', async () => {
    const { fd } = tmpFile();
    fs.closeSync(fd);
    const sink = new LogSink(fd);
    for (let i = 0; i < 10; i++) sink.write(line(i));
    await sink.flushed(2000);
    expect(sink.dropped).toBe(10);
    sink.write(line(11));
    expect(sink.dropped).toBe(11);
    expect(sink.heldBytes).toBe(0);
  });

  it('on a pipe nobody reads: holds at most the bound, drops and counts the rest, then writes the survivors in order and reports the drop once', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stickmesh-log-'));
    dirs.push(dir);
    const outFile = path.join(dir, 'read.log');
    const fifo = path.join(dir, 'fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    // Read-write so the open does not wait for a reader; non-blocking, as a pipe stdout can be.
    const fd = fs.openSync(fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
    fds.push(fd);
    // A reader that reads nothing until SIGUSR2.
    const reader = spawn(
      process.execPath,
      ['-e', `process.on('SIGUSR2', () => require('fs').createReadStream(${JSON.stringify(fifo)}).pipe(require('fs').createWriteStream(${JSON.stringify(outFile)}))); process.stdout.write('ready'); setInterval(() => {}, 1000)`],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    procs.push(reader);
    await new Promise((r) => reader.stdout!.once('data', r));
    const reports: number[] = [];
    const maxBytes = 4 * LOG_CHUNK_BYTES;
    const sink = new LogSink(fd, { maxBytes, onDropped: (n) => reports.push(n) });
    const total = 20000; // 2 MB: far more than the pipe (64 KiB) and the bound take
    let maxHeld = 0;
    for (let i = 0; i < total; i++) {
      sink.write(line(i));
      if (i % 100 === 0) {
        maxHeld = Math.max(maxHeld, sink.heldBytes);
        await new Promise((r) => setImmediate(r)); // let writes start, as a serving node would
      }
    }
    maxHeld = Math.max(maxHeld, sink.heldBytes);
    expect(maxHeld).toBeLessThanOrEqual(maxBytes);
    expect(sink.dropped).toBeGreaterThan(total / 2);
    expect(reports).toEqual([]); // stdout has taken nothing more yet
    reader.kill('SIGUSR2');
    await sink.flushed(10000);
    const kept = total - sink.dropped;
    const readLines = (): number => (fs.existsSync(outFile) ? fs.readFileSync(outFile, 'utf8').split('\n').length - 1 : 0);
    await waitFor(() => readLines() === kept, 10000, 'the reader got every kept line');
    const got = fs.readFileSync(outFile, 'utf8').split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { n: number }).n);
    // In order, no duplicates: the first lines (before the bound) are all there.
    for (let i = 1; i < got.length; i++) expect(got[i]).toBeGreaterThan(got[i - 1]!);
    expect(got[0]).toBe(0);
    expect(reports).toEqual([sink.dropped]);
  });
});

describe('LogSink between threads (nbthread)', () => {
  it("a thread's sink posts whole buffers (transferred), the main thread's sink writes them in order with its own lines; flushed waits for the acks", async () => {
    const { file, fd } = tmpFile();
    const main = new LogSink(fd);
    const posted: Array<{ buf: ArrayBuffer; len: number; lines: number }> = [];
    const thread = new LogSink(-1, { post: (buf, len, lines) => posted.push({ buf, len, lines }) });
    let expected = line(-1);
    main.write(line(-1));
    for (let i = 0; i < 2000; i++) {
      thread.write(line(i));
      expected += line(i);
    }
    let flushed = false;
    const done = thread.flushed(5000).then(() => (flushed = true));
    expect(posted.length).toBeGreaterThan(1); // ~200 kB: several 64 KiB buffers
    for (const p of posted) expect(p.buf.byteLength).toBeGreaterThanOrEqual(p.len);
    // Deliver as the main thread does (threads.ts): write, then ack each buffer.
    await new Promise((r) => setImmediate(r));
    expect(flushed).toBe(false); // nothing acknowledged yet
    for (const p of posted.splice(0)) {
      main.writeChunk(Buffer.from(p.buf, 0, p.len), p.len, p.lines);
      thread.acked(1);
    }
    await done;
    await main.flushed(5000);
    expect(fs.readFileSync(file, 'utf8')).toBe(expected);
    expect(thread.heldBytes).toBe(0);
  });

  it("holds one batch on its way to the main thread at a time, and counts it against the thread's bound: past it lines are dropped and counted", () => {
    const posted: ArrayBuffer[] = [];
    const chunkBytes = 4096;
    const thread = new LogSink(-1, { chunkBytes, maxBytes: 4 * chunkBytes, post: (buf) => posted.push(buf) });
    let i = 0;
    while (thread.dropped === 0 && i < 10_000) {
      thread.write(line(i++));
      if (i % 10 === 0) thread.flush(); // as the sink's own timer would
    }
    expect(thread.dropped).toBeGreaterThan(0);
    expect(posted).toHaveLength(1); // never acknowledged: nothing more left
    expect(thread.heldBytes).toBeLessThanOrEqual(4 * chunkBytes);
    const dropped = thread.dropped;
    thread.acked(1); // the main thread took it: what gathered goes now
    expect(posted.length).toBeGreaterThan(1);
    thread.write(line(0));
    expect(thread.dropped).toBe(dropped);
  });

  it("drops (and counts) a thread's buffer the main thread's sink has no room for", () => {
    const main = new LogSink(tmpFile().fd, { chunkBytes: 4096, maxBytes: 2 * 4096 });
    // No turn passes, so nothing is written: the sink fills up.
    main.writeChunk(Buffer.from(line(1)), line(1).length, 1);
    main.writeChunk(Buffer.from(line(2)), line(2).length, 1);
    main.writeChunk(Buffer.from(line(3)), line(3).length, 1);
    expect(main.dropped).toBeGreaterThan(0);
  });
});

describe('createLogger', () => {
  it('writes pino JSON lines with level, ISO time and node, all of them, in order, once flush resolves', async () => {
    const { file, fd } = tmpFile();
    const { logger, flush, dropped } = createLogger({ level: 'info', node: 'n1', fd });
    for (let i = 0; i < 500; i++) logger.info({ i }, 'request');
    logger.debug('hidden');
    await flush();
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(500);
    expect(lines.map((l) => l.i)).toEqual([...Array(500).keys()]);
    expect(lines[0]).toMatchObject({ level: 'info', node: 'n1', msg: 'request' });
    expect(new Date(lines[499].time).toISOString()).toBe(lines[499].time);
    expect(dropped()).toBe(0);
  });

  it('writes "node" once per line, also when a call site passes its own node field', async () => {
    const { file, fd } = tmpFile();
    const { logger, flush } = createLogger({ level: 'info', node: 'lb1', fd });
    logger.info({ port: 10000 }, 'plain');
    logger.info({ node: 'lb1', port: 10000 }, 'with node');
    logger.warn({ node: 'other' }, 'other node');
    await flush();
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(3);
    for (const line of lines) {
      expect(line.match(/"node":/g)).toHaveLength(1);
      expect(JSON.parse(line).node).toBe('lb1');
    }
  });
});

describe('writeRawInfo', () => {
  const obj = { a: 'x"y\\z', b: 3, c: true, d: 'é\u0001' };
  const fields = `,"a":${JSON.stringify(obj.a)},"b":3,"c":true,"d":${JSON.stringify(obj.d)}`;

  function capture(make: (dest: Writable) => pino.Logger): { logger: pino.Logger; out: string[] } {
    const out: string[] = [];
    const dest = new Writable({
      write(chunk: Buffer, _e, cb) {
        out.push(chunk.toString());
        cb();
      },
    });
    return { logger: make(dest), out };
  }

  it("writes what pino's logger.info(obj, msg) writes, byte for byte, for a plain pino logger and a node's logger", async () => {
    const { file, fd } = tmpFile();
    const node = createLogger({ level: 'info', node: 'n1', fd });
    expect(writeRawInfo(node.logger, fields, ',"msg":"request"', Object.keys(obj))).toBe(true);
    node.logger.info(obj, 'request');
    await node.flush();
    const [raw, viaPino] = fs.readFileSync(file, 'utf8').split('\n');
    expect(raw).toBe(viaPino);
    expect(JSON.parse(raw!)).toMatchObject({ ...obj, node: 'n1', level: 'info', msg: 'request' });

    const plain = capture((d) => pino({ level: 'info', timestamp: () => ',"time":1' }, d));
    expect(writeRawInfo(plain.logger, fields, ',"msg":"request"', Object.keys(obj))).toBe(true);
    plain.logger.info(obj, 'request');
    await waitFor(() => plain.out.length === 2, 2000, 'both lines');
    expect(plain.out[0]).toBe(plain.out[1]);
  });

  it('declines (writes nothing) for a logger whose options change the output', () => {
    const withSerializer = capture((d) => pino({ serializers: { b: (v: number) => v * 2 } }, d));
    expect(writeRawInfo(withSerializer.logger, fields, ',"msg":"request"', Object.keys(obj))).toBe(false);
    const withMixin = capture((d) => pino({ mixin: () => ({ m: 1 }) }, d));
    expect(writeRawInfo(withMixin.logger, fields, ',"msg":"request"', Object.keys(obj))).toBe(false);
    const withRedact = capture((d) => pino({ redact: ['a'] }, d));
    expect(writeRawInfo(withRedact.logger, fields, ',"msg":"request"', Object.keys(obj))).toBe(false);
    expect([...withSerializer.out, ...withMixin.out, ...withRedact.out]).toEqual([]);
  });
});
