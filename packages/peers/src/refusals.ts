/**
 * The closed set of reasons for refusing or dropping a peers connection. A reason is a counter key
 * (`PeersService.refusals`, `status().refusals`), a Prometheus label value and a WebSocket close
 * reason, so it never comes from the remote side: a peer's close reason that is not in this list
 * is counted as 'other', and its text appears only clipped, in a log field.
 */
export const REFUSAL_REASONS = [
  // handshake
  'bad-secret',
  'peer-auth-failed',
  'wrong-cluster',
  'unknown-peer',
  'wrong-node',
  'wrong-direction',
  'unknown-table',
  'table-mismatch',
  'proto-mismatch',
  // a table's counters are not exchanged with this peer (schema differs or the peer does not
  // replicate them); the session stays up
  'counter-schema-mismatch',
  // a `tk` (TLS ticket keys) box that does not authenticate: another secret, or altered in transit
  'ticket-keys-auth-failed',
  // frames
  'malformed-frame',
  'unexpected-message',
  'frame-too-large',
  // deadlines and bounds after the upgrade
  'handshake-timeout',
  'too-many-unauthenticated',
  'heartbeat-timeout',
  'queue-overflow',
  // the HTTP side, before the upgrade
  'bad-path',
  'bad-request',
  'header-timeout',
  'request-timeout',
  'idle-timeout',
  'too-many-connections',
  'too-many-from-source',
  'rate-limited',
  'shutdown',
  // a peer's close reason that is none of the above
  'other',
] as const;

export type RefusalReason = (typeof REFUSAL_REASONS)[number];

const KNOWN: ReadonlySet<string> = new Set(REFUSAL_REASONS);

export function isRefusalReason(s: string): s is RefusalReason {
  return KNOWN.has(s);
}

/** A reason a remote side sent (close reason): itself when it is one of ours, else 'other'. */
export function remoteReason(s: string): RefusalReason {
  return isRefusalReason(s) ? s : 'other';
}

/** Longest remote-supplied text (claimed name, cluster, close reason) kept in a log field or error. */
export const REMOTE_TEXT_MAX = 64;

/** Remote text cut to REMOTE_TEXT_MAX characters, marked with '…' when it was longer. */
export function clip(s: string, max = REMOTE_TEXT_MAX): string {
  return s.length <= max ? s : `${s.slice(0, max)}…`;
}
