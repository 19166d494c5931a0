/**
 * The live dashboard, served by the admin listener: a static page (`/`), its style
 * (`/dashboard.css`) and its script (`/dashboard.js`), under a CSP with no inline script, style or
 * handler, and `connect-src` limited to this listener and its trusted origins (admin.ts).
 *
 * The script polls `/api/summary` every second on this node and on its sibling nodes: the list
 * `/api/dashboard` of this node gives (its peers' admin listeners), or `?nodes=URL,URL` filtered
 * against the origins that list accepts (peers and `admin-allow-origin`). A token given as
 * `#token=...` is sent to this node's own origin only. When this node dies the page keeps the
 * list and shows the cluster from the nodes still answering, saying so; a node that stops
 * answering is asked again on a backoff (each refused fetch costs a console line in the browser).
 * A dead peer shows when data last came from it (`lastDataAt`), and a server's state and weight
 * show who set them (`adminSet`/`weightSet`: cluster-wide by a node, or a per-node override).
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
header{display:flex;flex-wrap:wrap;align-items:center;gap:8px 16px;padding:14px 24px;border-bottom:1px solid var(--line);background:#0b0f14;position:sticky;top:0;z-index:1}
.logo{font-weight:700;font-size:18px;letter-spacing:.3px}.logo span{color:var(--acc)}
.pill{padding:3px 10px;border-radius:999px;font-size:12px;font-weight:600;border:1px solid var(--line)}
.pill.ok{color:var(--ok);border-color:#238636;background:#0f2a17}.pill.warn{color:var(--warn);border-color:#9e6a03;background:#2b2111}.pill.bad{color:var(--bad);border-color:#da3633;background:#2d1214}
.spacer{flex:1}.mute{color:var(--mute)}.small{font-size:12px}
main{padding:20px 24px;display:grid;grid-template-columns:minmax(0,1fr);gap:20px;max-width:1400px;margin:0 auto}
main>section{min-width:0}
h2{font-size:13px;text-transform:uppercase;letter-spacing:.8px;color:var(--mute);margin:0 0 10px;font-weight:600}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(160px,1fr));gap:12px}
.kpi{background:var(--panel);border:1px solid var(--line);border-radius:10px;padding:12px 16px}
.kpi .v{font-size:26px;font-weight:700;font-variant-numeric:tabular-nums}.kpi .l{color:var(--mute);font-size:12px}
.nodes{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(300px,100%),1fr));gap:12px}
.card{background:var(--panel);border:1px solid var(--line);border-radius:10px;padding:14px 16px;min-width:0;overflow-wrap:anywhere}
.card.down{border-color:#da3633;opacity:.8}
.card .top{display:flex;align-items:center;gap:8px;margin-bottom:8px}.card .name{font-weight:700;font-size:16px}
.dot{width:9px;height:9px;border-radius:50%;display:inline-block;flex:none}.dot.ok{background:var(--ok);box-shadow:0 0 6px var(--ok)}.dot.warn{background:var(--warn)}.dot.bad{background:var(--bad)}
.stats{display:flex;flex-wrap:wrap;gap:4px 16px;margin:6px 0 10px;font-variant-numeric:tabular-nums}.stats b{font-size:16px}
.peer{display:flex;flex-wrap:wrap;align-items:center;gap:4px 8px;padding:4px 0;border-top:1px dashed var(--line);font-size:13px}
.peer .pn{flex:1}.peer .lag{font-variant-numeric:tabular-nums;color:var(--mute)}.peer .nodata{color:var(--warn)}
svg.spark{width:100%;height:36px;display:block}svg.spark polyline{fill:none;stroke:var(--acc);stroke-width:2}
.scroll{overflow-x:auto;background:var(--panel);border:1px solid var(--line);border-radius:10px}
table{width:100%;border-collapse:collapse}
th,td{text-align:left;padding:9px 12px;border-bottom:1px solid var(--line);font-variant-numeric:tabular-nums;white-space:nowrap;vertical-align:top}
th{color:var(--mute);font-weight:600;font-size:12px;text-transform:uppercase;letter-spacing:.5px;background:#11161d}
tr:last-child td{border-bottom:none}
th:first-child,td:first-child{position:sticky;left:0;background:var(--panel);z-index:1}th:first-child{background:#11161d}
.by{font-size:12px;color:var(--mute);margin-top:3px;min-width:180px;max-width:320px;white-space:normal}.by b{color:var(--text);font-weight:600}
.badge{padding:2px 8px;border-radius:6px;font-size:12px;font-weight:600}
.badge.ready{background:#0f2a17;color:var(--ok)}.badge.drain{background:#2b2111;color:var(--warn)}.badge.maint{background:#2d1214;color:var(--bad)}
svg.bar{display:block;width:100%;height:8px;background:#0b0f14;border-radius:4px;min-width:80px}svg.bar rect{fill:var(--acc)}
.stickycell{display:flex;align-items:center;gap:8px}.stickycell svg.bar{flex:1}
.err{color:var(--bad)}
#banner{padding:10px 24px;background:#2d1214;color:var(--bad);border-bottom:1px solid #da3633;overflow-wrap:anywhere}
#origin{padding:10px 24px;background:#2b2111;color:var(--warn);border-bottom:1px solid #9e6a03;overflow-wrap:anywhere}
@media (max-width:640px){
header{padding:10px 12px}#banner,#origin{padding:8px 12px}
main{padding:12px;gap:14px}
.kpis{grid-template-columns:repeat(2,minmax(0,1fr));gap:8px}.kpi{padding:8px 12px}.kpi .v{font-size:20px}
th,td{padding:7px 8px}
}
`;

/**
 * Defines `StickmeshDashboard = { esc, num, view, newState, acceptNodes, liveNames, newSchedule, due,
 * record, waiting, BACKOFF_MS }`; no DOM, no globals read.
 * `view(results, state, nowMs, self)` takes poll results (`{ origin, ok, s | error }`) and returns
 * `{ nodes, servers, tables }` (HTML strings) and texts for the KPIs, status, banner and the notice
 * that the page's own node (`self`) is down; `newSchedule`, `due`, `record` and `waiting` are the
 * poll schedule (backoff of origins that stop answering), `liveNames` the peers seen live.
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
  function pad2(n) { return (n < 10 ? '0' : '') + n; }
  /** HH:MM:SS of a wall time in ms, in the browser's time zone. */
  function fmtClock(t) { var d = new Date(num(t)); return isFinite(d.getTime()) ? pad2(d.getHours()) + ':' + pad2(d.getMinutes()) + ':' + pad2(d.getSeconds()) : '\u2013'; }
  function fmtAgo(ms) {
    var s = Math.floor(num(ms) / 1000);
    if (s < 5) return 'just now';
    if (s < 60) return s + ' s ago';
    var m = Math.floor(s / 60); if (m < 60) return m + ' min ago';
    var h = Math.floor(m / 60); return h < 48 ? h + ' h ago' : Math.floor(h / 24) + ' d ago';
  }
  /** An \`adminSet\`/\`weightSet\` value: \`{ scope, node, at }\`, or null when absent or malformed (older nodes send none). */
  function setBy(v) {
    v = obj(v);
    var sc = v.scope === 'cluster' || v.scope === 'node' || v.scope === 'config' ? v.scope : '';
    return sc ? { scope: sc, node: str(v.node), at: num(v.at) } : null;
  }
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
      peers: arr(s.peers).map(function (p) { p = obj(p); return { peer: str(p.peer), state: str(p.state), connected: p.connected === true, lagMs: p.lagMs, pending: num(p.pending), lastDataAt: Math.max(0, num(p.lastDataAt)) }; }),
      servers: arr(s.servers).map(function (x) {
        x = obj(x); var d = x.drain === undefined || x.drain === null ? null : obj(x.drain);
        return { backend: str(x.backend), server: str(x.server), health: x.health === 'up' ? 'up' : 'down', admin: x.admin === 'maint' || x.admin === 'drain' ? x.admin : 'ready',
          sticky: num(x.sticky), activeConns: num(x.activeConns), requests: num(x.requests), errors: num(x.errors),
          weight: typeof x.weight === 'number' && isFinite(x.weight) ? x.weight : null, adminSet: setBy(x.adminSet), weightSet: setBy(x.weightSet),
          drain: d && !d.ended ? { bindings: num(d.bindings), remainingMs: d.remainingMs } : null,
          drained: d && (d.ended === 'no-bindings' || d.ended === 'deadline') ? d.ended : '' };
      }),
      tables: arr(s.tables).map(function (t) { t = obj(t); return { id: str(t.id), live: num(t.live), capacity: num(t.capacity), evictions: num(t.evictions), expired: num(t.expired) }; }),
    };
  }

  /** Who set a server's state or weight, from the nodes' \`adminSet\`/\`weightSet\` (\`which\`): lines of text and the scope shown. */
  function attribution(m, which, selfName) {
    var cl = null, ov = [], conf = false;
    m.per.forEach(function (p) {
      var by = p[which + 'Set'];
      if (!by) return;
      if (by.scope === 'cluster' && (!cl || by.at > cl.by.at)) cl = { p: p, by: by };
      else if (by.scope === 'node') ov.push({ p: p, by: by });
      else if (by.scope === 'config') conf = true;
    });
    var what = function (p) { return which === 'admin' ? p.admin : 'weight ' + fix(p.weight, 0); };
    var lines = [];
    if (cl) {
      var same = which === 'admin' ? cl.p.admin === m.adm : true;
      lines.push('<div class="by" data-testid="' + which + '-by" data-scope="cluster" data-by="' + esc(cl.by.node) + '">' + (same ? esc(what(cl.p)) : esc(what(cl.p)) + ' cluster-wide') +
        ' \\u2014 set by <b>' + esc(cl.by.node) + '</b> ' + fmtAgo(cl.p.time - cl.by.at) + '</div>');
    }
    ov.slice(0, 8).forEach(function (o) {
      var here = selfName !== '' && o.p.node === selfName;
      lines.push('<div class="by" data-testid="' + which + '-by" data-scope="node" data-by="' + esc(o.p.node) + '">' + esc(what(o.p)) + (here ? '' : ' on <b>' + esc(o.p.node) + '</b>') +
        ' \\u2014 override on ' + (here ? 'this node' : 'that node only') + ', ' + fmtAgo(o.p.time - o.by.at) + '</div>');
    });
    if (!cl && ov.length === 0 && conf && which === 'admin' && m.adm !== 'ready') lines.push('<div class="by" data-testid="admin-by" data-scope="config">from the config</div>');
    return { html: lines.join(''), scope: ov.length ? 'node' : cl ? 'cluster' : conf ? 'config' : '' };
  }

  /** Live peer sessions seen by the nodes that answered: the names of nodes some node talks to now. */
  function liveNames(results) {
    var out = new Set();
    arr(results).forEach(function (r) { r = obj(r); if (r.ok === true) summary(r.s).peers.forEach(function (p) { if (p.connected) out.add(p.peer); }); });
    return out;
  }

  /**
   * \`results\`: poll results \`{ origin, ok, s }\` or \`{ origin, ok: false, error, since }\`; \`self\`:
   * the origin that served the page (its outage is announced in \`origin\`).
   */
  function view(results, state, nowMs, self) {
    self = str(self);
    var res = arr(results).slice(0, NODES_MAX).map(function (r) { r = obj(r); return r.ok === true ? { origin: str(r.origin), ok: true, s: summary(r.s) } : { origin: str(r.origin), ok: false, error: str(r.error), since: num(r.since) }; });
    var up = res.filter(function (r) { return r.ok; });
    var byName = new Map();
    up.forEach(function (r) { byName.set(r.s.node, r); put(state.known, r.origin, r.s.node); });
    var selfName = self !== '' && state.known.has(self) ? str(state.known.get(self)) : '';
    var names = [];
    function addName(n) { if (names.length < LIST_MAX && names.indexOf(n) < 0) names.push(n); }
    up.forEach(function (r) { addName(r.s.node); });
    up.forEach(function (r) { r.s.peers.forEach(function (p) { addName(p.peer); }); });
    res.forEach(function (r) { if (!r.ok && state.known.has(r.origin)) addName(state.known.get(r.origin)); });
    names.sort();
    var total = names.length, nUp = 0, clusterRps = 0, maxLag = 0;
    var cards = names.map(function (n) {
      var r = byName.get(n);
      var aliveByPeers = false, heard = 0, heardBy = '';
      up.forEach(function (o) { o.s.peers.forEach(function (p) {
        if (p.peer !== n) return;
        if (p.connected) aliveByPeers = true;
        if (p.lastDataAt > heard) { heard = p.lastDataAt; heardBy = o.s.node; }
      }); });
      if (!r) {
        if (aliveByPeers) nUp++;
        var c = aliveByPeers ? 'warn' : 'bad';
        var why = aliveByPeers ? 'seen live by its peers' : heard > 0 ? 'no data since ' + fmtClock(heard) + ' (last heard by ' + esc(heardBy) + ')' : 'no peer has a session with it';
        return '<div class="card' + (aliveByPeers ? '' : ' down') + '" data-testid="node" data-node="' + esc(n) + '"><div class="top"><span class="dot ' + c + '"></span><span class="name">' + esc(n) + '</span><span class="spacer"></span><span class="pill ' + c + '">' + (aliveByPeers ? 'admin unreachable' : 'down') + '</span></div>' +
          '<div class="mute small" data-testid="why">' + why + '</div></div>';
      }
      var s = r.s; nUp++;
      var reqs = s.servers.reduce(function (a, x) { return a + x.requests; }, 0);
      var rps = rate(state, 'node:' + n, reqs, s.time); clusterRps += rps;
      var h = (state.hist.get(n) || []).concat([rps]).slice(-60); put(state.hist, n, h);
      var peers = s.peers.map(function (p) {
        if (p.connected) maxLag = Math.max(maxLag, num(p.lagMs));
        // A peer without a session has no lag or pending count worth showing: when it was last heard is what matters
        // (a peer never heard from, or a node too old to say, shows just that it has no session).
        var tail = p.connected
          ? '<span class="lag" title="replication lag">lag ' + fmtMs(p.lagMs) + '</span><span class="lag" title="unacknowledged updates">' + fmtN(p.pending) + ' pending</span>'
          : '<span class="lag nodata" data-testid="nodata">' + (p.lastDataAt > 0 ? 'no data since ' + fmtClock(p.lastDataAt) : 'no session') + '</span>';
        return '<div class="peer" data-testid="peer" data-peer="' + esc(p.peer) + '" data-state="' + esc(p.state) + '"><span class="dot ' + peerClass(p.state) + '"></span><span class="pn">' + esc(p.peer) + ' <span class="mute small">' + esc(p.state) + '</span></span>' + tail + '</div>';
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
      if (!m) { if (order.length >= LIST_MAX) return; m = { b: x.backend, n: x.server, health: [], admin: [], per: [], sticky: 0, conns: 0, rps: 0, errors: 0, drain: null }; srv.set(k, m); order.push(k); }
      m.health.push(x.health); m.admin.push(x.admin); m.sticky = Math.max(m.sticky, x.sticky); m.conns += x.activeConns; m.errors += x.errors;
      if (m.per.length < NODES_MAX) m.per.push({ node: r.s.node, time: r.s.time, admin: x.admin, adminSet: x.adminSet, weight: x.weight, weightSet: x.weightSet });
      m.rps += rate(state, 'srv:' + r.s.node + ':' + k, x.requests, r.s.time);
      if (x.drain) m.drain = x.drain;
      if (x.drained && x.admin === 'maint') m.drained = x.drained;
    }); });
    var maxSticky = Math.max.apply(null, order.map(function (k) { return srv.get(k).sticky; }).concat([1]));
    var stickyTotal = 0, usable = 0;
    var servers = order.map(function (k) {
      var m = srv.get(k); stickyTotal += m.sticky;
      var allUp = m.health.every(function (h) { return h === 'up'; }), anyUp = m.health.some(function (h) { return h === 'up'; });
      var adm = m.admin.indexOf('maint') >= 0 ? 'maint' : m.admin.indexOf('drain') >= 0 ? 'drain' : 'ready';
      m.adm = adm;
      if (anyUp && adm !== 'maint') usable++;
      var hc = allUp ? 'ok' : anyUp ? 'warn' : 'bad';
      var htxt = allUp ? 'up' : anyUp ? 'up on ' + m.health.filter(function (h) { return h === 'up'; }).length + '/' + m.health.length : 'down';
      var dr = m.drain ? ' <span class="mute small">' + fmtN(m.drain.bindings) + ' bindings left' + (typeof m.drain.remainingMs === 'number' ? ', ' + fmtMs(m.drain.remainingMs) : '') + '</span>'
        : adm === 'maint' && m.drained ? ' <span class="mute small" data-testid="drained">after drain: ' + (m.drained === 'deadline' ? 'deadline passed' : 'no bindings left') + '</span>' : '';
      var aa = attribution(m, 'admin', selfName), wa = attribution(m, 'weight', selfName);
      return '<tr data-testid="server" data-server="' + esc(m.n) + '" data-health="' + (allUp ? 'up' : anyUp ? 'partial' : 'down') + '" data-admin="' + adm + '" data-scope="' + aa.scope + '" data-sticky="' + fix(m.sticky, 0) + '">' +
        '<td><span class="mute">' + esc(m.b) + ' /</span> <b>' + esc(m.n) + '</b></td><td><span class="dot ' + hc + '"></span> ' + htxt + '</td><td><span class="badge ' + adm + '">' + adm + '</span>' + dr + aa.html + wa.html + '</td>' +
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
    // The page's own node not answering: say so, and from which nodes the page now reads.
    var selfRes = self === '' ? undefined : res.filter(function (r) { return r.origin === self; })[0];
    var reading = up.map(function (r) { return r.s.node; }).filter(function (n, i, a) { return a.indexOf(n) === i; }).slice(0, 8);
    var origin = { down: !!selfRes && !selfRes.ok, reading: reading.join(','), text: '' };
    if (origin.down) {
      origin.text = (selfName !== '' ? selfName + ' (' + self + ')' : self) + ', the node that served this page, ' +
        (selfRes.since > 0 ? 'has not answered since ' + fmtClock(selfRes.since) : 'is not answering') + ': ' +
        (reading.length ? 'reading the cluster from ' + reading.join(', ') : 'no other node answers either');
    }
    return {
      nodes: cards.join(''), servers: servers, tables: tables,
      kpi: { nodes: nUp + ' / ' + total, rps: fix(clusterRps, 1), sticky: fmtN(stickyTotal), servers: usable + ' / ' + order.length, lag: fmtMs(maxLag) },
      status: { cls: 'pill ' + (healthy ? 'ok' : nUp > 0 ? 'warn' : 'bad'), text: healthy ? 'cluster healthy' : nUp > 0 ? 'cluster degraded' : 'unreachable' },
      banner: { show: bad.length > 0 && up.length === 0, text: bad.map(function (r) { return r.origin + ': ' + r.error; }).join(' \\u00b7 ') },
      origin: origin,
      updated: 'updated ' + fmtClock(nowMs),
    };
  }

  /**
   * Poll schedule of the origins, \`origin -> { fails, since, next, error, rearmed }\` for the ones
   * not answering (an answering origin has no entry). A failed origin is asked again after
   * BACKOFF_MS[fails - 1] (the last step repeats), or at once when a node that answers reports a
   * live peer session with it again after having seen it without one: each retry costs the browser
   * a network error line in its console, so a dead node is not asked every second.
   * Bound: one entry per origin polled (at most NODES_MAX at a time), kept with \`put\`.
   */
  var BACKOFF_MS = [5000, 10000, 20000, 30000];
  function newSchedule() { return new Map(); }
  /** True when \`o\` should be asked now; \`seenLive\`: a node that answers has a live peer session with it. */
  function due(sched, o, now, seenLive) {
    var e = sched.get(o);
    if (!e) return true;
    if (!seenLive) { e.rearmed = true; return now >= e.next; }
    if (e.rearmed) { e.rearmed = false; return true; }
    return now >= e.next;
  }
  /** Notes a poll of \`o\`: returns 'down' when it just stopped answering, 'back' when it answers again, else ''. */
  function record(sched, o, ok, now, error) {
    var e = sched.get(o);
    if (ok) { if (!e) return ''; sched.delete(o); return 'back'; }
    var first = !e;
    // Not re-armed at first: peers may still report the session of a node that just died.
    if (first) { e = { fails: 0, since: now, next: 0, error: '', rearmed: false }; put(sched, o, e); }
    e.fails++; e.error = str(error); e.next = now + BACKOFF_MS[Math.min(e.fails, BACKOFF_MS.length) - 1];
    return first ? 'down' : '';
  }
  /** The poll result of an origin not asked this round (waiting out its backoff). */
  function waiting(sched, o) {
    var e = sched.get(o);
    return { origin: o, ok: false, error: e ? e.error : 'not asked', since: e ? e.since : 0 };
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

  return { esc: esc, num: num, view: view, newState: newState, acceptNodes: acceptNodes, liveNames: liveNames, newSchedule: newSchedule, due: due, record: record, waiting: waiting, BACKOFF_MS: BACKOFF_MS };
})();
`;

/**
 * The browser side: polling, the token, and writing `view`'s output into the page.
 *
 * Every origin is polled each second while it answers. One that stops answering is logged once to
 * the console (console.error), then asked again on the backoff of `due` (or when its peers see it
 * live again) and logged once more when it is back (console.info). The list of origins is asked of
 * this node every 30 polls while it answers; when it does not, the last list is kept, so the page
 * goes on showing the cluster from the nodes that still answer.
 */
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
  var sched = D.newSchedule();
  var live = new Set();
  function message(e) { return String((e && e.message) || e); }
  function get(o) {
    var ctl = new AbortController(); var t = setTimeout(function () { ctl.abort(); }, 2500);
    var headers = {};
    // The token goes to this node's own origin only.
    if (token && o === self) headers.authorization = 'Bearer ' + token;
    var p;
    try { p = fetch(o + '/api/summary', { headers: headers, signal: ctl.signal, cache: 'no-store', credentials: 'omit' }); } catch (e) { p = Promise.reject(e); }
    return p.then(function (r) { clearTimeout(t); if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
      .then(function (j) { return { origin: o, ok: true, s: j }; }, function (e) { clearTimeout(t); return { origin: o, ok: false, error: message(e) }; });
  }
  function note(o, ok, error) {
    var now = Date.now();
    var name = state.known.get(o);
    var who = (name ? name + ' (' + o + ')' : o) + (o === self ? ', the node that served this page,' : '');
    var ch = D.record(sched, o, ok, now, error);
    if (ch === 'down') console.error('stickmesh dashboard: ' + who + ' is not answering (' + error + '); asking it again after ' + D.BACKOFF_MS[0] / 1000 + ' s, backing off to ' + D.BACKOFF_MS[D.BACKOFF_MS.length - 1] / 1000 + ' s');
    else if (ch === 'back') console.info('stickmesh dashboard: ' + who + ' answers again');
  }
  /** Asks this node for the origins to poll; resolves false when it does not answer (the list is kept). */
  function discover() {
    var headers = token ? { authorization: 'Bearer ' + token } : {};
    var p;
    try { p = fetch(self + '/api/dashboard', { headers: headers, cache: 'no-store' }); } catch (e) { p = Promise.reject(e); }
    return p.then(function (r) { return r.ok ? r.json() : { siblings: [], accepted: [] }; })
      .then(function (j) { origins = D.acceptNodes(self, nodesParam, j && j.siblings, j && j.accepted); return true; }, function (e) { note(self, false, message(e)); return false; });
  }
  function set(id, text) { var el = document.getElementById(id); if (el) el.textContent = text; }
  function paint(res) {
    var v = D.view(res, state, Date.now(), self);
    document.getElementById('nodes').innerHTML = v.nodes;
    document.getElementById('servers').innerHTML = v.servers;
    document.getElementById('tables').innerHTML = v.tables;
    set('k-nodes', v.kpi.nodes); set('k-rps', v.kpi.rps); set('k-sticky', v.kpi.sticky); set('k-servers', v.kpi.servers); set('k-lag', v.kpi.lag);
    var c = document.getElementById('cluster'); c.className = v.status.cls; c.textContent = v.status.text;
    var b = document.getElementById('banner'); b.hidden = !v.banner.show; b.textContent = v.banner.text;
    var o = document.getElementById('origin'); o.hidden = !v.origin.down || v.banner.show; o.textContent = v.origin.text; o.setAttribute('data-reading', v.origin.reading);
    set('updated', v.updated);
    document.body.setAttribute('data-updated', String(Date.now()));
  }
  var polls = 0;
  function tick() {
    // The origin list is asked again every 30 polls (a reload may change the peers), of this node only while it answers.
    var ask = polls++ % 30 === 0 && !sched.has(self);
    var before = ask ? discover() : Promise.resolve(true);
    before.then(function () {
      var now = Date.now();
      return Promise.all(origins.map(function (o) {
        if (!D.due(sched, o, now, live.has(state.known.get(o)))) return D.waiting(sched, o);
        return get(o).then(function (r) { note(o, r.ok, r.error); return r.ok ? r : D.waiting(sched, o); });
      }));
    }).then(function (res) { live = D.liveNames(res); paint(res); })
      .catch(function (e) { set('updated', 'error: ' + message(e)); })
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
<div id="origin" data-testid="origin-notice" hidden></div>
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
    <div class="scroll"><table data-testid="servers"><thead><tr><th>Backend / server</th><th>Health</th><th>State</th><th>Sticky sessions</th><th>Conns</th><th>Req/s</th><th>Errors</th></tr></thead><tbody id="servers"></tbody></table></div>
  </section>
  <section><h2>Stick tables</h2>
    <div class="scroll"><table data-testid="tables"><thead><tr><th>Table</th><th>Node</th><th>Entries</th><th>Fill</th><th>Evictions</th><th>Expired</th></tr></thead><tbody id="tables"></tbody></table></div>
  </section>
</main>
</body>
</html>
`;

export const DASHBOARD: DashboardAssets = { html: DASHBOARD_HTML, script: DASHBOARD_RENDER_JS + DASHBOARD_APP_JS, style: DASHBOARD_STYLE };
