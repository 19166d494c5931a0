/**
 * Per-connection frame limit. ws takes `maxPayload` once, per server or per client, and checks it
 * in its Receiver as soon as a frame header announces the length, before any payload is buffered.
 * A peers connection needs a small limit until the handshake succeeds (an `auth` is well under
 * 1 KiB) and the normal one afterwards, so after authentication the limit is raised on that
 * connection's Receiver (`_maxPayload`, read on every frame header). ws does not document that
 * field: `setFrameLimit` checks it is there and throws `SM_PEERS_WS` otherwise, so a ws upgrade that
 * removes it fails every handshake loudly (tests cover it) instead of silently keeping either limit.
 */
import type WebSocket from 'ws';
import { StickmeshError } from '@stickmesh/core';

interface ReceiverLimit {
  _maxPayload?: unknown;
}

/** Sets the largest frame `ws` accepts from now on (bytes; frames above it close with 1009). */
export function setFrameLimit(ws: WebSocket, bytes: number): void {
  const r = (ws as unknown as { _receiver?: ReceiverLimit | null })._receiver;
  if (!r || typeof r._maxPayload !== 'number') {
    throw new StickmeshError('SM_PEERS_WS', 'this ws version has no per-connection frame limit (Receiver._maxPayload); pin ws to 8.x');
  }
  r._maxPayload = bytes;
}
