/**
 * The live dashboard: one self-contained HTML page (inline CSS and JS, no external resources)
 * served by the admin listener at `/`. It polls `/api/summary` of this node every second, and of
 * its sibling nodes too: those given as `?nodes=URL,URL`, otherwise `http://PEER_HOST:THIS_PORT`
 * for every peer whose host differs from this page's (the layout of the `npm start` demo). A token
 * for non-loopback listeners is taken from the URL fragment `#token=...` and sent as a bearer token.
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>stickmesh · dashboard</title>
<style>
:root{--bg:#0d1117;--panel:#161b22;--line:#262c36;--text:#e6edf3;--mute:#8b949e;--ok:#3fb950;--warn:#d29922;--bad:#f85149;--acc:#58a6ff;--acc2:#bc8cff}
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
svg.spark{width:100%;height:36px;display:block}
table{width:100%;border-collapse:collapse;background:var(--panel);border:1px solid var(--line);border-radius:10px;overflow:hidden}
th,td{text-align:left;padding:9px 12px;border-bottom:1px solid var(--line);font-variant-numeric:tabular-nums}
th{color:var(--mute);font-weight:600;font-size:12px;text-transform:uppercase;letter-spacing:.5px;background:#11161d}
tr:last-child td{border-bottom:none}
.badge{padding:2px 8px;border-radius:6px;font-size:12px;font-weight:600}
.badge.ready{background:#0f2a17;color:var(--ok)}.badge.drain{background:#2b2111;color:var(--warn)}.badge.maint{background:#2d1214;color:var(--bad)}
.bar{height:8px;background:#0b0f14;border-radius:4px;overflow:hidden;min-width:80px}.bar i{display:block;height:100%;background:linear-gradient(90deg,var(--acc),var(--acc2))}
.err{color:var(--bad)}
#banner{display:none;padding:10px 24px;background:#2d1214;color:var(--bad);border-bottom:1px solid #da3633}
</style>
</head>
<body>
<header>
  <div class="logo">stick<span>mesh</span></div>
  <span id="cluster" class="pill" data-testid="cluster-status">connecting…</span>
  <div class="spacer"></div>
  <span class="mute small" id="updated"></span>
</header>
<div id="banner"></div>
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
<script>
(function(){
  var params = new URLSearchParams(location.search);
  var token = (location.hash.match(/token=([^&]+)/) || [])[1];
  var self = location.origin;
  var explicit = (params.get('nodes') || '').split(',').map(function(s){return s.trim().replace(/\\/$/,'');}).filter(Boolean).slice(0, 32);
  var origins = explicit.length ? explicit : [self];
  var last = {}; var hist = {}; var known = {};
  function esc(s){return String(s == null ? '' : s).replace(/[&<>"']/g,function(c){return {'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c];});}
  function fmtMs(ms){ if(ms == null) return '–'; if(ms < 1000) return Math.round(ms)+' ms'; return (ms/1000).toFixed(1)+' s'; }
  function fmtUp(ms){ var s=Math.floor(ms/1000); if(s<60) return s+'s'; var m=Math.floor(s/60); if(m<60) return m+'m '+(s%60)+'s'; return Math.floor(m/60)+'h '+(m%60)+'m'; }
  function fmtN(n){ return n >= 1e6 ? (n/1e6).toFixed(1)+'M' : n >= 1e4 ? (n/1e3).toFixed(1)+'k' : String(Math.round(n)); }
  function peerClass(st){ return st === 'live' ? 'ok' : st === 'resyncing' || st === 'handshake' || st === 'connecting' ? 'warn' : 'bad'; }
  function get(o){
    var ctl = new AbortController(); var t = setTimeout(function(){ctl.abort();}, 2500);
    return fetch(o + '/api/summary', {headers: token ? {authorization: 'Bearer ' + decodeURIComponent(token)} : {}, signal: ctl.signal, cache: 'no-store'})
      .then(function(r){ clearTimeout(t); if(!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
      .then(function(j){ return {origin:o, ok:true, s:j}; }, function(e){ return {origin:o, ok:false, error:String(e.message||e)}; });
  }
  function discover(sums){
    if (explicit.length) return;
    var port = location.port;
    sums.forEach(function(r){ if(!r.ok) return; (r.s.peers||[]).forEach(function(p){
      if(!p.host || p.host === location.hostname) return;
      var o = location.protocol + '//' + (p.host.indexOf(':') >= 0 ? '[' + p.host + ']' : p.host) + (port ? ':' + port : '');
      if (origins.indexOf(o) < 0 && origins.length < 32) origins.push(o);
    }); });
  }
  function rate(key, total, time){
    var p = last[key]; last[key] = {t: total, at: time};
    if(!p || time <= p.at || total < p.t) return 0;
    return (total - p.t) * 1000 / (time - p.at);
  }
  function spark(vals){
    if(vals.length < 2) return '<svg class="spark"></svg>';
    var max = Math.max.apply(null, vals.concat([1])); var w = 300, h = 36;
    var pts = vals.map(function(v,i){ return (i*w/(vals.length-1)).toFixed(1)+','+(h-2-(v/max)*(h-6)).toFixed(1); }).join(' ');
    return '<svg class="spark" viewBox="0 0 '+w+' '+h+'" preserveAspectRatio="none"><polyline fill="none" stroke="#58a6ff" stroke-width="2" points="'+pts+'"/></svg>';
  }
  function render(res){
    var up = res.filter(function(r){return r.ok;});
    var byName = {};
    up.forEach(function(r){ byName[r.s.node] = r; known[r.origin] = r.s.node; });
    // Nodes a reachable node knows as peers but we cannot reach directly.
    var names = up.map(function(r){return r.s.node;});
    up.forEach(function(r){ (r.s.peers||[]).forEach(function(p){ if(names.indexOf(p.peer) < 0) names.push(p.peer); }); });
    res.forEach(function(r){ if(!r.ok && known[r.origin] && names.indexOf(known[r.origin]) < 0) names.push(known[r.origin]); });
    names.sort();
    var total = names.length; var nUp = 0; var clusterRps = 0; var maxLag = 0;
    var cards = names.map(function(n){
      var r = byName[n];
      var seen = up.map(function(o){ return (o.s.peers||[]).filter(function(p){return p.peer === n;})[0]; }).filter(Boolean);
      var aliveByPeers = seen.some(function(p){ return p.connected; });
      if(!r){
        if(aliveByPeers) nUp++;
        return '<div class="card '+(aliveByPeers?'':'down')+'" data-testid="node" data-node="'+esc(n)+'"><div class="top"><span class="dot '+(aliveByPeers?'warn':'bad')+'"></span><span class="name">'+esc(n)+'</span><span class="spacer"></span><span class="pill '+(aliveByPeers?'warn':'bad')+'">'+(aliveByPeers?'admin unreachable':'down')+'</span></div>'+
          '<div class="mute small">'+(aliveByPeers?'seen live by its peers':'no peer has a session with it')+'</div></div>';
      }
      var s = r.s; nUp++;
      var reqs = s.servers.reduce(function(a,x){return a + x.requests;}, 0);
      var rps = rate('node:'+n, reqs, s.time); clusterRps += rps;
      var h = hist[n] = (hist[n] || []).concat([rps]).slice(-60);
      var peers = (s.peers||[]).map(function(p){
        if (p.connected) maxLag = Math.max(maxLag, p.lagMs||0);
        return '<div class="peer" data-testid="peer" data-peer="'+esc(p.peer)+'" data-state="'+esc(p.state)+'"><span class="dot '+peerClass(p.state)+'"></span><span class="pn">'+esc(p.peer)+' <span class="mute small">'+esc(p.state)+'</span></span>'+
          '<span class="lag" title="replication lag">lag '+fmtMs(p.lagMs)+'</span><span class="lag" title="unacknowledged updates">'+esc(p.pending)+' pending</span></div>';
      }).join('');
      return '<div class="card" data-testid="node" data-node="'+esc(n)+'"><div class="top"><span class="dot '+(s.ready?'ok':'warn')+'"></span><span class="name">'+esc(n)+'</span><span class="spacer"></span><span class="pill '+(s.ready?'ok':'warn')+'" data-testid="ready">'+(s.ready?'ready':'starting')+'</span></div>'+
        '<div class="stats"><span><b data-testid="rps">'+rps.toFixed(1)+'</b> <span class="mute small">req/s</span></span><span><b>'+esc(s.connections)+'</b> <span class="mute small">conns</span></span><span class="mute small">up '+fmtUp(s.uptimeMs)+'</span></div>'+
        spark(h) + (peers || '<div class="mute small">no peers</div>') + '</div>';
    });
    document.getElementById('nodes').innerHTML = cards.join('');
    // Servers: merged over nodes (tables are replicated, so sticky counts agree; rates add up).
    var srv = {}; var order = [];
    up.forEach(function(r){ r.s.servers.forEach(function(x){
      var k = x.backend + '/' + x.server;
      if(!srv[k]){ srv[k] = {b:x.backend, n:x.server, health:[], admin:[], sticky:0, conns:0, rps:0, errors:0, drain:null}; order.push(k); }
      var m = srv[k]; m.health.push(x.health); m.admin.push(x.admin); m.sticky = Math.max(m.sticky, x.sticky); m.conns += x.activeConns; m.errors += x.errors;
      m.rps += rate('srv:'+r.s.node+':'+k, x.requests, r.s.time);
      if(x.drain && !x.drain.ended) m.drain = x.drain;
    }); });
    var maxSticky = Math.max.apply(null, order.map(function(k){return srv[k].sticky;}).concat([1]));
    var stickyTotal = 0; var usable = 0;
    document.getElementById('servers').innerHTML = order.map(function(k){
      var m = srv[k]; stickyTotal += m.sticky;
      var allUp = m.health.every(function(h){return h === 'up';}); var anyUp = m.health.some(function(h){return h === 'up';});
      var adm = m.admin.indexOf('maint') >= 0 ? 'maint' : m.admin.indexOf('drain') >= 0 ? 'drain' : 'ready';
      if(anyUp && adm !== 'maint') usable++;
      var hc = allUp ? 'ok' : anyUp ? 'warn' : 'bad';
      var htxt = allUp ? 'up' : anyUp ? 'up on ' + m.health.filter(function(h){return h==='up';}).length + '/' + m.health.length : 'down';
      var dr = m.drain ? ' <span class="mute small">'+esc(m.drain.bindings)+' bindings left'+(m.drain.remainingMs != null ? ', ' + fmtMs(m.drain.remainingMs) : '')+'</span>' : '';
      return '<tr data-testid="server" data-server="'+esc(m.n)+'" data-health="'+(allUp?'up':anyUp?'partial':'down')+'" data-admin="'+adm+'" data-sticky="'+m.sticky+'">'+
        '<td><span class="mute">'+esc(m.b)+' /</span> <b>'+esc(m.n)+'</b></td><td><span class="dot '+hc+'"></span> '+htxt+'</td><td><span class="badge '+adm+'">'+adm+'</span>'+dr+'</td>'+
        '<td><div style="display:flex;align-items:center;gap:8px"><div class="bar" style="flex:1"><i style="width:'+(100*m.sticky/maxSticky).toFixed(0)+'%"></i></div><b data-testid="sticky">'+fmtN(m.sticky)+'</b></div></td>'+
        '<td>'+m.conns+'</td><td>'+m.rps.toFixed(1)+'</td><td class="'+(m.errors?'err':'')+'">'+fmtN(m.errors)+'</td></tr>';
    }).join('');
    document.getElementById('tables').innerHTML = up.map(function(r){ return r.s.tables.map(function(t){
      var pct = t.capacity ? 100 * t.live / t.capacity : 0;
      return '<tr data-testid="table" data-table="'+esc(t.id)+'" data-node="'+esc(r.s.node)+'" data-live="'+t.live+'"><td><b>'+esc(t.id)+'</b></td><td>'+esc(r.s.node)+'</td><td>'+fmtN(t.live)+' <span class="mute small">/ '+fmtN(t.capacity)+'</span></td>'+
        '<td><div class="bar"><i style="width:'+Math.max(pct, t.live ? 1 : 0).toFixed(1)+'%"></i></div></td><td>'+fmtN(t.evictions)+'</td><td>'+fmtN(t.expired)+'</td></tr>';
    }).join(''); }).join('') || '<tr><td colspan="6" class="mute">no stick tables</td></tr>';
    document.getElementById('k-nodes').textContent = nUp + ' / ' + total;
    document.getElementById('k-rps').textContent = clusterRps.toFixed(1);
    document.getElementById('k-sticky').textContent = fmtN(stickyTotal);
    document.getElementById('k-servers').textContent = usable + ' / ' + order.length;
    document.getElementById('k-lag').textContent = fmtMs(maxLag);
    var c = document.getElementById('cluster');
    c.className = 'pill ' + (nUp === total && total > 0 ? 'ok' : nUp > 0 ? 'warn' : 'bad');
    c.textContent = nUp === total && total > 0 ? 'cluster healthy' : nUp > 0 ? 'cluster degraded' : 'unreachable';
    var bad = res.filter(function(r){return !r.ok;});
    var b = document.getElementById('banner');
    b.style.display = bad.length && !up.length ? 'block' : 'none';
    b.textContent = bad.map(function(r){return r.origin + ': ' + r.error;}).join(' · ');
    document.getElementById('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
    document.body.setAttribute('data-updated', String(Date.now()));
  }
  function tick(){
    Promise.all(origins.map(get)).then(function(res){ discover(res); render(res); }).finally(function(){ setTimeout(tick, 1000); });
  }
  tick();
})();
</script>
</body>
</html>
`;
