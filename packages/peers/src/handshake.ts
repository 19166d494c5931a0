/**
 * Handshake crypto and checks (pure functions, no I/O). Mutual challenge-response: each side proves
 * knowledge of the shared secret by MACing both nonces, so the secret never travels and a recorded
 * handshake cannot be replayed (the other side's nonce is fresh every time).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { NONCE_BYTES, PROTO, type AuthMsg, type HelloMsg, type TableSchema } from './codec.js';
import type { ReplicatedCounters, ReplicatedTable } from './types.js';
import { clip, type RefusalReason } from './refusals.js';

export function newNonce(): Buffer {
  return randomBytes(NONCE_BYTES);
}

/** Length-prefixed field (uint16 BE length + bytes) so concatenations are unambiguous. */
function field(b: Uint8Array | string): Buffer {
  const body = typeof b === 'string' ? Buffer.from(b, 'utf8') : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const len = Buffer.allocUnsafe(2);
  len.writeUInt16BE(body.length);
  return Buffer.concat([len, body]);
}

/**
 * HMAC-SHA256(secret, role | first | second | clientNode | serverNode | cluster), each field
 * length-prefixed. Client: role 'c', first = server nonce, second = client nonce.
 * Server: role 's', first = client nonce, second = server nonce.
 */
export function computeMac(
  secret: string, role: 'c' | 's', first: Uint8Array, second: Uint8Array, clientNode: string, serverNode: string, cluster: string,
): Buffer {
  const h = createHmac('sha256', secret);
  for (const f of [role, first, second, clientNode, serverNode, cluster]) h.update(field(f));
  return h.digest();
}

/** Constant-time MAC comparison. */
export function macEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The table list of auth/welcome; a table whose counters this node replicates carries their schema. */
export function schemaOf(tables: ReplicatedTable[], counters: ReadonlyMap<string, ReplicatedCounters> = new Map()): TableSchema[] {
  return tables.map((t) => {
    const c = counters.get(t.cfg.id);
    return c ? { id: t.cfg.id, type: t.cfg.type, keyLen: t.cfg.keyLen, counters: c.schema } : { id: t.cfg.id, type: t.cfg.type, keyLen: t.cfg.keyLen };
  });
}

/** Internal tables (the node's own, such as `#servers`): ids starting with `#`, which no config table can have. */
export function isInternalTable(id: string): boolean {
  return id.startsWith('#');
}

/**
 * The internal tables a session exchanges: those both sides list with the same type and key
 * length. The others are left out of the session, never a reason to refuse it (a node of the
 * previous version lists none): `absent` lists ours the peer does not have, `mismatched` ours it
 * lists with another type or length.
 */
export function sharedInternal(local: TableSchema[], remote: TableSchema[]): { shared: Set<string>; absent: string[]; mismatched: string[] } {
  const theirs = new Map(remote.map((s) => [s.id, s]));
  const shared = new Set<string>();
  const absent: string[] = [];
  const mismatched: string[] = [];
  for (const l of local) {
    const r = theirs.get(l.id);
    if (!r) absent.push(l.id);
    else if (r.type !== l.type || r.keyLen !== l.keyLen) mismatched.push(l.id);
    else shared.add(l.id);
  }
  return { shared, absent, mismatched };
}

/**
 * Both sides must carry exactly the same tables (internal tables aside: see sharedInternal) with the same type and key length (a table known on
 * one side only would silently never converge). Returns the refusal reason and detail, or null.
 */
export function compareSchemas(local: TableSchema[], remote: TableSchema[]): { reason: RefusalReason; detail: string } | null {
  const mine = new Map(local.map((s) => [s.id, s]));
  const seen = new Set<string>();
  for (const r of remote) {
    const l = mine.get(r.id);
    if (!l) return { reason: 'unknown-table', detail: `peer has table ${JSON.stringify(clip(r.id))} which is not configured here` };
    if (l.type !== r.type || l.keyLen !== r.keyLen) {
      return { reason: 'table-mismatch', detail: `table '${r.id}': here type ${l.type} len ${l.keyLen}, peer type ${JSON.stringify(clip(r.type))} len ${r.keyLen}` };
    }
    seen.add(r.id);
  }
  for (const l of local) {
    if (!seen.has(l.id)) return { reason: 'unknown-table', detail: `table '${l.id}' is not configured on the peer` };
  }
  return null;
}

/** Client-side check of the server's hello: right version, cluster and the node we meant to dial. */
export function checkHello(h: HelloMsg, cluster: string, expectedNode: string): { reason: RefusalReason; detail: string } | null {
  if (h.proto !== PROTO) return { reason: 'proto-mismatch', detail: `peer speaks protocol ${h.proto}, here ${PROTO}` };
  if (h.cluster !== cluster) return { reason: 'wrong-cluster', detail: `peer is in cluster ${JSON.stringify(clip(h.cluster))}, here '${cluster}'` };
  if (h.node !== expectedNode) return { reason: 'wrong-node', detail: `dialed '${expectedNode}' but peer is ${JSON.stringify(clip(h.node))}` };
  return null;
}

/**
 * Server-side check of the client's auth up to and including its MAC, in the order the reasons are
 * reported: version, cluster, known peer, dial direction, MAC. Until it returns null the claimed
 * node name is remote text: details never quote it (the caller logs it clipped, apart). The table
 * lists are compared after that (compareSchemas), once the peer is known to be who it claims.
 */
export function checkAuth(
  a: AuthMsg,
  ctx: { cluster: string; node: string; secret: string; nonce: Uint8Array; peers: ReadonlySet<string> },
): { reason: RefusalReason; detail: string } | null {
  if (a.proto !== PROTO) return { reason: 'proto-mismatch', detail: `peer speaks protocol ${a.proto}, here ${PROTO}` };
  if (a.cluster !== ctx.cluster) return { reason: 'wrong-cluster', detail: `peer is in cluster ${JSON.stringify(clip(a.cluster))}, here '${ctx.cluster}'` };
  if (!ctx.peers.has(a.node)) return { reason: 'unknown-peer', detail: 'the claimed node is not a configured peer' };
  if (!(a.node < ctx.node)) return { reason: 'wrong-direction', detail: `the claimed node sorts after '${ctx.node}' and must be dialed, not dial` };
  const want = computeMac(ctx.secret, 'c', ctx.nonce, a.nonce2, a.node, ctx.node, ctx.cluster);
  if (!macEqual(want, a.mac)) return { reason: 'bad-secret', detail: 'client MAC does not verify (different secret?)' };
  return null;
}
