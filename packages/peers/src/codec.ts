/**
 * Wire codec: one msgpack map per WebSocket binary frame, discriminated by `t`. `decode` promises to
 * return only fully validated messages (every field type-checked) and to throw `ProtocolError` for
 * anything else, so the session code never sees attacker-shaped data.
 */
import { Packr, Unpackr } from 'msgpackr';
import { MAX_TICKET_KEY_NODE, MAX_TICKET_KEYS, StickmeshError, TICKET_KEY_BYTES, type TicketKeyEntry } from '@stickmesh/core';
import type { ShareUpdate, TableUpdate } from './types.js';
import type { RefusalReason } from './refusals.js';

/** Protocol version carried in hello/auth. */
export const PROTO = 1;
/** WebSocket URL path; the trailing 1 is the protocol major version. */
export const PEERS_PATH = '/stickmesh/peers/1';
export const NONCE_BYTES = 32;
/**
 * Anti-entropy buckets per table (the stick table's DIGEST_BUCKETS) and the size of a `digest`
 * message's `digests` field: per bucket two uint32 lanes, little-endian.
 */
export const AE_BUCKETS = 256;
export const AE_DIGEST_BYTES = AE_BUCKETS * 8;
/** Capability advertised in auth/welcome `caps` by nodes that take part in anti-entropy. */
export const CAP_ANTI_ENTROPY = 'ae';
/**
 * Capability advertised by nodes that understand `c` (counter shares) messages. Shares of a table
 * travel only when both sides advertised it and both gave the same `counters` schema for the table.
 */
export const CAP_COUNTERS = 'ctr';
/**
 * Capability advertised by nodes that share TLS session-ticket keys (`tk` messages): only nodes with
 * a ticket key ring and a non-empty shared secret (the key the messages are sealed with derives from it).
 */
export const CAP_TICKET_KEYS = 'tk';
/** Largest sealed key list of a `tk` (MAX_TICKET_KEYS keys with their fields, plus the tag, fit in far less). */
export const MAX_TK_BOX = 4096;
/** Longest `counters` schema string in a table list. */
export const MAX_COUNTER_SCHEMA = 4096;
/** Most shares in one `c` frame (senders use min(maxBatch, this)). */
export const MAX_SHARES_PER_FRAME = 4096;
/** Most numbers in one share (a table's counter width). */
export const MAX_COUNTER_WIDTH = 1024;
/** Longest key of a share, in characters (a table's canonical key text is far shorter). */
export const MAX_SHARE_KEY = 1024;
/** Bounds on the optional `caps` list: entries and characters per entry. */
const MAX_CAPS = 16;
const MAX_CAP_LEN = 32;

export interface TableSchema {
  id: string;
  type: string;
  keyLen: number;
  /**
   * Optional: the table's replicated counters schema (`ReplicatedCounters.schema`), present only
   * when this node replicates the table's counters. Nodes that predate it ignore the field.
   */
  counters?: string;
}

export interface HelloMsg { t: 'hello'; proto: number; cluster: string; node: string; nonce: Uint8Array }
/**
 * `caps` is optional on the wire (older proto-1 nodes neither send nor read it); decode gives [] when absent.
 * `internal` (optional, likewise): the node's internal tables (ids starting with `#`), listed apart
 * from `tables` so that a node that predates them, which requires identical `tables`, still
 * accepts the session; an internal table is exchanged only when both sides list it. Sent only
 * when non-empty.
 */
export interface AuthMsg {
  t: 'auth'; proto: number; cluster: string; node: string; nonce2: Uint8Array; mac: Uint8Array; tables: TableSchema[]; caps: string[]; internal?: TableSchema[];
}
export interface WelcomeMsg { t: 'welcome'; mac2: Uint8Array; tables: TableSchema[]; caps: string[]; internal?: TableSchema[] }
export interface ResumeMsg { t: 'resume'; table: string; epoch: string; seq: number }
export interface DeltaMsg { t: 'u'; table: string; seq: number; updates: TableUpdate[] }
export interface ResyncMsg { t: 'resync'; table: string; updates: TableUpdate[] }
export interface ResyncDoneMsg { t: 'resync-done'; table: string; epoch: string; seq: number }
export interface AckMsg { t: 'ack'; table: string; seq: number }
/** Anti-entropy, dialer -> acceptor: the dialer's bucket digests (AE_DIGEST_BYTES). */
export interface DigestMsg { t: 'digest'; table: string; digests: Uint8Array }
/** Anti-entropy, acceptor -> dialer: buckets to exchange this round (ascending) and how many differed in all. */
export interface RepairMsg { t: 'repair'; table: string; buckets: number[]; differing: number }
/** Anti-entropy, both ways: the sender's entries in the round's buckets. */
export interface RepairUpdatesMsg { t: 'repair-u'; table: string; updates: TableUpdate[] }
/** Anti-entropy, both ways: the sender has sent all its entries of the round's buckets. */
export interface RepairEndMsg { t: 'repair-end'; table: string }
/**
 * Counter shares, both ways: the sender's own shares of `table` (absolute values). `wall`: the
 * sender's wall ms of the oldest change in a flushed batch (for lag), 0 in the export that follows
 * a session's start.
 */
