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
