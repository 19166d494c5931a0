/**
 * Public types of the peers mesh. The mesh codes against the structural `ReplicatedTable` so it does
 * not depend on the concrete core StickTable (which satisfies it).
 */
import type { Logger } from 'pino';
import type { TimerWheel } from '@stickmesh/core';
import type { RefusalReason } from './refusals.js';

import type { ReplicatedCounters, SharedTicketKeys, ShareUpdate, TableUpdate } from '@stickmesh/core';
export type { ReplicatedCounters, SharedTicketKeys, ShareUpdate, TableUpdate };

/** What the mesh needs from a stick table. */
export interface ReplicatedTable {
  readonly cfg: { id: string; type: string; keyLen: number; size: number; expire: number };
  /** Random id of this table object's update-log lifetime; a new epoch forces peers into a full resync. */
  readonly epoch: string;
  /** Last local update seq. */
  readonly seq: number;
  /**
   * Local writes after `fromSeq` (each key once at its latest value), at most `max`, appended to `out`.
   * Returns the seq the batch covers up to (the next `fromSeq`), or -1 if `fromSeq` fell off the bounded
   * log (the caller must then do a full resync).
   */
  readUpdates(fromSeq: number, max: number, out: TableUpdate[]): number;
  /** Full iteration over live entries; cursor starts at 0; returns the next cursor or -1 when done. */
  exportBatch(cursor: number, max: number, out: TableUpdate[]): number;
  /** Apply an update learned from a peer: newest version wins; never re-logged. Returns true if applied. */
  applyRemote(u: TableUpdate): boolean;
  readonly count: number;
  /**
   * Anti-entropy (optional: a table without these is left out of anti-entropy rounds). Bucket
   * digests: 2 uint32 lanes per bucket for AE_BUCKETS buckets of the key space, order-independent
   * over (key, server, version) and bucketed by a node-independent key hash, so equal tables give
   * equal arrays on every node.
   */
  bucketDigests?(): Uint32Array;
  /**
   * Like exportBatch, for entries in buckets b with `want[b] !== 0` only, examining at most
   * `scanMax` slots per call when given (a call may then return a cursor with nothing appended).
   */
  exportBuckets?(want: Uint8Array, cursor: number, max: number, out: TableUpdate[], scanMax?: number): number;
}

export interface PeerAddress {
  name: string;
  host: string;
  port: number;
}

export interface PeersServiceOptions {
  /** Local peer name (unique in the cluster). */
  node: string;
  /** Cluster name; both sides must agree. */
  cluster: string;
  /** Shared secret for the HMAC challenge-response ('' allowed: still challenge-response). */
  secret: string;
  /** Local listener; port 0 picks a free port (kept across stop/start of the same service). */
  bind: { host: string; port: number };
  /** Remote peers (exclude self). */
  peers: PeerAddress[];
  tables: ReplicatedTable[];
  /**
   * Counters to replicate (cluster mode only: a `counters local` table is left out by the caller),
   * each belonging to one of `tables` by `id`. The mesh sends this node's shares of them and
   * applies the peers' shares; see docs/PEERS-PROTOCOL.md, "Counter shares".
   */
  counters?: ReplicatedCounters[];
  /**
   * Counter share batching: dirty shares are flushed at most once per this interval (default 5 ms;
   * the first change after a quiet period leaves on the next event-loop turn). A key changes at
   * most once per flush, so a busy key costs each peer at most 1000/counterFlushMs shares per
   * second (200/s by default) whatever its request rate; a flush sends ceil(dirty keys / min(maxBatch, 4096))
   * frames per table, encoded once and written to every peer.
   */
  counterFlushMs?: number;
  /**
   * The node's TLS session-ticket key ring, shared with every peer that also shares one, sealed
   * with a key derived from `secret` (see docs/PEERS-PROTOCOL.md, "TLS ticket keys"). With an
   * empty `secret` the keys are not sent (anyone could join the mesh) and a warning is logged once.
   */
  ticketKeys?: SharedTicketKeys;
  logger: Logger;
  /** Coarse timer for heartbeats, reconnects and deadlines; default: a private 20 ms wheel. */
  wheel?: TimerWheel;
  /** Readiness gate timeout, default 5000 ms. */
  resyncTimeoutMs?: number;
  /** Ping interval, default 1000 ms. */
  heartbeatMs?: number;
  /** A peer silent (no frame, no pong) this long is terminated and reconnected, default 3000 ms. */
  deadAfterMs?: number;
  /** Delta batching interval after notify(), default 2 ms. */
  flushMs?: number;
  /** Max updates per frame, default 2000. */
  maxBatch?: number;
  /**
   * Update frames (deltas, resync or share export) one flush writes to a session before it yields
   * to the event loop (the rest follows on the next turn), default 4.
   */
  turnBatches?: number;
  /** Entries per anti-entropy `repair-u` frame, default min(maxBatch, 256); one such frame per table per flush. */
  repairBatch?: number;
  /** Max incoming frame size once authenticated (ws maxPayload), default 4 MiB. */
  maxFrameBytes?: number;
  /**
   * Max incoming frame size until the handshake succeeds (hello, auth, welcome), default the larger
   * of 8 KiB and twice this node's own auth message (which carries the table list).
   */
  preAuthMaxFrameBytes?: number;
  /** Per-peer ws bufferedAmount bound; above it the peer is dropped, default 16 MiB. */
  maxQueueBytes?: number;
  /** Handshake deadline, default 5000 ms. */
  handshakeTimeoutMs?: number;
  /** Max concurrent unauthenticated inbound WebSockets (after the upgrade), default 64. */
  maxUnauthenticated?: number;
  /** The HTTP request head must arrive within this of the accept, default 3000 ms. */
  headersTimeoutMs?: number;
  /** A plain HTTP request (knock) must be answered and its socket closed within this of the accept, default 5000 ms. */
  requestTimeoutMs?: number;
  /** A socket before the upgrade that sends nothing for this long is closed, default 2000 ms. */
  idleTimeoutMs?: number;
  /** Max connections not yet authenticated (before and after the upgrade), all sources, default 256. */
  maxRawConnections?: number;
  /** Max connections not yet authenticated from one source address, default 16. */
  maxRawConnectionsPerSource?: number;
  /**
   * Failed handshakes allowed per source address: a token bucket of `authFailureBurst` (default 10)
   * refilled at `authFailuresPerSecond` (default 1). A source with no token left is refused at accept.
   */
  authFailureBurst?: number;
  authFailuresPerSecond?: number;
  /** Source addresses tracked for failure budgets and log sampling, default 4096. */
  maxTrackedSources?: number;
  /** At most one refusal log line per source and reason in this interval, default 10000 ms. */
  refusalLogIntervalMs?: number;
  /**
   * Anti-entropy interval: the dialing side of each session compares bucket digests with the peer
   * this often (and once right after the session goes live) and both repair differing buckets.
   * Default 2000 ms; 0 disables it (the node then does not advertise the capability).
   */
  antiEntropyMs?: number;
  /** Max buckets (of AE_BUCKETS per table) exchanged per table per round, default 16; the rest wait for later rounds. */
  antiEntropyBuckets?: number;
  /** Optional wss. `ca` verifies the peers' certificates (which must cover the peer host). */
  tls?: { key: string | Buffer; cert: string | Buffer; ca?: string | Buffer };
  /**
   * Called with the listening server from its 'listening' callback, before the event loop can
   * accept on it (the node's all-or-nothing start holds connections there until every listener is bound).
   */
  onListening?: (server: import('node:net').Server) => void;
}

