/**
 * Stick table snapshots: a binary file holding every live entry of some tables, so a restarted node
 * serves its old affinities before its peers have resynced it.
 *
 * Format (little endian):
 *   header: magic "SMST" | u16 format version (1) | u16 reserved (0) | f64 written-at ms | u32 table count
 *   per table: str id | u32 name count | names (str each) | u32 entry count |
 *     entries: str key | u32 server name index | u32 node name index | f64 wall | u16 counter |
 *              f64 absolute expiry ms (0 = never) | u32 conn_cnt | u32 http_req_cnt
 *   version 2 only: counters section (this node's own counter shares, CounterTable wire layout):
 *     u32 table count | per table: str id | str schema | u16 width | u32 share count |
 *       shares: str key | f64 absolute expiry ms (0 = never) | width x f64
 *   trailer: u32 CRC-32 (IEEE) of every byte before it
 *   str = u16 byte length + UTF-8 bytes
 * The CRC is checked before anything is decoded, so a torn or corrupt file is rejected whole.
 *
 * Compatibility: a file is written as version 1 (readable by older nodes) unless some table holds
 * counter shares; the reader takes both. An older node refuses a version 2 file as corrupt and
 * starts without it (its peers resync it), as it would without a snapshot. `conn_cnt`/`http_req_cnt`
 * in entries are always 0 now (the counters are in the counters section).
 */
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { StickmeshError } from '../errors.js';
import { CounterTable } from '../counters/counter-table.js';
import type { ShareUpdate } from '../counters/types.js';
import type { StickTable } from './stick-table.js';
import type { TableUpdate } from './types.js';

export const SNAPSHOT_MAGIC = 'SMST';
/** Newest format version written (1 when no table has counter shares); the reader takes 1 and 2. */
export const SNAPSHOT_VERSION = 2;
/** File name of the snapshot inside the data directory before snapshots were per node (still restored from). */
export const SNAPSHOT_FILE = 'stick-tables.snap';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (IEEE 802.3, as zlib/PNG) of buf[start, end). */
export function crc32(buf: Uint8Array, start = 0, end = buf.length): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ buf[i]!) & 255]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

class Writer {
  buf = Buffer.allocUnsafe(1 << 16);
  pos = 0;

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
  u16(v: number): void {
    this.ensure(2);
    this.pos = this.buf.writeUInt16LE(v, this.pos);
  }
  u32(v: number): void {
    this.ensure(4);
    this.pos = this.buf.writeUInt32LE(v >>> 0, this.pos);
  }
  f64(v: number): void {
    this.ensure(8);
    this.pos = this.buf.writeDoubleLE(v, this.pos);
  }
  str(s: string): void {
    const n = Buffer.byteLength(s, 'utf8');
    if (n > 65535) throw new StickmeshError('SM_SNAPSHOT_ENCODE', `snapshot: string of ${n} bytes is too long`);
    this.u16(n);
    this.ensure(n);
    this.pos += this.buf.write(s, this.pos, 'utf8');
  }
  raw(s: string): void {
    this.ensure(s.length);
    this.pos += this.buf.write(s, this.pos, 'latin1');
  }
}

function corrupt(why: string): StickmeshError {
  return new StickmeshError('SM_SNAPSHOT_CORRUPT', `stick table snapshot is corrupt: ${why}`);
}

