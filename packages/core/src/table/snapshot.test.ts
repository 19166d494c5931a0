import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { StickTableConfig } from '../config/model.js';
import {
  SNAPSHOT_FILE,
  crc32,
  decodeSnapshot,
  encodeSnapshot,
  readSnapshotFile,
  restoreSnapshot,
  writeSnapshotFile,
} from './snapshot.js';
import { StickTable } from './stick-table.js';

function cfg(id: string, over: Partial<StickTableConfig> = {}): StickTableConfig {
  return { id, name: id, type: 'ip', keyLen: 32, size: 1000, expire: 0, store: [], srvkey: 'name', loc: { file: 't', line: 1 }, ...over };
}

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe('snapshot', () => {
  it('crc32 matches the standard check value', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
  });

  it('round-trips tables with absolute expiry; expired entries are dropped on restore', () => {
    let t = 100_000;
    const a = new StickTable(cfg('p/a', { expire: 10_000, store: ['conn_cnt'] }), { node: 'n1', now: () => t });
    const b = new StickTable(cfg('p/b', { type: 'string', keyLen: 8 }), { node: 'n1', now: () => t });
    for (let i = 0; i < 50; i++) a.setLocal(`10.1.0.${i}`, `s${i % 4}`);
    a.applyRemote({ key: '2001:db8::9', server: 'é-server', ttl: 500, wall: 99_000, counter: 3, node: 'n2', connCnt: 7, httpReqCnt: 0 });
    b.setLocal('héllo wrld', 'x');
    const buf = encodeSnapshot([a, b]);
    t += 1000;
    const dec = decodeSnapshot(buf, t);
    expect(dec.map((d) => d.id)).toEqual(['p/a', 'p/b']);
    expect(dec[0]!.updates.length).toBe(50); // the 500 ms remote entry has expired
    expect(dec[0]!.updates.find((u) => u.key === '10.1.0.3')).toMatchObject({ server: 's3', ttl: 9000, connCnt: 0, node: 'n1' });
    expect(dec[1]!.updates).toEqual([
      expect.objectContaining({ key: 'héllo w', server: 'x', ttl: 0 }),
    ]);
    const a2 = new StickTable(cfg('p/a', { expire: 10_000, store: ['conn_cnt'] }), { node: 'n1', now: () => t });
    const b2 = new StickTable(cfg('p/b', { type: 'string', keyLen: 8 }), { node: 'n1', now: () => t });
    // A newer version already learned from a peer survives the restore.
    a2.applyRemote({ key: '10.1.0.1', server: 'peer', ttl: 5000, wall: 200_000, counter: 0, node: 'n3', connCnt: 0, httpReqCnt: 0 });
    expect(restoreSnapshot([a2, b2], dec)).toBe(50);
    expect(a2.lookup('10.1.0.1')).toBe('peer');
    expect(a2.get('10.1.0.2')).toMatchObject({ server: 's2', expiresAt: t + 9000 });
    expect(b2.lookup('héllo w')).toBe('x');
    expect(a2.seq).toBe(0); // restored entries are learned, not re-logged
  });

  it('detects corruption anywhere in the file', () => {
    const a = new StickTable(cfg('x'), { node: 'n' });
    for (let i = 0; i < 20; i++) a.setLocal(`1.2.3.${i}`, 's');
    const buf = encodeSnapshot([a]);
    for (const pos of [0, 5, 30, Math.floor(buf.length / 2), buf.length - 1]) {
      const bad = Buffer.from(buf);
      bad[pos]! ^= 0x40;
      expect(() => decodeSnapshot(bad), `byte ${pos}`).toThrow(expect.objectContaining({ code: 'SM_SNAPSHOT_CORRUPT' }));
    }
    expect(() => decodeSnapshot(buf.subarray(0, buf.length - 10))).toThrow(expect.objectContaining({ code: 'SM_SNAPSHOT_CORRUPT' }));
    expect(() => decodeSnapshot(Buffer.alloc(3))).toThrow(expect.objectContaining({ code: 'SM_SNAPSHOT_CORRUPT' }));
  });

  it('writes atomically and reads back; a corrupt file is reported, a missing one is empty', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sm-snap-'));
    dirs.push(dir);
    expect(await readSnapshotFile(dir)).toEqual([]);
    const a = new StickTable(cfg('x', { expire: 60_000 }), { node: 'n' });
    a.setLocal('::1', 's');
    await writeSnapshotFile(join(dir, 'sub'), [a]);
    await writeSnapshotFile(join(dir, 'sub'), [a]);
    expect(await readdir(join(dir, 'sub'))).toEqual([SNAPSHOT_FILE]); // no temp files left
    const got = await readSnapshotFile(join(dir, 'sub'));
    expect(got[0]!.updates[0]).toMatchObject({ key: '::1', server: 's' });
    const file = join(dir, 'sub', SNAPSHOT_FILE);
    const raw = await readFile(file);
    raw[raw.length - 6]! ^= 1;
    await writeFile(file, raw);
    await expect(readSnapshotFile(join(dir, 'sub'))).rejects.toMatchObject({ code: 'SM_SNAPSHOT_CORRUPT' });
  });
});
