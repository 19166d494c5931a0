/**
 * The live dashboard, served by the admin listener: a static page (`/`), its style
 * (`/dashboard.css`) and its script (`/dashboard.js`), under a CSP with no inline script, style or
 * handler, and `connect-src` limited to this listener and its trusted origins (admin.ts).
 *
 * The script polls `/api/summary` every second on this node and on its sibling nodes: the list
 * `/api/dashboard` of this node gives (its peers' admin listeners), or `?nodes=URL,URL` filtered
 * against the origins that list accepts (peers and `admin-allow-origin`). A token given as
 * `#token=...` is sent to this node's own origin only.
 *
 * Rendering is pure code (DASHBOARD_RENDER_JS: data in, HTML strings out, no DOM) so tests run it
 * in Node with hostile data. Every value from a summary goes through `esc` (text and attribute
 * values, non-strings shown as empty) or `num` (finite numbers, else 0); class names come from
 * fixed sets; lists and strings are cut to fixed lengths; the per-key history the page keeps is
 * bounded and dropped when full.
 */

/** The page, its script and its style, as the admin listener serves them. */
export interface DashboardAssets {
  html: string;
  script: string;
  style: string;
}

/** Longest text shown from a summary value, per field. */
export const DASHBOARD_TEXT_MAX = 200;
/** Most nodes, peers per node, servers per node and tables per node shown. */
export const DASHBOARD_LIST_MAX = 256;
/** Keys of rate and history state kept across polls; the state is dropped when it fills up. */
export const DASHBOARD_STATE_MAX = 4096;
/** Most nodes polled. */
export const DASHBOARD_NODES_MAX = 32;

export const DASHBOARD_STYLE = `:root{--bg:#0d1117;--panel:#161b22;--line:#262c36;--text:#e6edf3;--mute:#8b949e;--ok:#3fb950;--warn:#d29922;--bad:#f85149;--acc:#58a6ff;--acc2:#bc8cff}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--text);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
header{display:flex;align-items:center;gap:16px;padding:14px 24px;border-bottom:1px solid var(--line);background:#0b0f14;position:sticky;top:0;z-index:1}
.logo{font-weight:700;font-size:18px;letter-spacing:.3px}.logo span{color:var(--acc)}
.pill{padding:3px 10px;border-radius:999px;font-size:12px;font-weight:600;border:1px solid var(--line)}
.pill.ok{color:var(--ok);border-color:#238636;background:#0f2a17}.pill.warn{color:var(--warn);border-color:#9e6a03;background:#2b2111}.pill.bad{color:var(--bad);border-color:#da3633;background:#2d1214}
.spacer{flex:1}.mute{color:var(--mute)}.small{font-size:12px}
main{padding:20px 24px;display:grid;gap:20px;max-width:1400px;margin:0 auto}
h2{font-size:13px;text-transform:uppercase;letter-spacing:.8px;color:var(--mute);margin:0 0 10px;font-weight:600}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(160px,1fr));gap:12px}
.kpi{background:var(--panel);border:1px solid var(--line);border-radius:10px;padding:12px 16px}
.kpi .v{font-size:26px;font-weight:700;font-variant-numeric:tabular-nums}.kpi .l{color:var(--mute);font-size:12px}
.nodes{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:12px}
.card{background:var(--panel);border:1px solid var(--line);border-radius:10px;padding:14px 16px}
.card.down{border-color:#da3633;opacity:.8}
.card .top{display:flex;align-items:center;gap:8px;margin-bottom:8px}.card .name{font-weight:700;font-size:16px}
.dot{width:9px;height:9px;border-radius:50%;display:inline-block;flex:none}.dot.ok{background:var(--ok);box-shadow:0 0 6px var(--ok)}.dot.warn{background:var(--warn)}.dot.bad{background:var(--bad)}
.stats{display:flex;gap:16px;margin:6px 0 10px;font-variant-numeric:tabular-nums}.stats b{font-size:16px}
.peer{display:flex;align-items:center;gap:8px;padding:4px 0;border-top:1px dashed var(--line);font-size:13px}
.peer .pn{flex:1}.peer .lag{font-variant-numeric:tabular-nums;color:var(--mute)}
svg.spark{width:100%;height:36px;display:block}svg.spark polyline{fill:none;stroke:var(--acc);stroke-width:2}
table{width:100%;border-collapse:collapse;background:var(--panel);border:1px solid var(--line);border-radius:10px;overflow:hidden}
th,td{text-align:left;padding:9px 12px;border-bottom:1px solid var(--line);font-variant-numeric:tabular-nums}
th{color:var(--mute);font-weight:600;font-size:12px;text-transform:uppercase;letter-spacing:.5px;background:#11161d}
tr:last-child td{border-bottom:none}
.badge{padding:2px 8px;border-radius:6px;font-size:12px;font-weight:600}
.badge.ready{background:#0f2a17;color:var(--ok)}.badge.drain{background:#2b2111;color:var(--warn)}.badge.maint{background:#2d1214;color:var(--bad)}
svg.bar{display:block;width:100%;height:8px;background:#0b0f14;border-radius:4px;min-width:80px}svg.bar rect{fill:var(--acc)}
.stickycell{display:flex;align-items:center;gap:8px}.stickycell svg.bar{flex:1}
.err{color:var(--bad)}
#banner{padding:10px 24px;background:#2d1214;color:var(--bad);border-bottom:1px solid #da3633}
`;

