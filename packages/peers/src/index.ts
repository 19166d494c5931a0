export { PeersService, type RefusalEvent } from './service.js';
export type {
  ReplicatedTable,
  PeersServiceOptions,
  PeerAddress,
  PeerState,
  PeerStatus,
  RefusalReason,
  ReadyResult,
  AntiEntropyStats,
} from './types.js';
export { AE_BUCKETS, PEERS_PATH, PROTO, ProtocolError } from './codec.js';
