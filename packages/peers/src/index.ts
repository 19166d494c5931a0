export { PeersService, type RefusalEvent } from './service.js';
export type {
  ReplicatedTable,
  PeersServiceOptions,
  PeerAddress,
  PeerState,
  PeerStatus,
  RefusalReason,
  ReadyResult,
} from './types.js';
export { PEERS_PATH, PROTO, ProtocolError } from './codec.js';
