// The dashboard in a real browser: Debian's headless chromium driven by playwright-core.
// Starts build/strata (STRATA_BIN) in front of a fast and a slow HTTP origin and a TCP echo
// server (all on loopback, ports picked at run time), sends traffic while the page is
// open, then checks that the figures the page shows match /metrics and /api/v1/stats,
// that the slow route is flagged first, that the traffic by country (a small .mmdb written
// by tests/geo/make_test_mmdb.pl places 127.0.0.2 in FR, 127.0.0.3 in US) matches the
// trends API, clicks a drain action, and saves screenshots it checks are not blank. A
// second scenario loads 1,000 routes and 1,000 servers.
// Ends with "browser: N passed, M failed"; exit status 1 on any failure.
'use strict';
const { chromium } = require('playwright-core');
const { execFileSync } = require('child_process');
const fs = require('fs');
const http = require('http');
const net = require('net');
const os = require('os');
const path = require('path');
const { ROOT, cleanups, sleep, check, assert, freePort, waitFor, startStrata, runScenarios } =
  require('./lib');

const OUT = process.env.BROWSER_OUT || path.join(ROOT, 'build', 'browser');

function get(port, p, headers = {}, localAddress = undefined) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, headers, timeout: 5000, localAddress }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

function parseMetrics(text) {
  const out = new Map();
  for (const line of text.split('\n')) {
    if (!line || line[0] === '#') continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const l of (m[2] || '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.set(m[1] + JSON.stringify(Object.keys(labels).sort().map((k) => [k, labels[k]])), Number(m[3]));
  }
  return { get: (name, labels) => out.get(name + JSON.stringify(Object.keys(labels).sort().map((k) => [k, labels[k]]))) };
}

/* ---- the world around strata ---- */
function origin(delayMs) {
  const srv = http.createServer((req, res) => {
    setTimeout(() => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('ok ' + req.url + '\n'); }, delayMs);
  });
  srv.keepAliveTimeout = 60000;
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => {
    cleanups.push(() => srv.close());
    resolve(srv.address().port);
  }));
}

function echo() {
  const srv = net.createServer((c) => { c.on('data', (d) => c.write(d)); c.on('error', () => {}); });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => {
    cleanups.push(() => srv.close());
    resolve(srv.address().port);
  }));
}

/* Keep-alive HTTP traffic until stop() is called: each loop a request to `paths` in turn. */
function traffic(port, paths, concurrency) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  let running = true, sent = 0;
  const loops = [];
  for (let i = 0; i < concurrency; i++) {
    loops.push((async () => {
      for (let n = i; running; n++) {
        try { await get(port, paths[n % paths.length], {}); sent++; } catch (e) { await sleep(20); }
        await sleep(5);
      }
    })());
  }
  return { stop: async () => { running = false; await Promise.all(loops); agent.destroy(); return sent; } };
}

async function tcpSessions(port, n) {
  for (let i = 0; i < n; i++) {
    await new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => c.write('ping\n'));
      c.on('data', () => c.end());
      c.on('close', resolve);
      c.on('error', resolve);
    });
  }
}

/* Screenshot to OUT/name.png; fails when it has fewer than `minColors` distinct colours
 * (a blank or single-colour page), counted by the browser itself. */
async function screenshot(page, name, minColors) {
  fs.mkdirSync(OUT, { recursive: true });
  const file = path.join(OUT, name + '.png');
  const png = await page.screenshot({ path: file, fullPage: true });
  const colors = await page.evaluate(async (b64) => {
    const img = new Image();
    img.src = 'data:image/png;base64,' + b64;
    await img.decode();
    const c = document.createElement('canvas');
    c.width = img.width; c.height = img.height;
    const g = c.getContext('2d');
    g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data, seen = new Set();
    for (let i = 0; i < d.length; i += 4 * 7) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
    return seen.size;
  }, png.toString('base64'));
  assert(colors >= minColors, `${file}: only ${colors} colours`);
  console.log(`     screenshot ${file}: ${png.length} bytes, ${colors} colours`);
}

