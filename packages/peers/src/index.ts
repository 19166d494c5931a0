export { PeersService, type RefusalEvent } from './service.js';
export type {
  ReplicatedTable,
  PeersServiceOptions,
  PeerAddress,
  PeerState,
  PeerStatus,
  ReadyResult,
  AntiEntropyStats,
} from './types.js';
export { AE_BUCKETS, PEERS_PATH, PROTO, ProtocolError } from './codec.js';
export { REFUSAL_REASONS, type RefusalReason } from './refusals.js';