/**
 * Defines `StickmeshDashboard = { esc, num, view, newState, acceptNodes }`; no DOM, no globals read.
 * `view(results, state, nowMs)` takes poll results (`{ origin, ok, s | error }`) and returns
 * `{ nodes, servers, tables }` (HTML strings) and texts for the KPIs, status and banner.
 */
export const DASHBOARD_RENDER_JS = `
var StickmeshDashboard = (function () {
  'use strict';
  var TEXT_MAX = ${DASHBOARD_TEXT_MAX}, LIST_MAX = ${DASHBOARD_LIST_MAX}, STATE_MAX = ${DASHBOARD_STATE_MAX}, NODES_MAX = ${DASHBOARD_NODES_MAX};
  var ENT = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '\u0060': '&#96;', '=': '&#61;' };
  /** Text for HTML text or a quoted attribute value: strings and finite numbers only, escaped, cut. */
  function esc(v) {
    var t = typeof v === 'string' ? v : typeof v === 'number' && isFinite(v) ? String(v) : typeof v === 'boolean' ? String(v) : '';
    if (t.length > TEXT_MAX) t = t.slice(0, TEXT_MAX) + '\u2026';
    return t.replace(/[&<>"'\u0060=]/g, function (c) { return ENT[c]; });
  }
  /** A finite number, else 0 (strings holding a number count). */
  function num(v) {
    var n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
    return isFinite(n) ? n : 0;
  }
  function str(v) { return typeof v === 'string' ? v.slice(0, TEXT_MAX) : ''; }
  function arr(v) { return Array.isArray(v) ? v.slice(0, LIST_MAX) : []; }
  function obj(v) { return v !== null && typeof v === 'object' && !Array.isArray(v) ? v : {}; }
  function fix(v, d) { return num(v).toFixed(d); }
  function fmtMs(v) { if (typeof v !== 'number' || !isFinite(v)) return '\u2013'; return v < 1000 ? Math.round(v) + ' ms' : (v / 1000).toFixed(1) + ' s'; }
  function fmtUp(v) { var s = Math.max(0, Math.floor(num(v) / 1000)); if (s < 60) return s + 's'; var m = Math.floor(s / 60); if (m < 60) return m + 'm ' + (s % 60) + 's'; return Math.floor(m / 60) + 'h ' + (m % 60) + 'm'; }
  function fmtN(v) { var n = num(v); return n >= 1e6 ? (n / 1e6).toFixed(1) + 'M' : n >= 1e4 ? (n / 1e3).toFixed(1) + 'k' : String(Math.round(n)); }
  function peerClass(st) { return st === 'live' ? 'ok' : st === 'resyncing' || st === 'handshake' || st === 'connecting' ? 'warn' : 'bad'; }

  function newState() { return { last: new Map(), hist: new Map(), known: new Map() }; }
  /** Bounded maps: a map that would grow past STATE_MAX is emptied first (rates restart at 0). */
  function put(map, k, v) { if (!map.has(k) && map.size >= STATE_MAX) map.clear(); map.set(k, v); }
  function rate(state, key, total, time) {
    var p = state.last.get(key); put(state.last, key, { t: total, at: time });
    if (!p || time <= p.at || total < p.t) return 0;
    return (total - p.t) * 1000 / (time - p.at);
  }
  function spark(vals) {
    if (vals.length < 2) return '<svg class="spark"></svg>';
    var max = Math.max.apply(null, vals.concat([1])), w = 300, h = 36;
    var pts = vals.map(function (v, i) { return (i * w / (vals.length - 1)).toFixed(1) + ',' + (h - 2 - (v / max) * (h - 6)).toFixed(1); }).join(' ');
    return '<svg class="spark" viewBox="0 0 ' + w + ' ' + h + '" preserveAspectRatio="none"><polyline points="' + pts + '"></polyline></svg>';
  }
  function bar(pct) {
    var w = Math.max(0, Math.min(100, num(pct)));
    return '<svg class="bar" viewBox="0 0 100 8" preserveAspectRatio="none"><rect width="' + w.toFixed(1) + '" height="8"></rect></svg>';
  }

  /** A summary as the renderer uses it: every field typed, lists cut. */
  function summary(raw) {
    var s = obj(raw);
    return {
      node: str(s.node), time: num(s.time), uptimeMs: num(s.uptimeMs), ready: s.ready === true, connections: num(s.connections),
      peers: arr(s.peers).map(function (p) { p = obj(p); return { peer: str(p.peer), state: str(p.state), connected: p.connected === true, lagMs: p.lagMs, pending: num(p.pending) }; }),
      servers: arr(s.servers).map(function (x) {
        x = obj(x); var d = x.drain === undefined || x.drain === null ? null : obj(x.drain);
        return { backend: str(x.backend), server: str(x.server), health: x.health === 'up' ? 'up' : 'down', admin: x.admin === 'maint' || x.admin === 'drain' ? x.admin : 'ready',
          sticky: num(x.sticky), activeConns: num(x.activeConns), requests: num(x.requests), errors: num(x.errors),
          drain: d && !d.ended ? { bindings: num(d.bindings), remainingMs: d.remainingMs } : null };
      }),
      tables: arr(s.tables).map(function (t) { t = obj(t); return { id: str(t.id), live: num(t.live), capacity: num(t.capacity), evictions: num(t.evictions), expired: num(t.expired) }; }),
    };
  }

  function view(results, state, nowMs) {
    var res = arr(results).slice(0, NODES_MAX).map(function (r) { r = obj(r); return r.ok === true ? { origin: str(r.origin), ok: true, s: summary(r.s) } : { origin: str(r.origin), ok: false, error: str(r.error) }; });
    var up = res.filter(function (r) { return r.ok; });
    var byName = new Map();
    up.forEach(function (r) { byName.set(r.s.node, r); put(state.known, r.origin, r.s.node); });
    var names = [];
    function addName(n) { if (names.length < LIST_MAX && names.indexOf(n) < 0) names.push(n); }
    up.forEach(function (r) { addName(r.s.node); });
    up.forEach(function (r) { r.s.peers.forEach(function (p) { addName(p.peer); }); });
    res.forEach(function (r) { if (!r.ok && state.known.has(r.origin)) addName(state.known.get(r.origin)); });
    names.sort();
    var total = names.length, nUp = 0, clusterRps = 0, maxLag = 0;
    var cards = names.map(function (n) {
      var r = byName.get(n);
      var aliveByPeers = up.some(function (o) { return o.s.peers.some(function (p) { return p.peer === n && p.connected; }); });
      if (!r) {
        if (aliveByPeers) nUp++;
        var c = aliveByPeers ? 'warn' : 'bad';
        return '<div class="card' + (aliveByPeers ? '' : ' down') + '" data-testid="node" data-node="' + esc(n) + '"><div class="top"><span class="dot ' + c + '"></span><span class="name">' + esc(n) + '</span><span class="spacer"></span><span class="pill ' + c + '">' + (aliveByPeers ? 'admin unreachable' : 'down') + '</span></div>' +
          '<div class="mute small">' + (aliveByPeers ? 'seen live by its peers' : 'no peer has a session with it') + '</div></div>';
      }
      var s = r.s; nUp++;
      var reqs = s.servers.reduce(function (a, x) { return a + x.requests; }, 0);
      var rps = rate(state, 'node:' + n, reqs, s.time); clusterRps += rps;
      var h = (state.hist.get(n) || []).concat([rps]).slice(-60); put(state.hist, n, h);
      var peers = s.peers.map(function (p) {
        if (p.connected) maxLag = Math.max(maxLag, num(p.lagMs));
        return '<div class="peer" data-testid="peer" data-peer="' + esc(p.peer) + '" data-state="' + esc(p.state) + '"><span class="dot ' + peerClass(p.state) + '"></span><span class="pn">' + esc(p.peer) + ' <span class="mute small">' + esc(p.state) + '</span></span>' +
          '<span class="lag" title="replication lag">lag ' + fmtMs(p.lagMs) + '</span><span class="lag" title="unacknowledged updates">' + fmtN(p.pending) + ' pending</span></div>';
      }).join('');
      var rc = s.ready ? 'ok' : 'warn';
      return '<div class="card" data-testid="node" data-node="' + esc(n) + '"><div class="top"><span class="dot ' + rc + '"></span><span class="name">' + esc(n) + '</span><span class="spacer"></span><span class="pill ' + rc + '" data-testid="ready">' + (s.ready ? 'ready' : 'starting') + '</span></div>' +
        '<div class="stats"><span><b data-testid="rps">' + fix(rps, 1) + '</b> <span class="mute small">req/s</span></span><span><b>' + fmtN(s.connections) + '</b> <span class="mute small">conns</span></span><span class="mute small">up ' + fmtUp(s.uptimeMs) + '</span></div>' +
        spark(h) + (peers || '<div class="mute small">no peers</div>') + '</div>';
    });
    // Servers merged over nodes (tables are replicated, so sticky counts agree; rates add up).
    var srv = new Map(), order = [];
    up.forEach(function (r) { r.s.servers.forEach(function (x) {
      var k = x.backend + '/' + x.server;
      var m = srv.get(k);
      if (!m) { if (order.length >= LIST_MAX) return; m = { b: x.backend, n: x.server, health: [], admin: [], sticky: 0, conns: 0, rps: 0, errors: 0, drain: null }; srv.set(k, m); order.push(k); }
      m.health.push(x.health); m.admin.push(x.admin); m.sticky = Math.max(m.sticky, x.sticky); m.conns += x.activeConns; m.errors += x.errors;
      m.rps += rate(state, 'srv:' + r.s.node + ':' + k, x.requests, r.s.time);
      if (x.drain) m.drain = x.drain;
    }); });
    var maxSticky = Math.max.apply(null, order.map(function (k) { return srv.get(k).sticky; }).concat([1]));
    var stickyTotal = 0, usable = 0;
    var servers = order.map(function (k) {
      var m = srv.get(k); stickyTotal += m.sticky;
      var allUp = m.health.every(function (h) { return h === 'up'; }), anyUp = m.health.some(function (h) { return h === 'up'; });
      var adm = m.admin.indexOf('maint') >= 0 ? 'maint' : m.admin.indexOf('drain') >= 0 ? 'drain' : 'ready';
      if (anyUp && adm !== 'maint') usable++;
      var hc = allUp ? 'ok' : anyUp ? 'warn' : 'bad';
      var htxt = allUp ? 'up' : anyUp ? 'up on ' + m.health.filter(function (h) { return h === 'up'; }).length + '/' + m.health.length : 'down';
      var dr = m.drain ? ' <span class="mute small">' + fmtN(m.drain.bindings) + ' bindings left' + (typeof m.drain.remainingMs === 'number' ? ', ' + fmtMs(m.drain.remainingMs) : '') + '</span>' : '';
      return '<tr data-testid="server" data-server="' + esc(m.n) + '" data-health="' + (allUp ? 'up' : anyUp ? 'partial' : 'down') + '" data-admin="' + adm + '" data-sticky="' + fix(m.sticky, 0) + '">' +
        '<td><span class="mute">' + esc(m.b) + ' /</span> <b>' + esc(m.n) + '</b></td><td><span class="dot ' + hc + '"></span> ' + htxt + '</td><td><span class="badge ' + adm + '">' + adm + '</span>' + dr + '</td>' +
        '<td><div class="stickycell">' + bar(100 * m.sticky / maxSticky) + '<b data-testid="sticky">' + fmtN(m.sticky) + '</b></div></td>' +
        '<td>' + fmtN(m.conns) + '</td><td>' + fix(m.rps, 1) + '</td><td class="' + (m.errors ? 'err' : '') + '">' + fmtN(m.errors) + '</td></tr>';
    }).join('');
    var tables = up.map(function (r) { return r.s.tables.map(function (t) {
      var pct = t.capacity > 0 ? 100 * t.live / t.capacity : 0;
      return '<tr data-testid="table" data-table="' + esc(t.id) + '" data-node="' + esc(r.s.node) + '" data-live="' + fix(t.live, 0) + '"><td><b>' + esc(t.id) + '</b></td><td>' + esc(r.s.node) + '</td><td>' + fmtN(t.live) + ' <span class="mute small">/ ' + fmtN(t.capacity) + '</span></td>' +
        '<td>' + bar(Math.max(pct, t.live ? 1 : 0)) + '</td><td>' + fmtN(t.evictions) + '</td><td>' + fmtN(t.expired) + '</td></tr>';
    }).join(''); }).join('') || '<tr><td colspan="6" class="mute">no stick tables</td></tr>';
    var bad = res.filter(function (r) { return !r.ok; });
    var healthy = nUp === total && total > 0;
    return {
      nodes: cards.join(''), servers: servers, tables: tables,
      kpi: { nodes: nUp + ' / ' + total, rps: fix(clusterRps, 1), sticky: fmtN(stickyTotal), servers: usable + ' / ' + order.length, lag: fmtMs(maxLag) },
      status: { cls: 'pill ' + (healthy ? 'ok' : nUp > 0 ? 'warn' : 'bad'), text: healthy ? 'cluster healthy' : nUp > 0 ? 'cluster degraded' : 'unreachable' },
      banner: { show: bad.length > 0 && up.length === 0, text: bad.map(function (r) { return r.origin + ': ' + r.error; }).join(' \u00b7 ') },
      updated: 'updated ' + new Date(num(nowMs)).toLocaleTimeString(),
    };
  }

  /**
   * Origins to poll: \`self\` first, then the \`?nodes=\` entries that \`accepted\` holds (when any
   * were given), else \`siblings\`; each an origin, at most NODES_MAX.
   */
  function acceptNodes(self, nodesParam, siblings, accepted) {
    var ok = arr(accepted).filter(function (o) { return typeof o === 'string'; });
    var out = [self];
    var asked = typeof nodesParam === 'string' && nodesParam !== '' ? nodesParam.split(',') : null;
    var list = asked ? asked.map(function (x) { return x.trim().replace(/\\/+$/, '').toLowerCase(); }) : arr(siblings);
    list.forEach(function (o) { if (typeof o === 'string' && out.length < NODES_MAX && out.indexOf(o) < 0 && ok.indexOf(o) >= 0) out.push(o); });
    return out;
  }

  return { esc: esc, num: num, view: view, newState: newState, acceptNodes: acceptNodes };
})();
`;