/* ---- scenario 1: real traffic, figures against /metrics and the JSON API ---- */
async function scenarioTraffic(browser) {
  const fast = await origin(0), slow = await origin(300), tcp = await echo();
  const [hport, tport, admin, dead] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const mmdb = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'strata-geo-')), 'test.mmdb');
  execFileSync('perl', [path.join(ROOT, 'tests', 'geo', 'make_test_mmdb.pl'), mmdb], { timeout: 60000 });
  cleanups.push(() => fs.rmSync(path.dirname(mmdb), { recursive: true, force: true }));
  await startStrata(`workers: 2
admin: { listen: 127.0.0.1:${admin} }
geo: { database: "${mmdb}" }
listeners:
  - name: web
    listen: 127.0.0.1:${hport}
    mode: http
    routes:
      - { name: slow-reports, match: { path_prefix: /reports/ }, backend: reports }
      - { name: broken, match: { path_prefix: /broken/ }, backend: dead, retry: { tries: 1 } }
      - { name: api, backend: api }
  - name: tcp-echo
    listen: 127.0.0.1:${tport}
    mode: tcp
    backend: echo
backends:
  api: { servers: [ { name: api1, address: "127.0.0.1:${fast}" } ] }
  reports: { servers: [ { name: rep1, address: "127.0.0.1:${slow}" } ] }
  dead: { servers: [ { name: gone, address: "127.0.0.1:${dead}" } ] }
  echo: { servers: [ { name: echo1, address: "127.0.0.1:${tcp}" } ] }
`, [hport, tport, admin]);

  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  const load = traffic(hport, ['/v1/users/1', '/v1/items', '/reports/daily', '/v1/users/2', '/broken/x'], 4);
  await tcpSessions(tport, 10);
  for (let i = 0; i < 8; i++) await get(hport, '/v1/geo', {}, i < 5 ? '127.0.0.2' : '127.0.0.3');

  await check('dashboard loads and polls while traffic flows', async () => {
    await page.goto(`http://127.0.0.1:${admin}/`);
    await page.waitForFunction(() => Number(document.body.dataset.polls || 0) >= 3, null, { timeout: 15000 });
    const rps = Number(await page.textContent('#l7-rps'));
    assert(rps > 0, `requests/s shown is ${rps}`);
    // with requests in the last seconds, the slow route shows its recent latency
    await page.waitForFunction(() => {
      const tr = document.querySelector('tr[data-route="web/slow-reports"] td.p99');
      return tr && tr.title === 'last seconds' && Number(tr.textContent) >= 300;
    }, null, { timeout: 15000 });
    assert(pageErrors.length === 0, 'page errors: ' + pageErrors.join('; '));
  });
  await check('screenshot with live traffic is not blank', () => screenshot(page, 'dashboard-live', 12));

  const sent = await load.stop();
  console.log(`     ${sent} HTTP requests sent`);
  // the page polls every second: two polls after the traffic stopped show the final counts
  const polls = Number(await page.evaluate(() => document.body.dataset.polls));
  await page.waitForFunction((p) => Number(document.body.dataset.polls) >= p + 2, polls, { timeout: 10000 });
  const metrics = parseMetrics((await get(admin, '/metrics')).body);
  const stats = JSON.parse((await get(admin, '/api/v1/stats')).body);

  await check('route request counts shown match /metrics and /api/v1/stats', async () => {
    for (const r of stats.routes) {
      const shown = await page.getAttribute(`tr[data-route="${r.listener}/${r.name}"] td.req`, 'textContent').catch(() => null)
        ?? await page.textContent(`tr[data-route="${r.listener}/${r.name}"] td.req`);
      const m = metrics.get('strata_route_requests_total', { listener: r.listener, route: r.name });
      assert(Number(shown) === r.requests && r.requests === m, `${r.name}: page ${shown}, JSON ${r.requests}, metrics ${m}`);
    }
    const total = metrics.get('strata_listener_http_requests_total', { listener: 'web' });
    const kpi = Number(await page.textContent('#l7-requests'));
    assert(kpi === total && total > 0, `requests total: page ${kpi}, metrics ${total}`);
  });

  await check('the slow route is listed first, flagged, with the p99 of the JSON API', async () => {
    const first = await page.getAttribute('#routes tbody tr:first-child', 'data-route');
    assert(first === 'web/slow-reports', 'first route row is ' + first);
    const cls = await page.getAttribute('#routes tbody tr:first-child', 'class');
    assert(/slow/.test(cls), 'slow route row class: ' + cls + ' p99s: ' +
      stats.routes.map((r) => r.name + '=' + (r.latency_ms.total && r.latency_ms.total.p99)).join(' '));
    // once the recent window (5-10 s) has no request left, the page shows the figures since
    // the start, which no longer move: they must be the JSON API's
    await page.waitForFunction(() => {
      const td = document.querySelector('#routes tbody tr:first-child td.p99');
      return td && td.title === 'since start';
    }, null, { timeout: 20000 });
    const now = JSON.parse((await get(admin, '/api/v1/stats')).body);
    const shown = Number(await page.textContent('#routes tbody tr:first-child td.p99'));
    const p99 = now.routes.find((r) => r.name === 'slow-reports').latency_ms.total.p99;
    assert(p99 >= 300 && Math.abs(shown - p99) <= Math.max(0.5, p99 * 0.01), `p99 shown ${shown}, JSON ${p99}`);
    assert(await page.getAttribute('#routes tbody tr:first-child', 'data-route') === 'web/slow-reports', 'still first');
  });

  await check('server request counts match /metrics; recent errors show the broken route', async () => {
    for (const s of stats.servers) {
      const shown = Number(await page.textContent(`tr[data-server="${s.backend}/${s.name}"] td.req`));
      const m = metrics.get('strata_server_http_requests_total', { backend: s.backend, server: s.name });
      assert(shown === m && m === s.requests, `${s.backend}/${s.name}: page ${shown}, metrics ${m}`);
    }
    const errors = await page.textContent('#errors tbody');
    // connect_failed until passive health takes the dead server down, then no_server
    assert(/connect_failed|no_server/.test(errors) && /\/broken\/x/.test(errors), 'recent errors: ' + errors.slice(0, 200));
  });

  await check('L4 figures: TCP sessions and segments reach the page and /metrics', async () => {
    const conns = Number(await page.textContent('tr[data-listener="tcp-echo"] td:nth-child(4)'));
    const m = metrics.get('strata_listener_connections_total', { listener: 'tcp-echo' });
    // 10 sessions, and the probe that waited for the port
    assert(conns === m && m >= 10, `tcp connections: page ${conns}, metrics ${m}`);
    const rtt = metrics.get('strata_server_tcp_rtt_seconds_count', { backend: 'echo', server: 'echo1' });
    assert(rtt >= 10, 'rtt samples ' + rtt);
  });

  await check('drain and enable buttons act through the runtime API', async () => {
    const row = 'tr[data-server="api/api1"]';
    const state = async () => JSON.parse((await get(admin, '/api/v1/stats')).body).servers
      .find((v) => v.backend === 'api' && v.name === 'api1');
    await page.click(`${row} button[data-act="drain"]`);
    let text = await waitFor(() => page.getAttribute('#action-msg', 'data-result'), 5000, 'drain result');
    assert(/^drain: api\/api1 done$/.test(text), 'message: ' + text);
    assert((await state()).draining === true, 'the stats API does not show the drain');
    await page.waitForFunction((sel) => /\(draining\)/.test(document.querySelector(sel).textContent),
      row, { timeout: 5000 });
    await page.evaluate(() => { document.querySelector('#action-msg').dataset.result = ''; });
    await page.click(`${row} button[data-act="enable"]`);
    text = await waitFor(() => page.getAttribute('#action-msg', 'data-result'), 5000, 'enable result');
    assert(/^enable: api\/api1 done$/.test(text), 'message: ' + text);
    assert((await state()).draining === false, 'the stats API still shows the drain');
    await page.waitForFunction((sel) => !/\(draining\)/.test(document.querySelector(sel).textContent),
      row, { timeout: 5000 });
    console.log(`     drain and enable: "${text}"`);
  });

  await check('top-N panel follows /api/v1/top (hidden when it answers 404)', async () => {
    const top = await get(admin, '/api/v1/top?range=minute&n=10');
    if (top.status === 200) // the page asks every 5 s: wait for a round that saw the traffic
      await page.waitForFunction(() => !document.querySelector('#top-panel').hidden &&
        /\/reports\//.test(document.querySelector('#top-tables').textContent), null, { timeout: 12000 });
    const hidden = await page.$eval('#top-panel', (e) => e.hidden);
    assert(hidden === (top.status === 404), `top answered ${top.status}, panel hidden ${hidden}`);
    if (top.status === 200) {
      const t = JSON.parse(top.body), paths = t.tables.paths.map((x) => x.key);
      const shown = await page.$$eval('[data-top="paths"] td:first-child', (tds) => tds.map((td) => td.textContent));
      assert(paths.length > 0 && paths.every((k) => shown.includes(k)), `top paths ${paths} shown ${shown}`);
      console.log(`     top paths: ${paths.join(', ')}`);
    }
    const trends = await get(admin, '/api/v1/trends?range=hour');
    const seeded = await page.evaluate(() => document.body.dataset.trends === 'yes');
    assert(seeded === (trends.status === 200), `trends answered ${trends.status}, charts seeded ${seeded}`);
  });
  await check('traffic by country matches /api/v1/trends', async () => {
    // a round of the page's country poll (every 5 s) after the traffic stopped
    const rounds = Number(await page.evaluate(() => document.body.dataset.countryPolls || 0));
    await page.waitForFunction((n) => Number(document.body.dataset.countryPolls || 0) >= n + 1,
      rounds, { timeout: 12000 });
    const t = JSON.parse((await get(admin, '/api/v1/trends?range=hour&points=300')).body);
    assert(t.countries_state === 'on', 'countries_state ' + t.countries_state);
    const total = (a) => a.reduce((s, v) => s + v, 0);
    const want = Object.fromEntries(t.countries.map((c) => [c.country, total(c.requests)]));
    assert(want.FR === 5 && want.US === 3, 'trends: ' + JSON.stringify(want));
    for (const code of ['FR', 'US']) {
      const shown = Number(await page.textContent(`tr[data-country="${code}"] td.req`));
      assert(shown === want[code], `${code}: page ${shown}, trends ${want[code]}`);
    }
    const canvas = await page.$eval('#c-countries', (c) => c.width > 0 && !document.querySelector('#geo-panel').hidden);
    assert(canvas, 'the country chart is drawn and shown');
  });
  await check('screenshot after the checks is not blank', () => screenshot(page, 'dashboard-final', 12));
  await page.close();
}

