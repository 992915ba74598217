// What the browser tests share: results and cleanups, check/assert, free ports, waiting,
// and a strata process (STRATA_BIN) started on a config text and stopped at the end.
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = process.env.STRATA_BIN || path.join(ROOT, 'build', 'strata');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const results = [];
const cleanups = [];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function check(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push([name, true]);
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    results.push([name, false]);
    console.log(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
  }
}

function assert(cond, msg) {
  if (!cond) throw new Error('assertion failed: ' + msg);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

async function waitFor(fn, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    try { const v = await fn(); if (v) return v; } catch (e) { /* not yet */ }
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await sleep(100);
  }
}

async function startStrata(config, ports) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-browser-'));
  const file = path.join(dir, 'strata.yaml');
  fs.writeFileSync(file, config);
  const log = fs.openSync(path.join(dir, 'strata.log'), 'w');
  const child = spawn(BIN, ['run', file], { stdio: ['ignore', log, log] });
  let exited = false;
  child.on('exit', () => { exited = true; });
  cleanups.push(async () => {
    if (!exited) {
      child.kill('SIGTERM');
      for (let i = 0; i < 100 && !exited; i++) await sleep(50);
      if (!exited) child.kill('SIGKILL');
    }
    // a sanitizer build (make SAN=...) reports into the log
    const text = fs.readFileSync(path.join(dir, 'strata.log'), 'utf8');
    const bad = /ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:/.test(text);
    results.push(['strata exits without sanitizer reports', !bad]);
    if (bad) console.log('FAIL strata log:\n' + text.slice(-4000));
    fs.rmSync(dir, { recursive: true, force: true });
  });
  for (const p of ports) {
    await waitFor(() => new Promise((resolve) => {
      const s = net.connect(p, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    }), 10000, `strata listening on ${p} (log: ${dir}/strata.log)`);
  }
}

// Runs the scenarios with one headless chromium, then the cleanups; prints the summary
// line and exits 1 on any failure.
async function runScenarios(chromium, scenarios) {
  let browser;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
    for (const s of scenarios) await s(browser);
  } catch (e) {
    results.push(['setup', false]);
    console.log('FAIL setup: ' + (e && e.stack ? e.stack : e));
  } finally {
    if (browser) await browser.close();
    for (const c of cleanups.reverse()) await c();
  }
  const passed = results.filter((r) => r[1]).length, failed = results.length - passed;
  console.log(`browser: ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

module.exports = { ROOT, results, cleanups, sleep, check, assert, freePort, waitFor, startStrata, runScenarios };