export interface CounterMsg { t: 'c'; table: string; wall: number; shares: ShareUpdate[] }

/**
 * TLS ticket keys, both ways: the sender's whole key ring, sealed (ticket-box.ts). `seq`: this
 * direction's message number in the session, from 1, always growing (part of the AAD); `iv`: 12
 * bytes; `box`: the sealed `encodeTicketKeyList` bytes with the GCM tag.
 */
export interface TicketKeysMsg { t: 'tk'; seq: number; iv: Uint8Array; box: Uint8Array }

export type Msg =
  | HelloMsg | AuthMsg | WelcomeMsg | ResumeMsg | DeltaMsg | ResyncMsg | ResyncDoneMsg | AckMsg
  | DigestMsg | RepairMsg | RepairUpdatesMsg | RepairEndMsg | CounterMsg | TicketKeysMsg;

/** A frame or message that violates the protocol; `reason` is the stable refusal reason. */
export class ProtocolError extends StickmeshError {
  readonly reason: RefusalReason;
  constructor(reason: RefusalReason, message: string) {
    super('SM_PEERS_PROTOCOL', message);
    this.reason = reason;
  }
}

// Plain maps and arrays only: no records/structures (stateful across frames) and no extension types.
const packr = new Packr({ useRecords: false, moreTypes: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

/** Compact update layout on the wire: [key, server, ttl, wall, counter, node, connCnt, httpReqCnt]. */
export type WireUpdate = [string, string, number, number, number, string, number, number];

export function toWire(u: TableUpdate): WireUpdate {
  return [u.key, u.server, u.ttl, u.wall, u.counter, u.node, u.connCnt, u.httpReqCnt];
}

/** Encodes a message; updates are converted to the compact array layout. */
export function encode(msg: Msg): Buffer {
  if (msg.t === 'u' || msg.t === 'resync' || msg.t === 'repair-u') {
    return packr.pack({ ...msg, updates: msg.updates.map(toWire) });
  }
  if (msg.t === 'c') return encodeShares(msg.table, msg.wall, msg.shares);
  return packr.pack(msg);
}

/** Encodes an update batch straight from `TableUpdate`s (hot path: no intermediate message object). */
export function encodeUpdates(t: 'u' | 'resync' | 'repair-u', table: string, seq: number, updates: TableUpdate[]): Buffer {
  const wire = updates.map(toWire);
  return packr.pack(t === 'u' ? { t, table, seq, updates: wire } : { t, table, updates: wire });
}

/** Encodes a `c` frame: each share as `[key, ...v]`. */
export function encodeShares(table: string, wall: number, shares: readonly ShareUpdate[]): Buffer {
  const wire: unknown[][] = new Array(shares.length);
  for (let i = 0; i < shares.length; i++) {
    const s = shares[i]!;
    wire[i] = [s.key, ...s.v];
  }
  return packr.pack({ t: 'c', table, wall, shares: wire });
}

const bad = (what: string): never => {
  throw new ProtocolError('malformed-frame', what);
};

function str(o: Record<string, unknown>, k: string, max = 1024): string {
  const v = o[k];
  if (typeof v !== 'string' || v.length > max) bad(`field '${k}' must be a string`);
  return v as string;
}

function seqOf(o: Record<string, unknown>, k: string): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) bad(`field '${k}' must be a non-negative integer`);
  return v as number;
}

function bytes(o: Record<string, unknown>, k: string, len: number): Uint8Array {
  const v = o[k];
  if (!(v instanceof Uint8Array) || v.length !== len) bad(`field '${k}' must be ${len} bytes`);
  return v as Uint8Array;
}

/** Internal tables a node may list (`internal`). */
const MAX_INTERNAL_TABLES = 16;

function tables(o: Record<string, unknown>, field: 'tables' | 'internal' = 'tables'): TableSchema[] {
  const v = o[field];
  if (field === 'internal' && v === undefined) return [];
  if (!Array.isArray(v) || v.length > (field === 'tables' ? 4096 : MAX_INTERNAL_TABLES)) return bad(`field '${field}' must be an array`);
  return v.map((x: unknown) => {
    if (x === null || typeof x !== 'object' || Array.isArray(x)) return bad('table schema must be a map');
    const s = x as Record<string, unknown>;
    const out: TableSchema = { id: str(s, 'id'), type: str(s, 'type'), keyLen: seqOf(s, 'keyLen') };
    if (s.counters !== undefined) out.counters = str(s, 'counters', MAX_COUNTER_SCHEMA);
    return out;
  });
}

