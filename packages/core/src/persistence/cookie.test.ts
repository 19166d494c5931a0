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
    sign: false,
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

describe('signed cookies (cookie ... sign + cookie-key)', () => {
  const loc = { file: 't.cfg', line: 1 };
  const k1 = { id: 'k1', secret: 'first-secret-0123456789', current: false, loc };
  const k2 = { id: 'k2', secret: 'second-secret-0123456789', current: true, loc };
  const now = 1_763_800_000;

  /** Runs one request carrying `Cookie: header` and returns the state after the server lookup. */
  function request(p: CookiePersistence, header: string): CookieState {
    const st = new CookieState();
    st.reset(true);
    p.onRequestCookieHeader(header, st, now);
    p.resolve(st, st.value === 'web1', true);
    return st;
  }

  it('signs new cookies with the current key and accepts them back', () => {
    const p = new CookiePersistence(cfg({ sign: true, maxidle: 1800 }), [k1, k2]);
    const st = request(p, '');
    const set = p.insertCookie(st, web1, false, now)!;
    expect(set).toMatch(/^SERVER=web1\|[A-Za-z0-9+/]{5}!k2![A-Za-z0-9_-]{22}; path=\//);
    const value = set.slice('SERVER='.length, set.indexOf(';'));
    const back = request(p, `SERVER=${value}`);
    expect(back.reqFlag).toBe('V');
    expect(back.direct).toBe(true);
    expect(p.stats.rejectedSignatures).toBe(0);
  });

  it('treats unsigned, forged, tampered and unknown-key cookies as absent and counts them', () => {
    const p = new CookiePersistence(cfg({ sign: true }), [k1, k2]);
    const good = p.insertCookie(request(p, ''), web1, false, now)!;
    const value = good.slice('SERVER='.length, good.indexOf(';'));
    const mac = value.slice(value.lastIndexOf('!') + 1);
    const bad = [
      'web1', // unsigned (HAProxy's plain value)
      `web2!k2!${mac}`, // server value changed
      `web1!k1!${mac}`, // key id changed
      `web1!k9!${mac}`, // unknown key
      `web1!k2!${'A'.repeat(22)}`, // forged MAC
      `web1!k2!${mac}AA`, // wrong length
    ];
    for (const b of bad) {
      const st = request(p, `SERVER=${b}`);
      expect(st.reqFlag, b).toBe('N');
      expect(st.value, b).toBe('');
      expect(st.direct, b).toBe(false);
    }
    expect(p.stats.rejectedSignatures).toBe(bad.length);
  });

  it('rotates: a cookie signed with an older key of the ring stays valid and is re-issued with the current key', () => {
    const before = new CookiePersistence(cfg({ sign: true }), [{ ...k1, current: true }]);
    const old = before.insertCookie(request(before, ''), web1, false, now)!;
    expect(old).toContain('!k1!');
    const after = new CookiePersistence(cfg({ sign: true }), [k1, k2]);
    const st = request(after, `SERVER=${old.slice('SERVER='.length, old.indexOf(';'))}`);
    expect(st.reqFlag).toBe('V');
    const reissued = after.insertCookie(st, web1, false, now)!;
    expect(reissued).toMatch(/^SERVER=web1!k2!/);
    expect(st.resFlag).toBe('U');
    expect(after.stats.resigned).toBe(1);
    // Once k1 leaves the ring, its cookies are refused.
    const retired = new CookiePersistence(cfg({ sign: true }), [k2]);
    expect(request(retired, `SERVER=${old.slice('SERVER='.length, old.indexOf(';'))}`).reqFlag).toBe('N');
  });

  it('keeps tampered dates out: the dates are covered by the MAC', () => {
    const p = new CookiePersistence(cfg({ sign: true, maxidle: 60 }), [k2]);
    const set = p.insertCookie(request(p, ''), web1, false, now - 3600)!;
    const value = set.slice('SERVER='.length, set.indexOf(';'));
    const stale = new CookieState();
    stale.reset(true);
    p.onRequestCookieHeader(`SERVER=${value}`, stale, now);
    expect(stale.reqFlag).toBe('E');
    const fresh = value.replace(/\|[^!]{5}/, '|' + encodeCookieDate(now));
    expect(request(p, `SERVER=${fresh}`).reqFlag).toBe('N');
  });
});

describe('insertLines (the header bytes the data plane appends)', () => {
  const fresh = (): CookieState => {
    const st = new CookieState();
    st.reset(true);
    return st;
  };
  const loc = { file: 't.cfg', line: 1 };
  const keys = [{ id: 'k1', secret: 'first-secret-0123456789', current: true, loc }];

  it('says what insertCookie says, as set-cookie and cache-control lines', () => {
    for (const c of [cfg(), cfg({ nocache: false }), cfg({ sign: true }), cfg({ maxidle: 600, maxlife: 3600 })]) {
      const p = new CookiePersistence(c, c.sign ? keys : []);
      const a = fresh();
      const b = fresh();
      const value = p.insertCookie(a, web1, false, 1_000_000);
      const lines = p.insertLines(b, web1, false, 1_000_000);
      expect(lines?.toString('latin1')).toBe(`set-cookie: ${value}\r\n${c.nocache ? 'cache-control: private\r\n' : ''}`);
      expect(b.resFlag).toBe(a.resFlag);
    }
  });

  it('makes the lines once per server when the value carries no date, and again when its value changes', () => {
    const p = new CookiePersistence(cfg({ sign: true }), keys);
    const server = { cookieValue: 'web1' };
    const first = p.insertLines(fresh(), server, false, 1000);
    expect(p.insertLines(fresh(), server, false, 2000)).toBe(first);
    const other = p.insertLines(fresh(), web1, false, 1000);
    expect(other).not.toBe(first);
    expect(other?.equals(first!)).toBe(true);
    server.cookieValue = 'web9';
    const changed = p.insertLines(fresh(), server, false, 1000)!.toString('latin1');
    expect(changed).toMatch(/^set-cookie: SERVER=web9!k1!/);
  });

  it('dates every insert anew with maxidle', () => {
    const p = new CookiePersistence(cfg({ maxidle: 600 }));
    const a = p.insertLines(fresh(), web1, false, 1_000_000)!.toString('latin1');
    const b = p.insertLines(fresh(), web1, false, 1_000_400)!.toString('latin1');
    expect(a).toContain(`web1|${encodeCookieDate(1_000_000)}`);
    expect(b).toContain(`web1|${encodeCookieDate(1_000_400)}`);
  });

  it('returns nothing when no cookie is due (postonly on a GET, a client already stuck)', () => {
    expect(new CookiePersistence(cfg({ postonly: true })).insertLines(fresh(), web1, false, 1000)).toBeUndefined();
    const p = new CookiePersistence(cfg());
    const st = fresh();
    p.onRequestCookieHeader('SERVER=web1', st, 1000);
    p.resolve(st, true, true);
    expect(p.insertLines(st, web1, false, 1000)).toBeUndefined();
  });
});
