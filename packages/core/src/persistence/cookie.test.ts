import { describe, expect, it } from 'vitest';
import type { CookieConfig } from '../config/model.js';
import { CookiePersistence, CookieState, decodeCookieDate, encodeCookieDate } from './cookie.js';

function cfg(over: Partial<CookieConfig> = {}): CookieConfig {
  return {
    name: 'SERVER',
    mode: 'insert',
    indirect: true,
    nocache: true,
    postonly: false,
    preserve: false,
    httponly: false,
    secure: false,
    domains: [],
    maxidle: 0,
    maxlife: 0,
    attrs: [],
    dynamic: false,
    loc: { file: 't.cfg', line: 1 },
    ...over,
  };
}
const web1 = { cookieValue: 'web1' };

describe('cookie dates', () => {
  it('encodes (t+3)>>2 as five base64 digits and round-trips to a 4 s step', () => {
    expect(encodeCookieDate(0)).toBe('AAAAA');
    expect(encodeCookieDate(4)).toBe('AAAAB');
    expect(encodeCookieDate(1)).toBe('AAAAB'); // (1+3)>>2 = 1
    const t = 1_763_800_000;
    const e = encodeCookieDate(t);
    expect(e).toMatch(/^[A-Za-z0-9+/]{5}$/);
    const d = decodeCookieDate(e, 0);
    expect(d % 4).toBe(0);
    expect(d - t).toBeGreaterThanOrEqual(0);
    expect(d - t).toBeLessThan(4);
  });
  it('refuses invalid digits', () => {
    expect(decodeCookieDate('AA*AA', 0)).toBe(-1);
    expect(decodeCookieDate('AAA', 0)).toBe(-1);
  });
});

describe('CookiePersistence request side', () => {
  it('finds our cookie, strips it in insert+indirect mode and keeps the others', () => {
    const p = new CookiePersistence(cfg());
    const st = new CookieState();
    st.reset(true);
    const out = p.onRequestCookieHeader('a=1; SERVER=web1; b=2', st, 1000);
    expect(out).toBe('a=1; b=2');
    expect(st.value).toBe('web1');
    expect(p.resolve(st, true, true)).toBe(true);
    expect(st.reqFlag).toBe('V');
  });
  it('drops the whole header when ours was the only cookie', () => {
    const p = new CookiePersistence(cfg());
    const st = new CookieState();
    st.reset(true);
    expect(p.onRequestCookieHeader('SERVER=web1', st, 1000)).toBe('');
  });
  it('leaves the header alone without indirect', () => {
    const p = new CookiePersistence(cfg({ indirect: false }));
    const st = new CookieState();
    st.reset(true);
    expect(p.onRequestCookieHeader('SERVER=web1; a=1', st, 1000)).toBeUndefined();
    expect(st.value).toBe('web1');
  });
  it('does not match a cookie whose name only starts like ours', () => {
    const p = new CookiePersistence(cfg());
    const st = new CookieState();
    st.reset(true);
    expect(p.onRequestCookieHeader('SERVERX=web1; XSERVER=web2', st, 1000)).toBeUndefined();
    expect(st.reqFlag).toBe('N');
  });
  it('flags unknown (I), down (D) and empty (I) values', () => {
    const p = new CookiePersistence(cfg());
    const st = new CookieState();
    st.reset(true);
    p.onRequestCookieHeader('SERVER=nope', st, 1000);
    expect(p.resolve(st, false, false)).toBe(false);
    expect(st.reqFlag).toBe('I');
    st.reset(true);
    p.onRequestCookieHeader('SERVER=web1', st, 1000);
    expect(p.resolve(st, true, false)).toBe(false);
    expect(st.reqFlag).toBe('D');
    st.reset(true);
    p.onRequestCookieHeader('SERVER=', st, 1000);
    expect(st.reqFlag).toBe('I');
    expect(p.resolve(st, false, false)).toBe(false);
  });
  it('strips the prefix in prefix mode', () => {
    const p = new CookiePersistence(cfg({ mode: 'prefix', name: 'JSESSIONID', indirect: false }));
    const st = new CookieState();
    st.reset(true);
    expect(p.onRequestCookieHeader('JSESSIONID=web1~abc123; x=y', st, 1000)).toBe('JSESSIONID=abc123; x=y');
    expect(st.value).toBe('web1');
  });
  it('expires by maxidle (E) and by maxlife (O)', () => {
    const now = 1_000_000;
    const p = new CookiePersistence(cfg({ maxidle: 60, maxlife: 3600 }));
    const st = new CookieState();
    st.reset(true);
    p.onRequestCookieHeader(`SERVER=web1|${encodeCookieDate(now - 120)}|${encodeCookieDate(now - 200)}`, st, now);
    expect(st.reqFlag).toBe('E');
    expect(st.value).toBe('');
    st.reset(true);
    p.onRequestCookieHeader(`SERVER=web1|${encodeCookieDate(now - 10)}|${encodeCookieDate(now - 7200)}`, st, now);
    expect(st.reqFlag).toBe('O');
    st.reset(true);
    p.onRequestCookieHeader(`SERVER=web1|${encodeCookieDate(now - 10)}|${encodeCookieDate(now - 100)}`, st, now);
    expect(st.value).toBe('web1');
    st.reset(true);
    p.onRequestCookieHeader(`SERVER=web1|${encodeCookieDate(now + 2 * 86400)}`, st, now);
    expect(st.reqFlag).toBe('E'); // more than a day in the future
  });
});