/** Optional `caps`: absent means none; otherwise at most MAX_CAPS short strings. */
function caps(o: Record<string, unknown>): string[] {
  const v = o.caps;
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.length > MAX_CAPS) return bad("field 'caps' must be a short array");
  return v.map((x: unknown) => (typeof x === 'string' && x.length <= MAX_CAP_LEN ? x : bad("field 'caps' must hold short strings")));
}

/** Bucket list of a `repair`: strictly ascending integers below AE_BUCKETS (so at most AE_BUCKETS of them). */
function bucketList(o: Record<string, unknown>): number[] {
  const v = o.buckets;
  if (!Array.isArray(v) || v.length > AE_BUCKETS) return bad("field 'buckets' must be an array");
  let prev = -1;
  for (const b of v as unknown[]) {
    if (typeof b !== 'number' || !Number.isInteger(b) || b <= prev || b >= AE_BUCKETS) return bad("field 'buckets' must be ascending bucket numbers");
    prev = b;
  }
  return v as number[];
}

/** Packs bucket digests (2 x AE_BUCKETS uint32 lanes) little-endian, whatever the host byte order. */
export function packDigests(d: Uint32Array): Buffer {
  const buf = Buffer.allocUnsafe(d.length * 4);
  for (let i = 0; i < d.length; i++) buf.writeUInt32LE(d[i]!, i * 4);
  return buf;
}

const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

function updates(o: Record<string, unknown>): TableUpdate[] {
  const v = o.updates;
  if (!Array.isArray(v)) return bad("field 'updates' must be an array");
  const out: TableUpdate[] = new Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const a: unknown = v[i];
    if (!Array.isArray(a) || a.length !== 8) return bad('update must be an 8-element array');
    const [key, server, ttl, wall, counter, node, connCnt, httpReqCnt] = a as unknown[];
    if (
      typeof key !== 'string' || typeof server !== 'string' || typeof node !== 'string' ||
      !num(ttl) || ttl < 0 || !num(wall) || !num(counter) || !num(connCnt) || !num(httpReqCnt)
    ) {
      return bad('update has a field of the wrong type');
    }
    out[i] = { key, server, ttl, wall, counter, node, connCnt, httpReqCnt };
  }
  return out;
}

/**
 * Shares of a `c` frame: at most MAX_SHARES_PER_FRAME arrays `[key, ...v]`, key a string of at
 * most MAX_SHARE_KEY characters, v 1..MAX_COUNTER_WIDTH finite numbers, the same count in every
 * share (whether it is the table's width is the session's check).
 */
function shares(o: Record<string, unknown>): ShareUpdate[] {
  const v = o.shares;
  if (!Array.isArray(v) || v.length > MAX_SHARES_PER_FRAME) return bad(`field 'shares' must be an array of at most ${MAX_SHARES_PER_FRAME}`);
  const out: ShareUpdate[] = new Array(v.length);
  let width = -1;
  for (let i = 0; i < v.length; i++) {
    const a: unknown = v[i];
    if (!Array.isArray(a) || a.length < 2 || a.length > MAX_COUNTER_WIDTH + 1) return bad('share must be an array [key, ...values]');
    if (width === -1) width = a.length - 1;
    else if (a.length - 1 !== width) return bad('shares of one frame must have the same width');
    const key: unknown = a[0];
    if (typeof key !== 'string' || key.length > MAX_SHARE_KEY) return bad('share key must be a short string');
    const vals = new Array<number>(width);
    for (let j = 0; j < width; j++) {
      const x: unknown = a[j + 1];
      if (!num(x)) return bad('share values must be finite numbers');
      vals[j] = x;
    }
    out[i] = { key, v: vals };
  }
  return out;
}

/** Wire layout of a key list (the plaintext of a `tk` box): `[[key: bin 48, gen, createdAt, node], ...]`. */
export function encodeTicketKeyList(keys: readonly TicketKeyEntry[]): Buffer {
  return packr.pack(keys.map((k) => [k.key, k.gen, k.createdAt, k.node]));
}

/**
 * Decodes an opened `tk` box: at most MAX_TICKET_KEYS keys, each a 48-byte key, a generation and a
 * creation time that are non-negative safe integers, and a node name of 1..MAX_TICKET_KEY_NODE
 * characters. Throws ProtocolError('malformed-frame') for anything else. (Whether the ring takes a
 * key, by age and name, is the ring's check.)
 */
