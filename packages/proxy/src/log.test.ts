import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { LOG_BATCH_CHARS, LineBatcher, createLogger } from './log.js';
import { waitFor } from '../../../test/helpers/wait.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tmpFile(): { file: string; fd: number } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stickmesh-log-'));
  dirs.push(dir);
  const file = path.join(dir, 'out.log');
  return { file, fd: fs.openSync(file, 'w') };
}

describe('LineBatcher', () => {
  it('hands lines over in batches, in order, and a partial batch on flush', () => {
    const writes: string[] = [];
    const dest = { write: (s: string) => (writes.push(s), true), flush: () => {}, flushSync: () => {}, on: () => dest };
    const b = new LineBatcher(dest);
    const line = (i: number): string => `{"n":${i},"pad":"${'x'.repeat(90)}"}\n`;
    let all = '';
    for (let i = 0; i < 100; i++) {
      b.write(line(i));
      all += line(i);
    }
    // About 100 bytes per line: one hand-over per ~LOG_BATCH_CHARS, not one per line.
    expect(writes.length).toBe(Math.floor(all.length / LOG_BATCH_CHARS));
    expect(writes.length).toBeLessThan(5);
    b.flush();
    expect(writes.join('')).toBe(all);
  });

  it('counts the lines a full destination drops', async () => {
    const { file, fd } = tmpFile();
    const dest = pino.destination({ dest: fd, sync: false, maxLength: 300 });
    const b = new LineBatcher(dest as unknown as ConstructorParameters<typeof LineBatcher>[0]);
    const batch = `${'{"a":1}\n'.repeat(LOG_BATCH_CHARS / 8)}`;
    // The first batch exceeds maxLength on its own: sonic-boom drops it whole.
    b.write(batch);
    expect(b.dropped).toBe(LOG_BATCH_CHARS / 8);
    // Lines that fit still go out.
    b.write('{"ok":1}\n');
    b.flushSync();
    await waitFor(() => fs.readFileSync(file, 'utf8') === '{"ok":1}\n', 2000);
    dest.end();
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
});

describe('createLogger with a node name', () => {
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
