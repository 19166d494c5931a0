/**
 * Contract of the cluster's TLS session-ticket keys, between the key ring (core/tls), the peers
 * mesh that shares it (peers) and the TLS listeners that use it (proxy).
 *
 * A ticket key is 48 bytes in the layout Node's `ticketKeys` option takes: a 16-byte key name
 * (carried in clear at the start of every ticket it encrypts), then the HMAC and AES secrets.
 * Every node issues tickets with the same `current()` key and still accepts tickets made with the
 * keys of the previous rotations kept in the ring, so a client resumes through any node, before
 * and after a rotation. Node's TLS server holds one key per SecureContext, so a listener picks,
 * per connection, the context whose key has the name found in the client's ticket (see
 * `byName`), from the ClientHello it reads before the TLS handshake starts.
 */
export interface TicketKeys {
  /** The key new tickets are issued with; undefined until the ring has a key (tickets then off). */
  current(): Buffer | undefined;
  /** The accepted key whose first 16 bytes equal `name`, if it is still in the ring. */
  byName(name: Uint8Array): Buffer | undefined;
  /** Every accepted key, newest first (at most the ring's bound). */
  all(): readonly Buffer[];
  /** Called after the set of keys changed (rotation, or keys learned from a peer). */
  onChange(listener: () => void): () => void;
}

/** One key of a ring with the fields the cluster's merge rule orders keys by (see ticket-keys.ts). */
export interface TicketKeyEntry {
  /** 48 bytes, Node's `ticketKeys` layout (16-byte name first). */
  key: Buffer;
  /** Rotation generation: the key that replaces the current one has the current one's gen + 1. */
  gen: number;
  /** Wall ms when its node created it. */
  createdAt: number;
  /** Name of the node that created it. */
  node: string;
}

/**
 * A ring of ticket keys that a mesh shares between nodes: it sends `entries()` to each peer, gives
 * what a peer sent to `merge`, and sends again when `onOwnKey` says this node created a key (keys
 * learned from a peer are never sent on by themselves: every node hears each key from its creator,
 * or in the whole ring a peer sends at the start of a session).
 */
export interface SharedTicketKeys extends TicketKeys {
  /** Every accepted key with its ordering fields, newest first. */
  entries(): readonly TicketKeyEntry[];
  /** Merges keys a peer sent; keys that fail the ring's checks are refused (counted), never thrown. */
  merge(keys: readonly TicketKeyEntry[], from: string): { installed: number; refused: number };
  /** Called after this node created a key (its first one, or a rotation). */
  onOwnKey(listener: () => void): () => void;
}
