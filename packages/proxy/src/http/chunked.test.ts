import { describe, expect, it } from 'vitest';
import { ChunkedScanner } from './chunked.js';

function scanAll(s: string, split = 0): { consumed: number; done: boolean; err: string } {
  const c = new ChunkedScanner();
  const b = Buffer.from(s, 'latin1');
  let consumed = 0;
  const step = split > 0 ? split : b.length;
  for (let i = 0; i < b.length && !c.done; i += step) {
    const n = c.scan(b, i, Math.min(b.length, i + step));
    if (n < 0) return { consumed, done: false, err: c.error };
    consumed += n;
  }
  return { consumed, done: c.done, err: '' };
}

describe('ChunkedScanner', () => {
  const body = '5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n';
  it('finds the end of a chunked body with extensions and trailers', () => {
    const r = scanAll(body + 'GET / HTTP/1.1');
    expect(r.done).toBe(true);
    expect(r.consumed).toBe(body.length);
  });
  it('gives the same answer when fed one byte at a time', () => {
    const r = scanAll(body, 1);
    expect(r.done).toBe(true);
    expect(r.consumed).toBe(body.length);
  });
  it('handles upper-case hex and large chunks split across reads', () => {
    const data = 'x'.repeat(0x1a);
    const s = `1A\r\n${data}\r\n0\r\n\r\n`;
    expect(scanAll(s, 7)).toMatchObject({ done: true, consumed: s.length });
  });
  const bad: Array<[string, string]> = [
    ['non-hex size', 'zz\r\nhello\r\n0\r\n\r\n'],
    ['empty size', '\r\nhello\r\n0\r\n\r\n'],
    ['negative size', '-5\r\nhello\r\n0\r\n\r\n'],
    ['too many digits', '1000000000000000\r\n'],
    ['missing CRLF after data', '5\r\nhelloX\r\n0\r\n\r\n'],
    ['bare LF after size', '5\nhello\r\n0\r\n\r\n'],
    ['size with junk', '5 x\r\nhello\r\n0\r\n\r\n'],
    ['size over 2^53 - 1', '20000000000000\r\n'],
    ['fifteen digits over 2^53 - 1', 'fffffffffffffff\r\n'],
    ['sixteen leading zeros', '0000000000000005\r\nhello\r\n0\r\n\r\n'],
    ['bare LF after data', '5\r\nhello\n0\r\n\r\n'],
    ['bare LF in an extension', '5;a\nb\r\nhello\r\n0\r\n\r\n'],
    ['NUL in an extension', '5;a=\u0000\r\nhello\r\n0\r\n\r\n'],
    ['extension too long', `5;${'e'.repeat(5000)}\r\nhello\r\n0\r\n\r\n`],
    ['whitespace run too long', `5${' '.repeat(5000)}\r\nhello\r\n0\r\n\r\n`],
    ['bare LF ending the body', '0\r\n\n'],
    ['bare LF in a trailer', '0\r\nX: 1\nY: 2\r\n\r\n'],
    ['obs-fold in the trailers', '0\r\nX: 1\r\n 2\r\n\r\n'],
    ['CR without LF after size', '5\rhello\r\n0\r\n\r\n'],
  ];
  it.each(bad)('rejects %s', (_n, s) => {
    expect(scanAll(s).err).not.toBe('');
  });
  it('accepts the largest exact size and extensions up to the limit', () => {
    const c = new ChunkedScanner();
    const b = Buffer.from('1fffffffffffff;x="y"\r\nabc', 'latin1');
    expect(c.scan(b, 0, b.length)).toBe(b.length);
    expect(c.error).toBe('');
    expect(scanAll(`5;${'e'.repeat(4000)}\r\nhello\r\n0\r\n\r\n`).done).toBe(true);
    expect(scanAll('000000000000005\r\nhello\r\n0\r\n\r\n').done).toBe(true);
  });
  it('bounds trailers', () => {
    const s = '0\r\n' + ('X: ' + 'a'.repeat(1000) + '\r\n').repeat(20) + '\r\n';
    expect(scanAll(s).err).toBe('trailers too large');
  });
});
