/* Strata dashboard: polls /api/v1/stats every second (rates are differences between two
 * polls), keeps the last HISTORY seconds for the charts (seeded from /api/v1/trends when
 * the server has it), and /api/v1/top and the per-country trends every 5 s (a panel hides
 * when its API answers 404).
 * Charts are small canvas code of our own; nothing is fetched from elsewhere. */
'use strict';
const HISTORY = 300, MAX_ROWS = 100;
const $ = (id) => document.getElementById(id);
const hist = { t: [], s1: [], s2: [], s3: [], s4: [], s5: [], p50: [], p99: [],
               l7in: [], l7out: [], l4in: [], l4out: [], cps: [], active: [] };
let prev = null, last = null, routeSort = { key: 'p99', desc: true };

const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
const int = (n) => (n == null ? '–' : Math.round(n).toString());
const num = (n, d = 1) => (n == null || !isFinite(n) ? '–' : n >= 100 ? n.toFixed(0) : n.toFixed(d));
const ms = (q, k) => (q && q[k] != null ? num(q[k], 2) : '–');
function bytes(n, per = '/s') {
  if (n == null || !isFinite(n)) return '–';
  const u = ['B', 'KB', 'MB', 'GB']; let i = 0;
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return n.toFixed(n >= 100 || i === 0 ? 0 : 1) + ' ' + u[i] + per;
}
const sum = (a, f) => a.reduce((s, x) => s + (f(x) || 0), 0);
const key = (o, kind) => kind + ':' + (o.listener || o.backend || '') + '/' + o.name;

/* per-second rate of a counter between the last two polls */
function rate(kind, obj, field) {
  if (!prev) return null;
  const p = prev.index[key(obj, kind)];
  if (!p) return null;
  const dt = (last.time_ms - prev.time_ms) / 1000;
  const get = (o) => field.split('.').reduce((v, f) => (v == null ? v : v[f]), o);
  return dt > 0 ? Math.max(0, (get(obj) - get(p)) / dt) : null;
}

function indexStats(s) {
  s.index = {};
  for (const l of s.listeners) s.index[key(l, 'l')] = l;
  for (const r of s.routes) s.index[key(r, 'r')] = r;
  for (const b of s.backends) s.index[key(b, 'b')] = b;
  for (const v of s.servers) s.index[key(v, 's')] = v;
  return s;
}

function totals(s) {
  const http = s.listeners.filter((l) => l.mode === 'http');
  const l4 = s.listeners.filter((l) => l.mode !== 'http');
  const cls = (c) => sum(http, (l) => l.status && l.status[c]);
  return {
    time: s.time_ms, requests: sum(http, (l) => l.requests),
    c1: cls('1xx'), c2: cls('2xx'), c3: cls('3xx'), c4: cls('4xx'), c5: cls('5xx'),
    l7in: sum(http, (l) => l.bytes_in), l7out: sum(http, (l) => l.bytes_out),
    l4in: sum(l4, (l) => l.bytes_in), l4out: sum(l4, (l) => l.bytes_out),
    conns: sum(s.listeners, (l) => l.connections_total),
    active: sum(s.listeners, (l) => l.connections_active),
    l4conns: sum(l4, (l) => l.connections_total), l4active: sum(l4, (l) => l.connections_active),
    refused: sum(l4, (l) => l.refusals && (l.refusals.denied + l.refusals.rate_limited + l.refusals.limit)),
    dgrams: sum(l4, (l) => (l.datagrams_in || 0) + (l.datagrams_out || 0)),
    drops: sum(l4, (l) => l.datagrams_dropped),
  };
}

function recentLatency(s) {
  /* the busiest HTTP listener's recent window stands for L7 */
  let best = null;
  for (const l of s.listeners) {
    const r = l.recent_latency_ms && l.recent_latency_ms.total;
    if (r && (!best || r.count > best.count)) best = r;
  }
  return best;
}

function push(name, v) {
  hist[name].push(v);
  if (hist[name].length > HISTORY) hist[name].shift();
}

function record(s) {
  const a = totals(s), b = prev ? totals(prev) : null;
  if (!b) return a;
  const dt = (a.time - b.time) / 1000;
  if (dt <= 0) return a;
  const r = (f) => Math.max(0, (a[f] - b[f]) / dt);
  const lat = recentLatency(s);
  push('t', a.time);
  push('s1', r('c1')); push('s2', r('c2')); push('s3', r('c3')); push('s4', r('c4')); push('s5', r('c5'));
  push('p50', lat ? lat.p50 : null); push('p99', lat ? lat.p99 : null);
  push('l7in', r('l7in')); push('l7out', r('l7out')); push('l4in', r('l4in')); push('l4out', r('l4out'));
  push('cps', r('conns')); push('active', a.active);
  a.rates = { rps: r('requests'), e5: r('c5'), l7in: r('l7in'), l7out: r('l7out'), l4in: r('l4in'),
              l4out: r('l4out'), cps: r('l4conns'), dgrams: r('dgrams') };
  return a;
}

