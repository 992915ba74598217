// The bot filter's JavaScript challenge in a real browser: build/strata (STRATA_BIN) with
// `bot: { challenge_all: true, challenge_mode: javascript }` in front of an HTTP origin.
// Headless chromium opens a page: it gets the challenge page, whose inline script finds
// the proof of work and reloads, then the 307 with the signed cookie, then the origin's
// page; the cookie is HttpOnly and the proof cookie gone. The same browser with
// JavaScript off stays on the challenge page and the origin sees nothing more.
// Ends with "browser: N passed, M failed"; exit status 1 on any failure.
'use strict';
const { chromium } = require('playwright-core');
const http = require('http');
const { cleanups, sleep, check, assert, freePort, startStrata, runScenarios } = require('./lib');

function origin(seen) {
  const srv = http.createServer((req, res) => {
    if (req.url === '/favicon.ico') { res.writeHead(404); res.end(); return; } // the browser's own
    seen.push(req.url);
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<html><body><h1 id="origin">origin content</h1></body></html>');
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => {
    cleanups.push(() => new Promise((r) => srv.close(r)));
    resolve(srv.address().port);
  }));
}

async function scenarioChallenge(browser) {
  const seen = [];
  const oport = await origin(seen);
  const port = await freePort();
  await startStrata(`workers: 1\nlisteners:\n  - name: web\n    listen: 127.0.0.1:${port}\n` +
    '    mode: http\n    routes:\n      - backend: app\n' +
    '        bot: { challenge_all: true, challenge_mode: javascript, difficulty: 14 }\n' +
    `backends:\n  app:\n    servers: ["127.0.0.1:${oport}"]\n`, [port]);
  const url = `http://127.0.0.1:${port}/welcome?x=1`;

  await check('javascript on: the script proves its work and the origin page shows', async () => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    const statuses = [];
    const responses = [];
    page.on('response', (r) => { statuses.push(r.status()); responses.push(r); });
    const t0 = Date.now();
    await page.goto(url);
    await page.waitForSelector('#origin', { timeout: 30000 });
    console.log(`     passed in ${Date.now() - t0} ms; responses ${statuses.join(' ')}`);
    assert(statuses[0] === 403, 'first the challenge page: ' + statuses.join(' '));
    // then the 307 that sets the signed cookie, and the 200 asked with it (Chromium does not
    // always report a redirect inside a reload as a response: seen with the build before
    // this test changed too, 1 run in 12; the cookie the last request carries shows it)
    const last = responses[responses.length - 1];
    const sent = (await last.request().allHeaders()).cookie || '';
    assert(last.status() === 200 && (statuses.includes(307) || /strata_bc=\d+\./.test(sent)),
      'then 307, 200: ' + statuses.join(' ') + '; cookie sent: ' + sent);
    const cookies = await ctx.cookies();
    const bc = cookies.find((c) => c.name === 'strata_bc');
    assert(bc && bc.httpOnly && /^\d+\.[0-9a-f]{64}$/.test(bc.value), 'signed cookie: ' + JSON.stringify(cookies));
    assert(!cookies.find((c) => c.name === 'strata_bc_pow'), 'proof cookie dropped');
    assert(seen.length === 1 && seen[0] === '/welcome?x=1', 'origin saw ' + seen.join(','));
    await page.goto(`http://127.0.0.1:${port}/next`); // the cookie holds: straight through
    assert((await page.textContent('#origin')) === 'origin content', 'second page');
    assert(seen.length === 2, 'origin saw ' + seen.join(','));
    await ctx.close();
  });

  await check('javascript off: the challenge page stays, the origin sees nothing', async () => {
    const ctx = await browser.newContext({ javaScriptEnabled: false });
    const page = await ctx.newPage();
    const before = seen.length;
    const r = await page.goto(url);
    assert(r.status() === 403, 'status ' + r.status());
    await sleep(1500);
    const text = await page.textContent('body');
    assert(/Checking your browser/.test(text), 'page: ' + text);
    assert(!(await ctx.cookies()).length, 'no cookie');
    assert(seen.length === before, 'origin saw more: ' + seen.join(','));
    await ctx.close();
  });
}

runScenarios(chromium, [scenarioChallenge]);