describe('CookiePersistence response side', () => {
  it('inserts with HAProxy attribute order and flags I for a new client', () => {
    const p = new CookiePersistence(
      cfg({ httponly: true, secure: true, domains: ['.example.com'], attrs: ['SameSite=Lax'] }),
    );
    const st = new CookieState();
    st.reset(true);
    expect(p.insertCookie(st, web1, false, 1000)).toBe(
      'SERVER=web1; path=/; domain=.example.com; HttpOnly; Secure; SameSite=Lax',
    );
    expect(st.resFlag).toBe('I');
  });
  it('does not re-insert for a client with a valid cookie', () => {
    const p = new CookiePersistence(cfg());
    const st = new CookieState();
    st.reset(true);
    p.onRequestCookieHeader('SERVER=web1', st, 1000);
    p.resolve(st, true, true);
    expect(p.insertCookie(st, web1, false, 1000)).toBeUndefined();
    expect(st.resFlag).toBe('N');
  });
  it('refreshes dates (U) when maxidle is set', () => {
    const now = 1_000_000;
    const p = new CookiePersistence(cfg({ maxidle: 600 }));
    const st = new CookieState();
    st.reset(true);
    p.onRequestCookieHeader(`SERVER=web1|${encodeCookieDate(now - 100)}`, st, now);
    p.resolve(st, true, true);
    expect(p.insertCookie(st, web1, false, now)).toBe(`SERVER=web1|${encodeCookieDate(now)}; path=/`);
    expect(st.resFlag).toBe('U');
  });
  it('keeps the first date with maxlife', () => {
    const now = 1_000_000;
    const p = new CookiePersistence(cfg({ maxidle: 600, maxlife: 7200 }));
    const st = new CookieState();
    st.reset(true);
    const first = encodeCookieDate(now - 1000);
    p.onRequestCookieHeader(`SERVER=web1|${encodeCookieDate(now - 100)}|${first}`, st, now);
    p.resolve(st, true, true);
    expect(p.insertCookie(st, web1, false, now)).toBe(`SERVER=web1|${encodeCookieDate(now)}|${first}; path=/`);
  });
  it('postonly inserts only on POST', () => {
    const p = new CookiePersistence(cfg({ postonly: true }));
    const st = new CookieState();
    st.reset(true);
    expect(p.insertCookie(st, web1, false, 1)).toBeUndefined();
    expect(p.insertCookie(st, web1, true, 1)).toBe('SERVER=web1; path=/');
  });
  it('expires the client cookie for a server without a value', () => {
    const p = new CookiePersistence(cfg());
    const st = new CookieState();
    st.reset(true);
    expect(p.insertCookie(st, { cookieValue: undefined }, false, 1)).toBe(
      'SERVER=; Expires=Thu, 01-Jan-1970 00:00:01 GMT; path=/',
    );
  });
  it('removes the server own cookie in insert mode unless preserve', () => {
    const p = new CookiePersistence(cfg());
    const st = new CookieState();
    st.reset(true);
    expect(p.onResponseSetCookie('SERVER=abc; path=/', st, web1)).toBe('');
    expect(p.onResponseSetCookie('other=1', st, web1)).toBeUndefined();
    expect(p.insertCookie(st, web1, false, 1)).toBe('SERVER=web1; path=/');
    const pp = new CookiePersistence(cfg({ preserve: true }));
    const st2 = new CookieState();
    st2.reset(true);
    expect(pp.onResponseSetCookie('SERVER=abc; path=/', st2, web1)).toBeUndefined();
    expect(st2.resFlag).toBe('P');
    expect(pp.insertCookie(st2, web1, false, 1)).toBeUndefined();
  });
  it('rewrites (R) in rewrite mode and prefixes in prefix mode', () => {
    const rw = new CookiePersistence(cfg({ mode: 'rewrite', indirect: false }));
    const st = new CookieState();
    st.reset(true);
    expect(rw.onResponseSetCookie('SERVER=anything; path=/app', st, web1)).toBe('SERVER=web1; path=/app');
    expect(st.resFlag).toBe('R');
    const px = new CookiePersistence(cfg({ mode: 'prefix', name: 'JSESSIONID', indirect: false }));
    st.reset(true);
    expect(px.onResponseSetCookie('JSESSIONID=abc; Path=/', st, web1)).toBe('JSESSIONID=web1~abc; Path=/');
  });
});