/* ---- charts ---- */
const COLORS = ['#3fb950', '#58a6ff', '#d29922', '#f85149', '#bc8cff', '#8a96a3'];
function chart(id, series, fmt) {
  const cv = $(id), dpr = window.devicePixelRatio || 1;
  const w = cv.clientWidth, h = cv.clientHeight;
  if (cv.width !== w * dpr) { cv.width = w * dpr; cv.height = h * dpr; }
  const g = cv.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const pad = { l: 52, r: 8, t: 18, b: 16 };
  let max = 0;
  for (const s of series) for (const v of s.data) if (v != null && v > max) max = v;
  max = max > 0 ? max * 1.15 : 1;
  g.font = '11px system-ui'; g.strokeStyle = '#2a333d'; g.fillStyle = '#8a96a3';
  for (let i = 0; i <= 4; i++) {
    const y = pad.t + (h - pad.t - pad.b) * i / 4;
    g.beginPath(); g.moveTo(pad.l, y); g.lineTo(w - pad.r, y); g.stroke();
    g.fillText(fmt(max * (4 - i) / 4), 2, y + 4);
  }
  g.fillText('-' + HISTORY / 60 + ' min', pad.l, h - 3);
  g.fillText('now', w - pad.r - 22, h - 3);
  const xs = (i, n) => pad.l + (w - pad.l - pad.r) * (HISTORY - n + i) / (HISTORY - 1);
  const ys = (v) => pad.t + (h - pad.t - pad.b) * (1 - v / max);
  let lx = pad.l;
  series.forEach((s, k) => {
    g.strokeStyle = s.color || COLORS[k]; g.lineWidth = 1.5; g.beginPath();
    let started = false;
    s.data.forEach((v, i) => {
      if (v == null) { started = false; return; }
      const x = xs(i, s.data.length), y = ys(v);
      if (started) g.lineTo(x, y); else { g.moveTo(x, y); started = true; }
    });
    g.stroke();
    g.fillStyle = s.color || COLORS[k]; g.fillRect(lx, 4, 10, 3);
    g.fillText(s.name, lx + 13, 10); lx += g.measureText(s.name).width + 28;
  });
}

function drawCharts() {
  const n = (v) => (v >= 1e6 ? (v / 1e6).toFixed(1) + 'M' : v >= 1e3 ? (v / 1e3).toFixed(1) + 'k' : v.toFixed(v < 10 ? 1 : 0));
  chart('c-status', [{ name: '2xx', data: hist.s2, color: COLORS[0] }, { name: '3xx', data: hist.s3, color: COLORS[1] },
    { name: '4xx', data: hist.s4, color: COLORS[2] }, { name: '5xx', data: hist.s5, color: COLORS[3] }], n);
  chart('c-latency', [{ name: 'p50', data: hist.p50, color: COLORS[1] }, { name: 'p99', data: hist.p99, color: COLORS[3] }], (v) => v.toFixed(v < 10 ? 2 : 0));
  chart('c-bw', [{ name: 'L7 in', data: hist.l7in, color: COLORS[1] }, { name: 'L7 out', data: hist.l7out, color: COLORS[4] },
    { name: 'L4 in', data: hist.l4in, color: COLORS[0] }, { name: 'L4 out', data: hist.l4out, color: COLORS[2] }], n);
  chart('c-conns', [{ name: 'new/s', data: hist.cps, color: COLORS[1] }, { name: 'active', data: hist.active, color: COLORS[0] }], n);
}

/* ---- tables ---- */
function setRows(id, html) { $(id).querySelector('tbody').innerHTML = html; }

/* Latency of an object: over the recent window when it had requests in it, else since
 * the configuration was loaded (shown muted). */
function lat(o, kind) {
  const r = o.recent_latency_ms && o.recent_latency_ms[kind];
  return r && r.count ? { q: r, recent: true } : { q: o.latency_ms[kind], recent: false };
}
const latCell = (l, k, cls = '') =>
  `<td class="n ${cls}${l.recent ? '' : ' muted'}" title="${l.recent ? 'last seconds' : 'since start'}">${ms(l.q, k)}</td>`;