/* ---- scenario 2: 1,000 routes and 1,000 servers ---- */
async function scenarioLarge(browser) {
  const [hport, admin] = await Promise.all([freePort(), freePort()]);
  let routes = '', backends = '';
  for (let i = 0; i < 1000; i++) {
    routes += `      - { name: r${i}, match: { path_prefix: /p${i}/ }, backend: b${i % 100} }\n`;
  }
  for (let b = 0; b < 100; b++) {
    backends += `  b${b}:\n    servers:\n`;
    for (let s = 0; s < 10; s++) backends += `      - { name: s${s}, address: "127.0.0.1:${1 + b * 10 + s}" }\n`;
  }
  await startStrata(`workers: 2\nadmin: { listen: 127.0.0.1:${admin} }\nlisteners:\n  - name: big\n` +
    `    listen: 127.0.0.1:${hport}\n    mode: http\n    routes:\n${routes}backends:\n${backends}`, [hport, admin]);
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  await check('1,000 routes and servers: the page renders and keeps polling', async () => {
    await page.goto(`http://127.0.0.1:${admin}/`);
    await page.waitForFunction(() => Number(document.body.dataset.polls || 0) >= 3, null, { timeout: 30000 });
    const note = await page.textContent('#routes-note');
    assert(/of 1000 routes/.test(note), 'routes note: ' + note);
    const p = Number(await page.evaluate(() => document.body.dataset.polls));
    await page.waitForFunction((n) => Number(document.body.dataset.polls) > n, p, { timeout: 10000 });
    const [ms, render] = await page.evaluate(() => [document.body.dataset.pollMs, document.body.dataset.renderMs]);
    const size = (await get(admin, '/api/v1/stats')).body.length;
    console.log(`     one poll: ${(size / 1024).toFixed(0)} KiB of JSON fetched and shown in ${ms} ms (${render} ms of it rendering)`);
    await page.fill('#route-filter', 'r999');
    const rows = await page.$$eval('#routes tbody tr', (r) => r.map((x) => x.dataset.route));
    assert(rows.length === 1 && rows[0] === 'big/r999', 'filtered rows: ' + rows.join(','));
  });
  await check('screenshot with 1,000 routes is not blank', () => screenshot(page, 'dashboard-1000', 12));
  await page.close();
}

runScenarios(chromium, [scenarioTraffic, scenarioLarge]);
