import { describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { StickTable, type StickTableConfig } from '@stickmesh/core';
import { captureLogger } from '../test/harness.js';
import { AE_DIGEST_BYTES, decode, type Msg } from './codec.js';
import { LagWindow } from './lag-window.js';
import { PeerSession, type LinkStats, type SessionHost, type SessionLimits } from './session.js';

function cfg(): StickTableConfig {
  return { id: 't', name: 't', type: 'ip', keyLen: 32, size: 10_000, expire: 0, store: [], srvkey: 'name', loc: { file: 'test', line: 1 } };
}

function stats(): LinkStats {
  return {
    sent: 0, received: 0, lagMs: 0, resyncsSent: 0, resyncsReceived: 0, bytesSent: 0, bytesReceived: 0, lastAckAt: 0, lastDataAt: 0, sessions: 0,
    aeRounds: 0, bucketsCompared: 0, bucketsRepaired: 0, entriesRepaired: 0, repairSent: 0,
    sharesSent: 0, sharesReceived: 0, sharesRejected: 0, sharesIgnored: 0, counterLag: new LagWindow(),
    ticketKeysSent: 0, ticketKeysReceived: 0, ticketKeysLearned: 0, ticketKeysRefused: 0,
  };
}

/** A session of acceptor 'a' towards 'b' over a socket that never backs up; frames land in `sent`. */
function session(limits: Partial<SessionLimits>, entries: number): { s: PeerSession; table: StickTable; sent: Msg[] } {
  const table = new StickTable(cfg(), { node: 'a' });
  for (let i = 0; i < entries; i++) table.setLocal(`10.9.${i >> 8}.${i & 255}`, `s${i % 3}`);
  const sent: Msg[] = [];
  const ws = { bufferedAmount: 0, send: (b: Buffer) => sent.push(decode(b)) } as unknown as WebSocket;
  const host: SessionHost = {
    tables: new Map([['t', table]]),
    recv: new Map(),
    stats: stats(),
    limits: { maxBatch: 50, maxFrameBytes: 1 << 20, maxQueueBytes: 1 << 24, lowWaterBytes: 1 << 20, turnBatches: 3, repairBatch: 20, repairScan: 1 << 20, ...limits },
    logger: captureLogger().logger,
    onResynced: () => {},
    drop: () => {},
    dialer: false,
    antiEntropy: { intervalMs: 1000, maxBuckets: 256 },
    counters: new Map(),
    ticketKeys: undefined,
  };
  return { s: new PeerSession('b', ws, host), table, sent };
}

const updatesIn = (msgs: Msg[], t: Msg['t']): number =>
  msgs.reduce((n, m) => n + (m.t === t && 'updates' in m ? m.updates.length : 0), 0);

describe('per-turn send budget', () => {
  it('a full resync writes at most turnBatches frames per pump, asks for the next turn (busy), and still delivers every entry', () => {
    const { s, sent } = session({}, 1000);
    s.handle({ t: 'resume', table: 't', epoch: '', seq: 0 });
    let pumps = 0;
    let more = true;
    while (more) {
      const before = sent.length;
      more = s.pump();
      pumps++;
      const frames = sent.slice(before).filter((m) => m.t === 'resync').length;
      expect(frames).toBeLessThanOrEqual(3);
      if (more) expect(s.busy).toBe(true);
      expect(pumps).toBeLessThan(100);
    }
    expect(updatesIn(sent, 'resync')).toBe(1000);
    expect(sent.at(-1)?.t).toBe('resync-done');
    expect(pumps).toBeGreaterThanOrEqual(Math.ceil(1000 / 50 / 3));
  });

  it('deltas written after a stall go out turnBatches frames per pump', () => {
    const { s, table, sent } = session({}, 0);
    s.handle({ t: 'resume', table: 't', epoch: table.epoch, seq: 0 });
    for (let i = 0; i < 400; i++) table.setLocal(`10.8.${i >> 8}.${i & 255}`, 's1');
    expect(s.pump()).toBe(true);
    expect(sent.filter((m) => m.t === 'u').length).toBe(3);
    expect(s.busy).toBe(true);
    while (s.pump());
    expect(updatesIn(sent, 'u')).toBe(400);
    expect(s.busy).toBe(false);
  });

  it('an anti-entropy export writes one repair-u frame of at most repairBatch entries per pump, and every entry of the round', () => {
    const { s, table, sent } = session({}, 600);
    s.handle({ t: 'resume', table: 't', epoch: table.epoch, seq: table.seq });
    while (s.pump());
    sent.length = 0;
    // The peer's digests are all zero: every non-empty bucket differs; the acceptor exports all of them.
    s.handle({ t: 'digest', table: 't', digests: new Uint8Array(AE_DIGEST_BYTES) });
    const repair = sent.find((m) => m.t === 'repair');
    expect(repair && repair.t === 'repair' && repair.buckets.length).toBeGreaterThan(100);
    let pumps = 0;
    while (!sent.some((m) => m.t === 'repair-end')) {
      const before = sent.length;
      s.pump();
      pumps++;
      const frames = sent.slice(before).filter((m) => m.t === 'repair-u');
      expect(frames.length).toBeLessThanOrEqual(1);
      for (const f of frames) expect(f.t === 'repair-u' && f.updates.length).toBeLessThanOrEqual(20);
      expect(pumps).toBeLessThan(1000);
    }
    expect(updatesIn(sent, 'repair-u')).toBe(600);
    expect(pumps).toBeGreaterThanOrEqual(30);
  });

  it('a repair step examines at most repairScan slots, so a sparse round takes several pumps and misses nothing', () => {
    const { s, table, sent } = session({ repairScan: 100 }, 600);
    s.handle({ t: 'resume', table: 't', epoch: table.epoch, seq: table.seq });
    while (s.pump());
    sent.length = 0;
    s.handle({ t: 'digest', table: 't', digests: new Uint8Array(AE_DIGEST_BYTES) });
    let pumps = 0;
    while (!sent.some((m) => m.t === 'repair-end') && pumps < 1000) {
      s.pump();
      pumps++;
    }
    expect(updatesIn(sent, 'repair-u')).toBe(600);
    expect(pumps).toBeGreaterThanOrEqual(6);
  });
});