function renderRoutes(s) {
  const f = $('route-filter').value.trim().toLowerCase();
  let rows = s.routes.map((r) => {
    const t = lat(r, 'total'), b = lat(r, 'ttfb'), errs = Object.values(r.errors).reduce((a, c) => a + c, 0);
    const q = (l, k) => (l.q ? l.q[k] : -1);
    return { r, t, b, rps: rate('r', r, 'requests'), p50: q(t, 'p50'), p99: q(t, 'p99'), p999: q(t, 'p999'),
             ttfb: q(b, 'p99'), errs, bad: r.requests ? (r.status['5xx'] + errs) / r.requests : 0 };
  });
  if (f) rows = rows.filter((x) => (x.r.listener + ' ' + x.r.name + ' ' + x.r.backends.join(' ')).toLowerCase().includes(f));
  const k = routeSort.key;
  rows.sort((a, b) => (routeSort.desc ? -1 : 1) * ((a[k] ?? -1) - (b[k] ?? -1)));
  const maxp = Math.max(1e-9, ...rows.map((x) => x.p99));
  const seen = rows.map((x) => x.p99).filter((v) => v > 0).sort((a, b) => a - b);
  const median = seen.length > 1 ? seen[Math.floor(seen.length / 2)] : Infinity;
  setRows('routes', rows.slice(0, MAX_ROWS).map((x) => {
    const r = x.r, slow = (x.p99 >= 20 && x.p99 >= 2 * median) || x.bad > 0.05;
    return `<tr class="${slow ? 'slow' : ''}" data-route="${esc(r.listener + '/' + r.name)}" data-requests="${r.requests}">` +
      `<td>${esc(r.listener)}</td><td>${esc(r.name)}</td><td>${esc(r.backends.join(', '))}</td>` +
      `<td class="n">${num(x.rps)}</td><td class="n req">${int(r.requests)}</td><td class="n">${int(r.status['2xx'])}</td>` +
      `<td class="n">${int(r.status['4xx'])}</td><td class="n">${int(r.status['5xx'])}</td><td class="n">${int(x.errs)}</td>` +
      latCell(x.t, 'p50') + latCell(x.t, 'p99', 'p99') + latCell(x.t, 'p999') + latCell(x.b, 'p99') +
      `<td style="width:120px"><div class="bar" style="width:${Math.max(0, 100 * x.p99 / maxp).toFixed(0)}%"></div></td></tr>`;
  }).join(''));
  $('routes-note').textContent = (rows.length > MAX_ROWS ? `showing ${MAX_ROWS} of ${rows.length} routes (filter or sort to see others). ` : '') +
    `Latency over the last ${num(s.recent_window_s || 0, 0)} s where a route had requests; muted: since start.`;
}

function renderBackends(s) {
  setRows('backends', s.backends.map((b) => {
    const t = b.latency_ms.total ? lat(b, 'total') : { q: b.latency_ms.session, recent: false };
    return `<tr data-backend="${esc(b.name)}"><td>${esc(b.name)}</td><td>${esc(b.balance)}</td>` +
      `<td class="n">${b.servers_up}/${b.servers}</td><td class="n">${num(rate('b', b, 'requests'))}</td>` +
      `<td class="n req">${int(b.requests)}</td><td class="n">${int(b.status['5xx'])}</td><td class="n">${int(b.active)}</td>` +
      latCell(t, 'p50') + latCell(t, 'p99') + '</tr>';
  }).slice(0, MAX_ROWS).join(''));
}

function renderListeners(s) {
  setRows('listeners', s.listeners.map((l) => {
    const t = l.latency_ms.total || l.latency_ms.session, r = l.refusals;
    return `<tr data-listener="${esc(l.name)}"><td>${esc(l.name)}</td><td>${esc(l.mode)}${l.tls ? '+tls' : ''}</td>` +
      `<td>${esc(l.addresses.join(' '))}</td><td class="n">${int(l.connections_total)}</td><td class="n">${int(l.connections_active)}</td>` +
      `<td class="n">${l.mode === 'http' ? int(l.requests) : '–'}</td><td class="n">${int(r.denied + r.rate_limited + r.limit)}</td>` +
      `<td class="n">${ms(t, 'p99')}</td></tr>`;
  }).slice(0, MAX_ROWS).join(''));
}