class Reader {
  pos = 0;
  constructor(
    private readonly buf: Buffer,
    private readonly end: number,
  ) {}
  private need(n: number): void {
    if (this.pos + n > this.end) throw corrupt(`truncated at byte ${this.pos}`);
  }
  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16LE(this.pos);
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  f64(): number {
    this.need(8);
    const v = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return v;
  }
  str(): string {
    const n = this.u16();
    this.need(n);
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
}

/** Serialises every live entry of `tables` with absolute expiry times (each table's own clock). */
export function encodeSnapshot(tables: StickTable[]): Buffer {
  const counted: Array<{ id: string; c: CounterTable; shares: ShareUpdate[] }> = [];
  for (const t of tables) {
    if (!(t.counters instanceof CounterTable)) continue;
    const shares: ShareUpdate[] = [];
    let cursor = 0;
    while (cursor !== -1) cursor = t.counters.exportOwn(cursor, 4096, shares);
    if (shares.length > 0) counted.push({ id: t.cfg.id, c: t.counters, shares });
  }
  const w = new Writer();
  w.raw(SNAPSHOT_MAGIC);
  w.u16(counted.length > 0 ? 2 : 1);
  w.u16(0);
  w.f64(Date.now());
  w.u32(tables.length);
  const batch: TableUpdate[] = [];
  for (const t of tables) {
    const all: TableUpdate[] = [];
    let cursor = 0;
    do {
      batch.length = 0;
      cursor = t.exportBatch(cursor, 4096, batch);
      for (const u of batch) all.push(u);
    } while (cursor >= 0);
    const now = t.now();
    const names = new Map<string, number>();
    const nameIdx = (n: string): number => {
      let i = names.get(n);
      if (i === undefined) {
        i = names.size;
        names.set(n, i);
      }
      return i;
    };
    for (const u of all) {
      nameIdx(u.server);
      nameIdx(u.node);
    }
    w.str(t.cfg.id);
    w.u32(names.size);
    for (const n of names.keys()) w.str(n);
    w.u32(all.length);
    for (const u of all) {
      w.str(u.key);
      w.u32(names.get(u.server)!);
      w.u32(names.get(u.node)!);
      w.f64(u.wall);
      w.u16(u.counter);
      w.f64(u.ttl === 0 ? 0 : now + u.ttl);
      w.u32(u.connCnt);
      w.u32(u.httpReqCnt);
    }
  }
  if (counted.length > 0) {
    w.u32(counted.length);
    for (const { id, c, shares } of counted) {
      w.str(id);
      w.str(c.schema);
      w.u16(c.width);
      w.u32(shares.length);
      for (const u of shares) {
        w.str(u.key);
        w.f64(c.expiryOf(u.key));
        for (const x of u.v) w.f64(x);
      }
    }
  }
  w.u32(crc32(w.buf, 0, w.pos));
  return Buffer.from(w.buf.subarray(0, w.pos));
}

export interface SnapshotTable {
  id: string;
  updates: TableUpdate[];
  /** This node's counter shares when the snapshot was written (version 2), expired keys dropped. */
  counters?: { schema: string; shares: ShareUpdate[] };
}

/** What `walkSnapshot` reports, in file order; every method optional. */
interface SnapshotSink {
  table?(id: string): void;
  update?(tableId: string, u: TableUpdate): void;
  /** A table's counter section starts (its shares follow). */
  counters?(tableId: string, schema: string): void;
  share?(tableId: string, u: ShareUpdate): void;
}

/**
 * Reads a snapshot from end to end and reports what it holds to `sink`; entries already expired
 * (`ttl` = stored expiry - `now`) are left out. Throws StickmeshError SM_SNAPSHOT_CORRUPT if the
 * magic, version, CRC or structure is wrong: the CRC before anything is reported, a structural
 * problem where it is met (so a caller that must not act on a corrupt file walks it once without
 * a sink first, as `restoreSnapshotBuffer` does).
 */
function walkSnapshot(buf: Buffer, now: number, sink: SnapshotSink): void {
  if (buf.length < 4 + 2 + 2 + 8 + 4 + 4) throw corrupt(`file too short (${buf.length} bytes)`);
  if (buf.toString('latin1', 0, 4) !== SNAPSHOT_MAGIC) throw corrupt('bad magic');
  const end = buf.length - 4;
  const want = buf.readUInt32LE(end);
  const got = crc32(buf, 0, end);
  if (want !== got) throw corrupt(`CRC mismatch (stored ${want.toString(16)}, computed ${got.toString(16)})`);
  const r = new Reader(buf, end);
  r.pos = 4;
  const version = r.u16();
  if (version !== 1 && version !== 2) throw corrupt(`unsupported format version ${version}`);
  r.u16();
  r.f64();
  const tableCount = r.u32();
  for (let t = 0; t < tableCount; t++) {
    const id = r.str();
    const nameCount = r.u32();
    const names: string[] = [];
    for (let i = 0; i < nameCount; i++) names.push(r.str());
    const count = r.u32();
    sink.table?.(id);
    for (let i = 0; i < count; i++) {
      const key = r.str();
      const server = names[r.u32()];
      const node = names[r.u32()];
      const wall = r.f64();
      const counter = r.u16();
      const expiresAt = r.f64();
      const connCnt = r.u32();
      const httpReqCnt = r.u32();
      if (server === undefined || node === undefined) throw corrupt(`name index out of range in table '${id}'`);
      if (expiresAt !== 0 && expiresAt <= now) continue;
      sink.update?.(id, { key, server, ttl: expiresAt === 0 ? 0 : expiresAt - now, wall, counter, node, connCnt, httpReqCnt });
    }
  }
  if (version === 2) {
    const n = r.u32();
    for (let t = 0; t < n; t++) {
      const id = r.str();
      const schema = r.str();
      const width = r.u16();
      const count = r.u32();
      sink.counters?.(id, schema);
      for (let i = 0; i < count; i++) {
        const key = r.str();
        const expiresAt = r.f64();
        const v: number[] = [];
        for (let k = 0; k < width; k++) v.push(r.f64());
        if (expiresAt !== 0 && expiresAt <= now) continue;
        sink.share?.(id, { key, v });
      }
    }
  }
  if (r.pos !== end) throw corrupt(`${end - r.pos} unexpected bytes after the last table`);
}

/**
 * Decodes a snapshot; `ttl` = stored expiry - `now`, entries already expired are dropped.
 * Throws StickmeshError SM_SNAPSHOT_CORRUPT (checked before any entry is returned) if the magic,
 * version, CRC or structure is wrong.
 */
export function decodeSnapshot(buf: Buffer, now: number = Date.now()): SnapshotTable[] {
  const out: SnapshotTable[] = [];
  let cur: SnapshotTable | undefined;
  let shares: ShareUpdate[] = [];
  walkSnapshot(buf, now, {
    table: (id) => void out.push((cur = { id, updates: [] })),
    update: (_id, u) => void cur!.updates.push(u),
    counters: (id, schema) => {
      let table = out.find((x) => x.id === id);
      if (!table) out.push((table = { id, updates: [] }));
      shares = [];
      table.counters = { schema, shares };
    },
    share: (_id, u) => void shares.push(u),
  });
  return out;
}

/**
 * Restores a snapshot straight from its bytes into `tables`, as `restoreSnapshot(tables,
 * decodeSnapshot(buf, now))` does, without building the decoded arrays: each entry is applied as
 * it is read and is garbage at once. Building them for a million entries promoted ~150 MB of
 * short-lived objects to V8's old space, which an idle node then kept (no allocation, no major GC):
 * 358 MB of RSS after restoring 1M entries instead of ~210 MB (docs/BENCHMARKS.md#memory).
 * The file is walked twice: nothing is applied from a corrupt one (SM_SNAPSHOT_CORRUPT).
 * `counters: false` leaves the counter shares out. Returns how many tables the file holds (with
 * entries or counters) and how many stick entries were applied.
 */
export function restoreSnapshotBuffer(tables: StickTable[], buf: Buffer, now: number = Date.now(), opts: { counters?: boolean } = {}): { tables: number; applied: number } {
  walkSnapshot(buf, now, {});
  const ids = new Set<string>();
  let applied = 0;
  let target: StickTable | undefined;
  let counterTarget: CounterTable | undefined;
  walkSnapshot(buf, now, {
    table: (id) => {
      ids.add(id);
      target = tables.find((x) => x.cfg.id === id);
    },
    update: (_id, u) => {
      if (target?.applyRemote(u)) applied++;
    },
    counters: (id, schema) => {
      ids.add(id);
      const c = tables.find((x) => x.cfg.id === id)?.counters;
      counterTarget = opts.counters !== false && c instanceof CounterTable && c.schema === schema ? c : undefined;
    },
    share: (_id, u) => counterTarget?.restoreOwn(u),
  });
  return { tables: ids.size, applied };
}

/** `restoreSnapshotBuffer` on `dir/file`: {tables: 0, applied: 0} when there is no such file; other I/O errors propagate. */
export async function restoreSnapshotFile(tables: StickTable[], dir: string, now: number = Date.now(), file: string = SNAPSHOT_FILE, opts: { counters?: boolean } = {}): Promise<{ tables: number; applied: number }> {
  let buf: Buffer;
  try {
    buf = await readFile(join(dir, file));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { tables: 0, applied: 0 };
    throw err;
  }
  return restoreSnapshotBuffer(tables, buf, now, opts);
}

/**
 * Applies decoded snapshot content with `applyRemote`, so newer versions already learned from peers
 * win. Tables are matched by `cfg.id`; unknown ids are ignored. This node's counter shares are
 * restored into tables whose counter schema is unchanged (CounterTable.restoreOwn: gauges at 0);
 * with another schema they are dropped. Returns the number of stick entries applied.
 */
export function restoreSnapshot(tables: StickTable[], snap: SnapshotTable[]): number {
  let applied = 0;
  for (const s of snap) {
    const t = tables.find((x) => x.cfg.id === s.id);
    if (!t) continue;
    for (const u of s.updates) if (t.applyRemote(u)) applied++;
    const c = t.counters;
    if (s.counters && c instanceof CounterTable && c.schema === s.counters.schema) for (const u of s.counters.shares) c.restoreOwn(u);
  }
  return applied;
}

/**
 * The snapshot file of node `node`: several nodes of one host may share a `data-dir`, so each
 * writes its own (the name is percent-encoded, so no name reaches outside the directory).
 */
export function snapshotFileFor(node: string): string {
  return `stick-tables.${encodeURIComponent(node)}.snap`;
}

/** Writes `dir/file` atomically: temp file, fsync, rename, then fsync of the directory. */
export async function writeSnapshotFile(dir: string, tables: StickTable[], file: string = SNAPSHOT_FILE): Promise<void> {
  const data = encodeSnapshot(tables);
  await mkdir(dir, { recursive: true });
  const final = join(dir, file);
  const tmp = `${final}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, final);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  // Persist the rename itself; not supported on every platform, hence best effort.
  try {
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    /* directory fsync unsupported */
  }
}

/**
 * Reads and decodes `dir/file`: [] if there is no snapshot file; throws
 * StickmeshError SM_SNAPSHOT_CORRUPT if it is corrupt; other I/O errors propagate.
 */
export async function readSnapshotFile(dir: string, now: number = Date.now(), file: string = SNAPSHOT_FILE): Promise<SnapshotTable[]> {
  let buf: Buffer;
  try {
    buf = await readFile(join(dir, file));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return decodeSnapshot(buf, now);
}
