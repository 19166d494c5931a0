/**
 * Node's `onread` mode for accepted sockets. `net.connect` takes an `onread` option (reads go
 * into a buffer the caller owns and reach a callback: no 64 KiB allocation, Buffer object,
 * readable-stream push and nextTick per read), but Node 20's `net.Server` does not. The Socket
 * constructor keeps that option under three module-private symbols; they are found once, on a
 * probe socket built with the option, and set on an accepted socket before it starts reading.
 *
 * The socket must come from a server with `pauseOnConnect: true` (it has not read yet). When the
 * symbols or the handle method are missing (another Node version, a handle without it), nothing
 * is changed and `readInto` returns false: the caller then listens for 'data' as usual.
 *
 * A `tls.TLSSocket` (an `ssl` bind, handshake done) qualifies too: its handle (TLSWrap) is a
 * stream like the TCP one and hands each decrypted chunk to the listener on top of it, so the
 * plaintext lands in the caller's buffer the same way. Its handle already reads (the handshake
 * needed it); that is allowed when nothing sits in the socket's readable buffer yet, which holds
 * when this runs from the 'secure' event: Node emits it from inside the read that finished the
 * handshake, before any application data of that read is decrypted and delivered.
 */
import net from 'node:net';

interface Keys {
  buffer: symbol;
  callback: symbol;
  generator: symbol;
}

type Indexed = net.Socket & Record<symbol, unknown> & { _handle?: { useUserBuffer?: (b: Uint8Array) => void; reading?: boolean } | null };

function findKeys(): Keys | null {
  const mark = Buffer.alloc(1);
  const gen = (): Buffer => mark;
  const cb = (): boolean => true;
  // The typings omit `onread` from the Socket constructor; Node accepts it there as in net.connect.
  const probe = new net.Socket({ onread: { buffer: gen, callback: cb } } as net.SocketConstructorOpts) as Indexed;
  let buffer: symbol | undefined;
  let callback: symbol | undefined;
  let generator: symbol | undefined;
  for (const s of Object.getOwnPropertySymbols(probe)) {
    const v = probe[s];
    if (v === gen) generator = s;
    else if (v === cb) callback = s;
    else if (v === true && s.description === 'kBuffer') buffer = s;
  }
  probe.destroy();
  return buffer && callback && generator ? { buffer, callback, generator } : null;
}

const keys = findKeys();

/** Whether this Node lets accepted sockets read into caller buffers (see the module comment). */
export const userBufferSupported = keys !== null;

/**
 * Makes paused, accepted `socket` read into the buffers `buffer()` returns (called before each
 * read; return the same buffer to reuse it) and hand each read to `onRead(n, buf)`, then starts
 * reading. Returns false, changing nothing and leaving the socket paused, when it cannot.
 */
export function readInto(socket: net.Socket, buffer: () => Buffer, onRead: (n: number, buf: Buffer) => boolean): boolean {
  const s = socket as Indexed;
  const handle = s._handle;
  if (keys === null || !handle || typeof handle.useUserBuffer !== 'function') return false;
  // A plain socket must not have started reading; a TLS socket has (see the module comment),
  // and qualifies while no decrypted byte waits in its stream.
  if ((socket as { encrypted?: boolean }).encrypted === true ? socket.readableLength !== 0 || socket.readableEnded : handle.reading) return false;
  const first = buffer();
  s[keys.generator] = buffer;
  s[keys.callback] = onRead;
  s[keys.buffer] = first;
  handle.useUserBuffer(first);
  socket.resume();
  return true;
}