function renderServers(s) {
  setRows('servers', s.servers.slice(0, MAX_ROWS).map((v) => {
    const t = v.latency_ms.total ? lat(v, 'total') : { q: v.latency_ms.session, recent: false };
    const draining = v.draining === true;
    return `<tr data-server="${esc(v.backend + '/' + v.name)}"><td>${esc(v.backend)}</td><td>${esc(v.name)}</td><td>${esc(v.address)}</td>` +
      `<td><span class="dot ${v.up ? 'up' : 'down'}"></span>${v.up ? 'up' : 'down'}${draining ? ' (draining)' : ''}</td>` +
      `<td class="n">${v.weight}</td><td class="n">${int(v.active)}</td><td class="n">${num(rate('s', v, 'requests'))}</td>` +
      `<td class="n req">${int(v.requests)}</td><td class="n">${int(v.status['5xx'])}</td>` + latCell(t, 'p99') +
      `<td class="n">${ms(v.tcp.rtt_ms, 'p50')}</td><td class="n">${int(v.tcp.retransmits)}</td>` +
      `<td><button data-act="drain" data-b="${esc(v.backend)}" data-s="${esc(v.name)}">drain</button> ` +
      `<button data-act="enable" data-b="${esc(v.backend)}" data-s="${esc(v.name)}">enable</button></td></tr>`;
  }).join(''));
  $('servers-note').textContent = s.servers.length > MAX_ROWS ? `showing ${MAX_ROWS} of ${s.servers.length} servers` : '';
}

function renderErrors(s) {
  setRows('errors', s.recent_errors.map((e) =>
    `<tr><td>${esc(new Date(e.time_ms).toLocaleTimeString())}</td><td>${esc(e.listener)}</td><td>${esc(e.where)}</td>` +
    `<td class="n">${e.status || '–'}</td><td>${esc(e.reason)}</td><td>${esc(e.detail)}</td><td>${esc(e.path)}</td></tr>`).join('') ||
    '<tr><td colspan="7" class="muted">none</td></tr>');
}

function renderKpis(a, s) {
  const r = a.rates || {}, lat = recentLatency(s);
  $('l7-rps').textContent = num(r.rps); $('l7-err').textContent = num(r.e5);
  $('l7-p50').textContent = lat ? num(lat.p50, 2) : '–'; $('l7-p99').textContent = lat ? num(lat.p99, 2) : '–';
  $('l7-bw-in').textContent = bytes(r.l7in); $('l7-bw-out').textContent = bytes(r.l7out);
  $('l7-requests').textContent = int(a.requests);
  $('l4-cps').textContent = num(r.cps); $('l4-active').textContent = int(a.l4active);
  $('l4-refused').textContent = int(a.refused); $('l4-bw-in').textContent = bytes(r.l4in);
  $('l4-bw-out').textContent = bytes(r.l4out); $('l4-dgrams').textContent = num(r.dgrams);
  $('l4-drops').textContent = int(a.drops);
}

/* ---- polling ---- */
async function poll() {
  const t0 = performance.now();
  try {
    const res = await fetch('/api/v1/stats', { cache: 'no-store' });
    if (!res.ok) throw new Error('HTTP ' + res.status);
    const s = indexStats(await res.json());
    const t1 = performance.now();
    last = s;
    const a = record(s);
    renderKpis(a, s); renderRoutes(s); renderBackends(s); renderListeners(s); renderServers(s); renderErrors(s);
    drawCharts();
    prev = s;
    $('conn-state').textContent = 'live'; $('conn-state').className = 'pill ok';
    $('updated').textContent = 'updated ' + new Date(s.time_ms).toLocaleTimeString();
    document.body.dataset.pollMs = (performance.now() - t0).toFixed(0); /* fetch + render */
    document.body.dataset.renderMs = (performance.now() - t1).toFixed(0);
    document.body.dataset.polls = String(Number(document.body.dataset.polls || 0) + 1);
  } catch (e) {
    $('conn-state').textContent = 'disconnected: ' + e.message; $('conn-state').className = 'pill bad';
  }
}

async function seedTrends() {
  try {
    const res = await fetch('/api/v1/trends?range=hour', { cache: 'no-store' });
    if (!res.ok) return;
    const t = await res.json(), sr = t.series || {}, n = Math.min(HISTORY, (sr.requests || []).length);
    const tail = (a) => (a || []).slice(-n).map((v) => v / (t.step_s || 1));
    const fill = (name, a) => { if (a.length) hist[name] = a.concat(hist[name]).slice(-HISTORY); };
    fill('s2', tail(sr.status_2xx)); fill('s3', tail(sr.status_3xx)); fill('s4', tail(sr.status_4xx)); fill('s5', tail(sr.status_5xx));
    fill('l7in', tail(sr.bytes_in)); fill('l7out', tail(sr.bytes_out)); fill('l4in', tail(sr.l4_bytes_in));
    fill('l4out', tail(sr.l4_bytes_out)); fill('cps', tail(sr.l4_connections));
    document.body.dataset.trends = 'yes';
  } catch (e) { /* the charts fill from polling alone */ }
}

