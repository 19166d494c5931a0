import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { errnoText } from './errno.js';

describe('errnoText', () => {
  it('reads an errno code as words, keeps an unknown code, and a plain error its message', () => {
    const e = (() => {
      try {
        readFileSync('/nonexistent/stickmesh');
      } catch (err) {
        return err;
      }
    })();
    expect(errnoText(e)).toBe('no such file or directory');
    expect(errnoText(Object.assign(new Error('x'), { code: 'EACCES' }))).toBe('permission denied');
    expect(errnoText(Object.assign(new Error('x'), { code: 'EWEIRD' }))).toBe('EWEIRD');
    expect(errnoText(new Error('plain'))).toBe('plain');
  });
});