export type PeerState = 'connecting' | 'handshake' | 'resyncing' | 'live' | 'down';

export interface PeerStatus {
  peer: string;
  state: PeerState;
  lastError?: string;
  /** Updates sent to this peer (deltas and resync entries) since the service was created. */
  sent: number;
  /** Updates received from this peer since the service was created. */
  received: number;
  /** Replication delay of the last delta batch applied from this peer: apply time - newest wall in it. */
  lagMs: number;
  /** Per table: the last seq of our log this peer acknowledged in the current session. */
  cursor: Record<string, number>;
  /** Full resyncs we streamed to / received from this peer. */
  resyncsSent: number;
  resyncsReceived: number;
  /** Frame bytes sent to / received from this peer in sessions. */
  bytesSent: number;
  bytesReceived: number;
  /** Wall ms of the last ack from this peer (0 = never). */
  lastAckAt: number;
  /**
   * Wall ms of the last frame (message, ping or pong) received from this peer in a session; absent
   * when none ever came. Outlives the session, so a dead peer shows when it was last heard.
   */
  lastDataAt?: number;
  /** Our log positions this peer has not acknowledged yet (current session; 0 when down). */
  pending: number;
  /** Sessions established after the first one. */
  reconnects: number;
  /**
   * Refusals/drops concerning this peer by reason: of sessions this node dialed, and of inbound
   * connections once their MAC verified (before that, refusals count only service-wide).
   */
  refusals: Partial<Record<RefusalReason, number>>;
  /**
   * Present when this node has internal tables (`#servers`): those the current session carries
   * (both sides list them); empty while down or with a peer that predates them.
   */
  internalTables?: string[];
  /** Anti-entropy with this peer, see AntiEntropyStats (same meanings, this peer only). */
  antiEntropyRounds: number;
  bucketsRepaired: number;
  entriesRepaired: number;
  /**
   * Counter shares (present when this node replicates counters or the peer sent shares): tables
   * whose shares the current session exchanges, shares sent to / received from the peer, received
   * shares refused by the counters (bad key or values, node limit) and ignored (table's counters not
   * exchanged with this peer), since the service was created.
   */
  counterTables?: string[];
  sharesSent?: number;
  sharesReceived?: number;
  sharesRejected?: number;
  sharesIgnored?: number;
  /** Counter replication lag of the last flushed batch applied from this peer: apply time - its oldest change (ms). */
  counterLagMs?: number;
  /** Lag quantiles over the recent samples (last 60 s, at most the last 1024 batches); absent with no sample. */
  counterLagP50Ms?: number;
  counterLagP99Ms?: number;
  counterLagSamples?: number;
  /**
   * TLS ticket keys (present when this node has a ring): whether the current session exchanges
   * them, `tk` messages sent and received, keys learned from them and refused by the ring.
   */
  ticketKeysShared?: boolean;
  ticketKeysSent?: number;
  ticketKeysReceived?: number;
  ticketKeysLearned?: number;
  ticketKeysRefused?: number;
}

/** Anti-entropy counters since the service was created (monotonic), summed over peers and tables. */
export interface AntiEntropyStats {
  /** Digest exchanges per table: digests sent (dialing side) plus digests answered (accepting side). */
  antiEntropyRounds: number;
  /** Buckets compared by this node (accepting side: AE_BUCKETS per digest answered). */
  bucketsCompared: number;
  /** Buckets exchanged in repairs (counted on both sides of a round). */
  bucketsRepaired: number;
  /** Entries received in repairs that were newer than ours and applied. */
  entriesRepaired: number;
  /** Entries sent in repairs. */
  repairUpdatesSent: number;
}

/** Stable reasons for refusing or dropping a connection: the closed set in refusals.ts. */
export type { RefusalReason } from './refusals.js';

export interface ReadyResult {
  reason: 'resynced' | 'alone' | 'timeout';
  ms: number;
}
