/**
 * Sealing of TLS ticket keys on the wire (`tk` messages). Whoever holds a ticket key can decrypt
 * every session whose ticket it issued, so the keys never travel in clear, even under wss: they are
 * encrypted and authenticated with AES-256-GCM under a key derived from the cluster's shared secret,
 * which only nodes that passed the handshake know.
 *
 *   boxKey = HKDF-SHA256(ikm = secret (UTF-8), salt = empty, info = TK_INFO, 32 bytes)
 *   aad    = TK_INFO | F(sender) | F(receiver) | F(cluster) | serverNonce | clientNonce | seq (uint64 BE)
 *   iv     = 12 random bytes per message;  box = ciphertext | 16-byte GCM tag
 *
 * The AAD binds a message to its session (both handshake nonces, fresh per session), its direction
 * (a node's own frame reflected back fails) and its place in the session (`seq` only grows, so a
 * frame replayed later in the same session is refused too).
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { NONCE_BYTES } from './codec.js';

export const TK_INFO = 'stickmesh peers tls-ticket-keys v1';
export const TK_IV_BYTES = 12;
export const TK_TAG_BYTES = 16;

/** The 32-byte AES key for `tk` messages of a cluster with this shared secret (non-empty). */
export function deriveBoxKey(secret: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), Buffer.alloc(0), Buffer.from(TK_INFO, 'utf8'), 32));
}

function field(s: string): Buffer {
  const body = Buffer.from(s, 'utf8');
  const len = Buffer.allocUnsafe(2);
  len.writeUInt16BE(body.length);
  return Buffer.concat([len, body]);
}

/** The AAD of one `tk` message (see the header). `session` is serverNonce | clientNonce. */
export function boxAad(sender: string, receiver: string, cluster: string, session: Uint8Array, seq: number): Buffer {
  if (session.length !== 2 * NONCE_BYTES) throw new Error(`session id must be ${2 * NONCE_BYTES} bytes`);
  const n = Buffer.allocUnsafe(8);
  n.writeBigUInt64BE(BigInt(seq));
  return Buffer.concat([Buffer.from(TK_INFO, 'utf8'), field(sender), field(receiver), field(cluster), session, n]);
}

export function seal(key: Buffer, aad: Buffer, plain: Buffer): { iv: Buffer; box: Buffer } {
  const iv = randomBytes(TK_IV_BYTES);
  const c = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TK_TAG_BYTES });
  c.setAAD(aad);
  const box = Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
  return { iv, box };
}

/** The plaintext, or undefined when the box does not authenticate (wrong key, AAD, or altered bytes). */
export function open(key: Buffer, aad: Buffer, iv: Uint8Array, box: Uint8Array): Buffer | undefined {
  if (iv.length !== TK_IV_BYTES || box.length < TK_TAG_BYTES) return undefined;
  try {
    const d = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TK_TAG_BYTES });
    d.setAAD(aad);
    d.setAuthTag(box.subarray(box.length - TK_TAG_BYTES));
    return Buffer.concat([d.update(box.subarray(0, box.length - TK_TAG_BYTES)), d.final()]);
  } catch {
    return undefined;
  }
}