/** The browser side: polling, the token, and writing `view`'s output into the page. */
export const DASHBOARD_APP_JS = `
(function () {
  'use strict';
  var D = StickmeshDashboard;
  var self = location.origin;
  var token;
  var m = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (m) { try { token = decodeURIComponent(m[1]); } catch (e) { token = m[1]; } }
  var nodesParam = new URLSearchParams(location.search).get('nodes');
  var origins = [self];
  var state = D.newState();
  function get(o) {
    var ctl = new AbortController(); var t = setTimeout(function () { ctl.abort(); }, 2500);
    var headers = {};
    // The token goes to this node's own origin only.
    if (token && o === self) headers.authorization = 'Bearer ' + token;
    var p;
    try { p = fetch(o + '/api/summary', { headers: headers, signal: ctl.signal, cache: 'no-store', credentials: 'omit' }); } catch (e) { p = Promise.reject(e); }
    return p.then(function (r) { clearTimeout(t); if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
      .then(function (j) { return { origin: o, ok: true, s: j }; }, function (e) { clearTimeout(t); return { origin: o, ok: false, error: String((e && e.message) || e) }; });
  }
  function discover() {
    var headers = token ? { authorization: 'Bearer ' + token } : {};
    var p;
    try { p = fetch(self + '/api/dashboard', { headers: headers, cache: 'no-store' }); } catch (e) { p = Promise.reject(e); }
    return p.then(function (r) { return r.ok ? r.json() : { siblings: [], accepted: [] }; })
      .then(function (j) { origins = D.acceptNodes(self, nodesParam, j && j.siblings, j && j.accepted); }, function () { origins = [self]; });
  }
  function set(id, text) { var el = document.getElementById(id); if (el) el.textContent = text; }
  function paint(res) {
    var v = D.view(res, state, Date.now());
    document.getElementById('nodes').innerHTML = v.nodes;
    document.getElementById('servers').innerHTML = v.servers;
    document.getElementById('tables').innerHTML = v.tables;
    set('k-nodes', v.kpi.nodes); set('k-rps', v.kpi.rps); set('k-sticky', v.kpi.sticky); set('k-servers', v.kpi.servers); set('k-lag', v.kpi.lag);
    var c = document.getElementById('cluster'); c.className = v.status.cls; c.textContent = v.status.text;
    var b = document.getElementById('banner'); b.hidden = !v.banner.show; b.textContent = v.banner.text;
    set('updated', v.updated);
    document.body.setAttribute('data-updated', String(Date.now()));
  }
  var polls = 0;
  function tick() {
    // The sibling list is asked again every 30 polls (a reload may change the peers).
    var before = polls++ % 30 === 0 ? discover() : Promise.resolve();
    before.then(function () { return Promise.all(origins.map(get)); }).then(paint).catch(function (e) { set('updated', 'error: ' + String((e && e.message) || e)); })
      .then(function () { setTimeout(tick, 1000); });
  }
  tick();
})();
`;

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>stickmesh · dashboard</title>
<link rel="stylesheet" href="/dashboard.css">
<script src="/dashboard.js" defer></script>
</head>
<body>
<header>
  <div class="logo">stick<span>mesh</span></div>
  <span id="cluster" class="pill" data-testid="cluster-status">connecting…</span>
  <div class="spacer"></div>
  <span class="mute small" id="updated"></span>
