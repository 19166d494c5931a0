/**
 * TLS on an accepted socket of an `ssl` bind, up to the end of the handshake; the frontend's
 * connection object (ClientConn, TcpConn) then gets the `tls.TLSSocket`.
 *
 *   accepted (paused) ──read ClientHello──▶ chosen ──TLSSocket handshake──▶ secure ──▶ onSecure
 *   any step ──bad hello, plain HTTP, strict-sni, OpenSSL error, timeout, close──▶ counted, closed
 *
 * The ClientHello is read first, with plain 'data' events, at most MAX_HELLO_BYTES, and parsed
 * (tls/client-hello.ts) to pick the context the handshake starts with (the one holding the key
 * of the offered ticket, tls/contexts.ts) and to refuse early what cannot succeed: plain HTTP on
 * the TLS port (closed without an answer, as HAProxy), a server name no certificate serves under
 * `strict-sni` (an `unrecognized_name` alert, as HAProxy). The bytes read are put back
 * (`unshift`) and the TLSSocket, wrapping the socket, reads them first.
 *
 * Deadline: the hello and the handshake together within `timeout client` (HAProxy 2.6 bounds the
 * handshake by it), on the shared wheel. The handshaking connection counts in `maxconn` (it is in
 * the frontend's `conns` until the connection object replaces it). Bound: at most
 * MAX_HANDSHAKES handshakes in progress in the process; beyond, a new connection is closed at
 * once (reason `overload`). Every failure is counted in `stickmesh_tls_handshake_failures_total`
 * and closes the socket; none throws.
 */
import type net from 'node:net';
import tls from 'node:tls';
import type { TimerWheel, WheelTask } from '@stickmesh/core';
import { HelloStatus, MAX_HELLO_BYTES, parseClientHello } from './client-hello.js';
import type { TlsBindRuntime } from './contexts.js';
import { TLS_FAILURE_REASONS, type TlsCounts, type TlsFailureReason } from '../metrics.js';

/** Handshakes in progress in the process, at most. */
export const MAX_HANDSHAKES = 4096;
let handshaking = 0;

/** Handshakes in progress now (tests, metrics). */
export function handshakesInProgress(): number {
  return handshaking;
}

/** A fatal `unrecognized_name` alert (TLS record, version 3.1), what HAProxy's strict-sni sends. */
const ALERT_UNRECOGNIZED_NAME = Buffer.from([21, 3, 1, 0, 2, 2, 112]);

const REASON_INDEX = new Map<TlsFailureReason, number>(TLS_FAILURE_REASONS.map((r, i) => [r, i]));

/** What a handshake needs of its frontend. */
export interface TlsAcceptOwner {
  readonly wheel: TimerWheel;
  /** The frontend's open connections (maxconn): the handshake is one until it hands over. */
  readonly conns: Set<{ drain(): void; destroy(): void }>;
  readonly timeouts: { readonly client: number };
  readonly tlsCounts: TlsCounts;
}

/** What the connection object receives: the TLS socket and what the ClientHello said. */
export type OnSecure = (socket: tls.TLSSocket, sni: string | undefined) => void;

/** OpenSSL's reason for a failed handshake, as a metric label. */
function reasonOf(err: Error & { code?: string }): TlsFailureReason {
  const c = err.code ?? '';
  if (c === 'ECONNRESET' || c === 'EPIPE' || c === 'ERR_SOCKET_CLOSED') return 'closed';
  if (/VERSION|PROTOCOL/.test(c)) return 'protocol';
  if (/CIPHER/.test(c)) return 'cipher';
  return 'handshake';
}

export class TlsHandshake implements WheelTask {
  private readonly socket: net.Socket;
  private readonly bind: TlsBindRuntime;
  private readonly owner: TlsAcceptOwner;
  private readonly onSecure: OnSecure;
  private readonly onFail: (() => void) | undefined;
  /** ClientHello bytes so far (at most MAX_HELLO_BYTES). */
  private hello: Buffer | null = null;
  private tls: tls.TLSSocket | null = null;
  private sni: string | undefined;
  /** Settled: handed over, failed or destroyed. */
  private done = false;
  /** Counted in `handshaking` and on the wheel. */
  private active = false;
  _gen?: number;
  _due?: number;
  _slot?: number;
  _pos?: number;

  /** `onFail`: called once when the handshake does not complete (failure or destroy). */
  constructor(socket: net.Socket, bind: TlsBindRuntime, owner: TlsAcceptOwner, onSecure: OnSecure, onFail?: () => void) {
    this.onFail = onFail;
    this.socket = socket;
    this.bind = bind;
    this.owner = owner;
    this.onSecure = onSecure;
    socket.on('error', this.onRawError);
    socket.on('close', this.onRawClose);
    if (handshaking >= MAX_HANDSHAKES) {
      this.fail('overload');
      return;
    }
    handshaking++;
    this.active = true;
    owner.conns.add(this);
    owner.wheel.schedule(this, owner.timeouts.client);
    socket.on('data', this.onHelloData);
    socket.resume();
  }