async function pollTop() {
  try {
    const res = await fetch('/api/v1/top?range=minute&n=10', { cache: 'no-store' });
    if (res.status === 404) { $('top-panel').hidden = true; return; }
    if (!res.ok) return;
    const t = await res.json();
    $('top-panel').hidden = false;
    $('top-geo').textContent = 'last ' + t.range + (t.geo && t.geo !== 'on' ? ' · geo ' + t.geo : '');
    $('top-tables').innerHTML = Object.entries(t.tables || {}).map(([name, rows]) =>
      `<div data-top="${esc(name)}"><h3>${esc(name.replaceAll('_', ' '))}</h3><table><tbody>` +
      (rows.length ? rows.map((x) => `<tr><td>${esc(x.key)}</td><td class="n">${int(x.count)}</td></tr>`).join('')
                   : '<tr><td class="muted">none</td></tr>') + '</tbody></table></div>').join('');
  } catch (e) { /* keep what is shown */ }
}

/* Requests and bytes per country over the last HISTORY seconds, from the trends. */
async function pollCountries() {
  try {
    const res = await fetch('/api/v1/trends?range=hour&points=' + HISTORY, { cache: 'no-store' });
    if (res.status === 404) { $('geo-panel').hidden = true; return; }
    if (!res.ok) return;
    const t = await res.json(), step = t.step_s || 1;
    $('geo-panel').hidden = false;
    $('geo-state').textContent = t.countries_state === 'on' ? 'last ' + HISTORY / 60 + ' min'
      : 'geo ' + t.countries_state;
    const total = (a) => (a || []).reduce((s, v) => s + v, 0);
    const rows = (t.countries || []).map((c) => ({ country: c.country, req: total(c.requests),
      bytes: total(c.bytes), data: (c.requests || []).map((v) => v / step) }))
      .sort((a, b) => (a.country === 'other') - (b.country === 'other') || b.req - a.req);
    $('countries').tBodies[0].innerHTML = rows.filter((r) => r.req || r.country !== 'other').map((r) =>
      `<tr data-country="${esc(r.country)}"><td>${esc(r.country)}</td><td class="n req">${int(r.req)}</td>` +
      `<td class="n" data-bytes="${r.bytes}">${bytes(r.bytes, '')}</td></tr>`).join('') ||
      '<tr><td class="muted" colspan="3">no requests from a known country</td></tr>';
    chart('c-countries', rows.filter((r) => r.req).slice(0, COLORS.length)
      .map((r) => ({ name: r.country, data: r.data })), num);
    document.body.dataset.countryPolls = String(Number(document.body.dataset.countryPolls || 0) + 1);
  } catch (e) { /* keep what is shown */ }
}

async function serverAction(btn) {
  const b = encodeURIComponent(btn.dataset.b), s = encodeURIComponent(btn.dataset.s), act = btn.dataset.act;
  const msg = $('action-msg');
  msg.hidden = false;
  try {
    const res = await fetch(`/api/v1/backends/${b}/servers/${s}/${act}`, { method: 'POST' });
    msg.textContent = res.status === 404 || res.status === 405
      ? `${act} is not available: this Strata has no runtime server API (${res.status})`
      : res.ok ? `${act}: ${btn.dataset.b}/${btn.dataset.s} done` : `${act} failed: HTTP ${res.status} ${await res.text()}`;
  } catch (e) { msg.textContent = `${act} failed: ${e.message}`; }
  msg.dataset.result = msg.textContent;
}

document.addEventListener('click', (ev) => {
  const btn = ev.target.closest('button[data-act]');
  if (btn) { serverAction(btn); return; }
  const th = ev.target.closest('#routes th');
  if (th) {
    const keys = { 'req/s': 'rps', 'p50 ms': 'p50', 'p99 ms': 'p99', 'p99.9 ms': 'p999', 'TTFB p99': 'ttfb', errors: 'errs' };
    const k = keys[th.textContent];
    if (k) { routeSort = { key: k, desc: routeSort.key === k ? !routeSort.desc : true }; if (last) renderRoutes(last); }
  }
});
$('route-filter').addEventListener('input', () => last && renderRoutes(last));
window.addEventListener('resize', drawCharts);

/* one poll a second, never two at once: the next starts a second after the last began */
async function pollLoop() {
  const t0 = performance.now();
  await poll();
  setTimeout(pollLoop, Math.max(100, 1000 - (performance.now() - t0)));
}
seedTrends().then(pollLoop);
pollTop();
setInterval(pollTop, 5000);
pollCountries();
setInterval(pollCountries, 5000);