</header>
<div id="banner" hidden></div>
<main>
  <section class="kpis">
    <div class="kpi"><div class="v" id="k-nodes">–</div><div class="l">nodes up</div></div>
    <div class="kpi"><div class="v" id="k-rps">–</div><div class="l">requests / s (cluster)</div></div>
    <div class="kpi"><div class="v" id="k-sticky">–</div><div class="l">sticky sessions</div></div>
    <div class="kpi"><div class="v" id="k-servers">–</div><div class="l">servers usable</div></div>
    <div class="kpi"><div class="v" id="k-lag">–</div><div class="l">max replication lag</div></div>
  </section>
  <section><h2>Nodes and peers</h2><div class="nodes" id="nodes"></div></section>
  <section><h2>Servers</h2>
    <table data-testid="servers"><thead><tr><th>Backend / server</th><th>Health</th><th>State</th><th>Sticky sessions</th><th>Conns</th><th>Req/s</th><th>Errors</th></tr></thead><tbody id="servers"></tbody></table>
  </section>
  <section><h2>Stick tables</h2>
    <table data-testid="tables"><thead><tr><th>Table</th><th>Node</th><th>Entries</th><th>Fill</th><th>Evictions</th><th>Expired</th></tr></thead><tbody id="tables"></tbody></table>
  </section>
</main>
</body>
</html>
`;

export const DASHBOARD: DashboardAssets = { html: DASHBOARD_HTML, script: DASHBOARD_RENDER_JS + DASHBOARD_APP_JS, style: DASHBOARD_STYLE };