  private readonly onHelloData = (chunk: Buffer): void => {
    if (this.done) return;
    let buf = this.hello === null ? chunk : Buffer.concat([this.hello, chunk]);
    if (buf.length > MAX_HELLO_BYTES) buf = buf.subarray(0, MAX_HELLO_BYTES);
    const r = parseClientHello(buf);
    if (r.status === HelloStatus.Incomplete) {
      if (buf.length >= MAX_HELLO_BYTES) this.fail('hello-too-large');
      // Own the bytes: a chunk may be a view of a larger pooled read.
      else this.hello = this.hello === null ? Buffer.from(chunk) : buf;
      return;
    }
    if (r.status === HelloStatus.Bad) {
      this.fail(r.reason);
      return;
    }
    const socket = this.socket;
    socket.off('data', this.onHelloData);
    socket.pause();
    const sni = r.info.sni;
    if (this.bind.ssl.strictSni && (sni === undefined || !this.bind.serves(sni))) {
      socket.end(ALERT_UNRECOGNIZED_NAME);
      this.fail('strict-sni', false);
      return;
    }
    this.sni = sni;
    // Everything read so far (the hello and whatever came with it) goes back, in order.
    socket.unshift(this.hello === null ? chunk : Buffer.concat([this.hello, chunk]));
    this.hello = null;
    socket.off('error', this.onRawError);
    const t = new tls.TLSSocket(socket, {
      isServer: true,
      secureContext: this.bind.initialContext(r.info.ticketName),
      ...(this.bind.sniCallback !== undefined ? { SNICallback: this.bind.sniCallback } : {}),
      // ALPN only when the client offers a protocol we speak: without one in common, HAProxy
      // goes on without ALPN where Node would refuse the handshake (no_application_protocol).
      ...(this.bind.alpn !== undefined && this.bind.offersAny(r.info.alpn) ? { ALPNProtocols: this.bind.alpn } : {}),
      requestCert: false,
      rejectUnauthorized: false,
    });
    this.tls = t;
    t.on('error', this.onTlsError);
    t.once('secure', this.onTlsSecure);
  };

  private readonly onTlsSecure = (): void => {
    if (this.done) return;
    const t = this.tls!;
    this.settle();
    const counts = this.owner.tlsCounts;
    counts.handshakes++;
    if (t.isSessionReused()) counts.resumed++;
    t.off('error', this.onTlsError);
    this.socket.off('close', this.onRawClose);
    // The connection object adds itself to `conns` before the handshake leaves them: the count
    // never dips, so no held connection is admitted in between.
    this.onSecure(t, this.sni);
    this.owner.conns.delete(this);
  };

  private readonly onTlsError = (err: Error): void => {
    if (!this.done) this.fail(reasonOf(err));
  };

  private readonly onRawError = (err: Error): void => {
    if (!this.done) this.fail(reasonOf(err));
  };

  private readonly onRawClose = (): void => {
    if (!this.done) this.fail('closed');
  };

  /** Deadline (`timeout client`) passed before the handshake completed. */
  run(now: number): void {
    if (this.done) return;
    const due = this._due ?? 0;
    if (due > now) this.owner.wheel.schedule(this, due - now);
    else this.fail('timeout');
  }

  /** Settles: leaves the in-progress count and the wheel, once. */
  private settle(): void {
    this.done = true;
    this.hello = null;
    if (!this.active) return;
    this.active = false;
    handshaking--;
    this.owner.wheel.cancel(this);
  }

  private fail(reason: TlsFailureReason, destroy = true): void {
    if (this.done) return;
    this.settle();
    this.owner.tlsCounts.failures[REASON_INDEX.get(reason)!]!++;
    this.owner.conns.delete(this);
    this.socket.off('data', this.onHelloData);
    this.socket.on('error', noop);
    if (this.tls !== null) {
      this.tls.on('error', noop);
      this.tls.destroy();
    }
    if (destroy) this.socket.destroy();
    else this.socket.destroySoon();
    this.onFail?.();
  }

  /** A reload replaced the frontend: the handshake finishes and its connection serves as draining. */
  drain(): void {}

  /** Closes the connection now (shutdown), uncounted. */
  destroy(): void {
    if (this.done) return;
    this.settle();
    this.owner.conns.delete(this);
    this.socket.on('error', noop);
    this.tls?.on('error', noop);
    this.tls?.destroy();
    this.socket.destroy();
    this.onFail?.();
  }
}

function noop(): void {}
