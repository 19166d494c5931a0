import type net from 'node:net';

/**
 * Writes `data` to `s` in 1000-byte pieces, yielding to the event loop every `yieldEvery` bytes
 * (and waiting for 'drain' when the socket asks), then calls `done`. A proxy reading the other end
 * then gets many small reads, below its write high-water mark, so it keeps reading while its
 * earlier writes onward are still queued: the case where reusing a read buffer corrupts bytes.
 */
export function writeInPieces(s: net.Socket, data: Buffer, done: () => void, yieldEvery = 8000): void {
  let off = 0;
  const step = (): void => {
    while (off < data.length) {
      const end = Math.min(off + 1000, data.length);
      const ok = s.write(data.subarray(off, end));
      off = end;
      if (off === data.length) break;
      if (!ok) return void s.once('drain', step);
      if (off % yieldEvery === 0) return void setImmediate(step);
    }
    done();
  };
  step();
}