export function decodeTicketKeyList(buf: Buffer): TicketKeyEntry[] {
  let raw: unknown;
  try {
    raw = unpackr.unpack(buf);
  } catch {
    return bad('ticket key list is not valid msgpack');
  }
  if (!Array.isArray(raw) || raw.length > MAX_TICKET_KEYS) return bad(`ticket key list must be an array of at most ${MAX_TICKET_KEYS}`);
  const out: TicketKeyEntry[] = [];
  for (const e of raw as unknown[]) {
    if (!Array.isArray(e) || e.length !== 4) return bad('ticket key must be [key, gen, createdAt, node]');
    const [key, gen, createdAt, node] = e as unknown[];
    if (!(key instanceof Uint8Array) || key.length !== TICKET_KEY_BYTES) return bad(`ticket key must be ${TICKET_KEY_BYTES} bytes`);
    if (typeof gen !== 'number' || !Number.isSafeInteger(gen) || gen < 0) return bad('ticket key gen must be a non-negative integer');
    if (typeof createdAt !== 'number' || !Number.isSafeInteger(createdAt) || createdAt < 0) return bad('ticket key createdAt must be a non-negative integer');
    if (typeof node !== 'string' || node.length === 0 || node.length > MAX_TICKET_KEY_NODE) return bad('ticket key node must be a short string');
    out.push({ key: Buffer.from(key), gen, createdAt, node });
  }
  return out;
}

/** Decodes and validates one frame. Throws `ProtocolError` ('malformed-frame' / 'unexpected-message'). */
export function decode(buf: Buffer): Msg {
  let raw: unknown;
  try {
    raw = unpackr.unpack(buf);
  } catch {
    return bad('frame is not valid msgpack');
  }
  if (raw === null || typeof raw !== 'object' || Object.getPrototypeOf(raw) !== Object.prototype) return bad('frame is not a msgpack map');
  const o = raw as Record<string, unknown>;
  if (typeof o.t !== 'string') return bad("frame has no string field 't'");
  switch (o.t) {
    case 'hello':
      return { t: 'hello', proto: seqOf(o, 'proto'), cluster: str(o, 'cluster'), node: str(o, 'node'), nonce: bytes(o, 'nonce', NONCE_BYTES) };
    case 'auth':
      return {
        t: 'auth', proto: seqOf(o, 'proto'), cluster: str(o, 'cluster'), node: str(o, 'node'),
        nonce2: bytes(o, 'nonce2', NONCE_BYTES), mac: bytes(o, 'mac', 32), tables: tables(o), caps: caps(o), internal: tables(o, 'internal'),
      };
    case 'welcome':
      return { t: 'welcome', mac2: bytes(o, 'mac2', 32), tables: tables(o), caps: caps(o), internal: tables(o, 'internal') };
    case 'resume':
      return { t: 'resume', table: str(o, 'table'), epoch: str(o, 'epoch'), seq: seqOf(o, 'seq') };
    case 'u':
      return { t: 'u', table: str(o, 'table'), seq: seqOf(o, 'seq'), updates: updates(o) };
    case 'resync':
      return { t: 'resync', table: str(o, 'table'), updates: updates(o) };
    case 'resync-done':
      return { t: 'resync-done', table: str(o, 'table'), epoch: str(o, 'epoch'), seq: seqOf(o, 'seq') };
    case 'ack':
      return { t: 'ack', table: str(o, 'table'), seq: seqOf(o, 'seq') };
    case 'digest':
      return { t: 'digest', table: str(o, 'table'), digests: bytes(o, 'digests', AE_DIGEST_BYTES) };
    case 'repair':
      return { t: 'repair', table: str(o, 'table'), buckets: bucketList(o), differing: seqOf(o, 'differing') };
    case 'repair-u':
      return { t: 'repair-u', table: str(o, 'table'), updates: updates(o) };
    case 'repair-end':
      return { t: 'repair-end', table: str(o, 'table') };
    case 'c': {
      const wall = o.wall;
      if (!num(wall) || wall < 0) return bad("field 'wall' must be a non-negative number");
      return { t: 'c', table: str(o, 'table'), wall, shares: shares(o) };
    }
    case 'tk': {
      const box = o.box;
      if (!(box instanceof Uint8Array) || box.length < 16 || box.length > MAX_TK_BOX) return bad(`field 'box' must be 16..${MAX_TK_BOX} bytes`);
      const seq = seqOf(o, 'seq');
      if (seq < 1) return bad("field 'seq' must be >= 1");
      return { t: 'tk', seq, iv: bytes(o, 'iv', 12), box };
    }
    default:
      throw new ProtocolError('unexpected-message', `unknown message type ${JSON.stringify(String(o.t)).slice(0, 40)}`);
  }
}
